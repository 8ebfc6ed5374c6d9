"""`rsearch plan`: every shipped space priced, as a table and as JSON that meets its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from rsearch.plan.bill import SCHEMA_FILE, plan_schema
from rsearch.spec import load_spec
from tests.cli.helpers import QUICKSTART, SPACES, fails_cleanly, invoke

SHIPPED = sorted(SPACES.glob("*.yaml"))


def _schema() -> dict[str, object]:
    schema: dict[str, object] = json.loads(SCHEMA_FILE.read_text())
    return schema


def test_the_shipped_schema_is_the_models() -> None:
    assert _schema() == plan_schema()
    jsonschema.Draft202012Validator.check_schema(_schema())


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_plan_of_every_shipped_space(path: Path) -> None:
    res = invoke("plan", path, "--no-measure", "--format", "json")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)  # stdout holds the JSON and nothing else
    jsonschema.validate(plan, _schema())
    assert plan["total_flops"] > 0 and plan["total_device_hours"] > 0
    assert plan["num_trials"] == load_spec(path).search.num_trials == len(plan["trials"])
    assert plan["speed_source"] == "reference"
    table = invoke("plan", path, "--no-measure")
    assert table.exit_code == 0, table.output
    assert "total FLOPs" in table.stdout and "device-hours" in table.stdout
    assert f"plan of {plan['name']!r}" in table.stdout


def test_json_is_refused_by_the_schema_when_wrong() -> None:
    res = invoke("plan", QUICKSTART, "--no-measure", "--format", "json")
    plan = json.loads(res.stdout)
    del plan["total_flops"]
    with pytest.raises(jsonschema.ValidationError, match="total_flops"):
        jsonschema.validate(plan, _schema())
    plan = json.loads(res.stdout)
    plan["trials"][0]["expected"]["flops"] = -1.0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plan, _schema())


def test_budget_verdict_in_the_table() -> None:
    res = invoke("plan", QUICKSTART, "--no-measure", "--set", "search.budget={flops: 1e12}")
    assert res.exit_code == 0, res.output
    assert "budget (1 TFLOPs)" in res.stdout and "trials fit" in res.stdout
    data = invoke(
        "plan",
        QUICKSTART,
        "--no-measure",
        "--format",
        "json",
        "--set",
        "search.budget={flops: 1e12}",
    )
    budget = json.loads(data.stdout)["budget"]
    assert budget["fits"] is False and 0 <= budget["trials_that_fit"] < 8


def test_bad_budget_is_a_spec_error_with_file_and_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    text = QUICKSTART.read_text()
    assert text.count("  num_trials: 8\n") == 1
    spec.write_text(text.replace("  num_trials: 8\n", "  num_trials: 8\n  budget: {flops: -5}\n"))
    line = spec.read_text().splitlines().index("  budget: {flops: -5}") + 1
    fails_cleanly("plan", spec, expect=f"spec.yaml:{line}:")
    fails_cleanly("plan", QUICKSTART, "--set", "search.budget={}", expect="needs device_hours")


def test_unreachable_cluster_is_one_message() -> None:
    fails_cleanly(
        "plan", QUICKSTART, "--no-measure", "--address", "127.0.0.1:1", expect="cannot reach"
    )


def test_a_trial_larger_than_the_machine_is_refused() -> None:
    fails_cleanly(
        "plan",
        QUICKSTART,
        "--no-measure",
        "--set",
        "resources.cpus_per_worker=512",
        expect="a trial needs 512 CPUs",
    )
