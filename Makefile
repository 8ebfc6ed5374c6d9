# rsearch: `make quickstart` runs a real search on this machine; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test test-all lint format install clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/rsearch validate search_spaces/quickstart.yaml
	$(BIN)/rsearch run search_spaces/quickstart.yaml

test: $(STAMP)
	$(BIN)/pytest -q

# Everything but the browser test: the real-Ray integration tests included.
test-all: $(STAMP)
	$(BIN)/pytest -q -m 'not browser and not cluster' -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
