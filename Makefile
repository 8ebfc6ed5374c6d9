# rsearch: `make quickstart` runs a real search on this machine; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test test-deploy lint format install clean

# -qq shows pip's errors only: warnings about this machine's pip configuration are noise here.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/rsearch validate search_spaces/quickstart.yaml
	$(BIN)/rsearch run search_spaces/quickstart.yaml

# The whole suite that runs on one machine: unit tests plus the real-Ray, MLflow-server and
# browser integration tests (browser tests skip when Chromium is absent). `pytest` alone runs
# the fast unit suite. The fast tests run two at a time (pytest-xdist; an idle worker takes
# queued tests from the busy one, as their lengths differ a hundredfold); the slow ones after
# them one at a time, each with the machine's cores to itself as their Ray clusters assume.
# Both halves always run; the target fails if either did.
test: $(STAMP)
	status=0; \
	$(BIN)/pytest -q -m 'not slow and not cluster' -n 2 --dist worksteal --durations=30 \
		|| status=1; \
	$(BIN)/pytest -q -m 'slow and not cluster' --durations=30 || status=1; \
	exit $$status

# The deployment test, apart from `make test` (marked `cluster`): builds the images with
# docker/local/build.sh (on local stand-ins for the registry bases; cached per machine) and runs
# a search on docker/compose.yaml. Needs a Docker daemon: docker/local/start-dockerd.sh.
# -s shows each build step's wall time.
test-deploy: $(STAMP)
	$(BIN)/pytest -q -s -m cluster --durations=10 \
		tests/deploy/test_image_build.py tests/deploy/test_compose_e2e.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
