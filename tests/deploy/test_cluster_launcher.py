"""Every Ray cluster launcher YAML under clusters/ validates against the schema Ray ships."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml

from tests.deploy.paths import CLUSTERS

LAUNCHER_FILES = sorted(CLUSTERS.glob("*.yaml"))


@pytest.fixture(scope="module")
def ray_schema() -> dict[str, Any]:
    """The cluster config schema of the installed ray (what `ray up` validates against)."""
    path = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
    return json.loads(path.read_text())


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


def test_the_three_launchers_exist() -> None:
    assert [p.name for p in LAUNCHER_FILES] == ["aws.yaml", "gcp.yaml", "local.yaml"]


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_launcher_config_matches_ray_schema(path: Path, ray_schema: dict[str, Any]) -> None:
    jsonschema.validate(_load(path), ray_schema)


def test_a_misspelled_key_is_rejected(ray_schema: dict[str, Any]) -> None:
    broken = _load(CLUSTERS / "aws.yaml")
    broken["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        jsonschema.validate(broken, ray_schema)


def test_fractional_node_resources_are_rejected(ray_schema: dict[str, Any]) -> None:
    broken = copy.deepcopy(_load(CLUSTERS / "gcp.yaml"))
    broken["available_node_types"]["gpu_t4"]["resources"]["GPU"] = 0.5
    with pytest.raises(jsonschema.ValidationError, match="0.5"):
        jsonschema.validate(broken, ray_schema)


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_cloud_clusters_autoscale_gpu_workers(name: str) -> None:
    cfg = _load(CLUSTERS / name)
    head = cfg["available_node_types"][cfg["head_node_type"]]
    assert head["resources"] == {"CPU": 0}, "the head should run drivers, not trials"
    gpu_types = [t for t in cfg["available_node_types"].values() if t["resources"].get("GPU")]
    assert len(gpu_types) >= 2
    for node_type in gpu_types:
        assert 0 <= node_type["min_workers"] <= node_type["max_workers"] <= cfg["max_workers"]
    # rsearch sizes a search to the GPUs present when it starts: some must be there from the
    # start, and the autoscaler must have room to add more.
    assert any(t["min_workers"] >= 1 for t in gpu_types)
    assert any(t["max_workers"] > t["min_workers"] for t in gpu_types)


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_nodes_share_storage_and_the_token(path: Path) -> None:
    cfg = _load(path)
    run_options = " ".join(cfg["docker"]["run_options"])
    assert "-v /shared:/shared" in run_options
    assert "RAY_AUTH_MODE=token" in run_options
    token_path = next(
        opt.split("=", 1)[1] for opt in cfg["docker"]["run_options"] if "RAY_AUTH_TOKEN_PATH" in opt
    )
    assert token_path in cfg["file_mounts"], "the token file must be copied to every node"
    assert any("mount" in cmd and "/shared" in cmd for cmd in cfg["initialization_commands"])
    head_options = " ".join(cfg["docker"]["head_run_options"])
    assert "MLFLOW_TRACKING_URI=http" in head_options
