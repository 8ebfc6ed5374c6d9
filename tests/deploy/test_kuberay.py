"""KubeRay manifests parse and carry what docs/deploy.md promises.

No KubeRay CRD schema ships in a PyPI package and no Kubernetes API server runs here, so these
tests check the structure the docs rely on rather than the full CRD.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rsearch.spec import SpecError, parse_spec_text
from tests.deploy.paths import KUBERAY

SECRET = "rsearch-ray-token"
PVC = "rsearch-shared"


def _docs(name: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((KUBERAY / name).read_text()) if d is not None]
    assert docs, f"{name} holds no object"
    return docs


def _one(name: str, kind: str) -> dict[str, Any]:
    matches = [d for d in _docs(name) if d["kind"] == kind]
    assert len(matches) == 1, f"{name} should hold one {kind}"
    return matches[0]


def _cluster_specs() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("raycluster.yaml", _one("raycluster.yaml", "RayCluster")["spec"]),
        ("rayjob.yaml", _one("rayjob.yaml", "RayJob")["spec"]["rayClusterSpec"]),
    ]


def _pods(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [g["template"]["spec"] for g in groups]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize("path", sorted(KUBERAY.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_parses_into_named_objects(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]


def test_ray_objects_use_the_v1_api() -> None:
    assert _one("raycluster.yaml", "RayCluster")["apiVersion"] == "ray.io/v1"
    assert _one("rayjob.yaml", "RayJob")["apiVersion"] == "ray.io/v1"


@pytest.mark.parametrize(("name", "cluster"), _cluster_specs(), ids=["raycluster", "rayjob"])
def test_cluster_autoscales_a_gpu_worker_group(name: str, cluster: dict[str, Any]) -> None:
    assert cluster["enableInTreeAutoscaling"] is True
    gpu_groups = [
        group
        for group in cluster["workerGroupSpecs"]
        for container in group["template"]["spec"]["containers"]
        if "nvidia.com/gpu" in container["resources"]["limits"]
    ]
    assert gpu_groups, f"{name}: no worker group asks for nvidia.com/gpu"
    for group in gpu_groups:
        # rsearch sizes a search to the GPUs present when it starts, so some must be there.
        assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["maxReplicas"] > group["minReplicas"]


@pytest.mark.parametrize(("name", "cluster"), _cluster_specs(), ids=["raycluster", "rayjob"])
def test_every_pod_gets_the_token_mlflow_and_shared_volume(
    name: str, cluster: dict[str, Any]
) -> None:
    token_ref = {"secretKeyRef": {"name": SECRET, "key": "token"}}
    assert _env(cluster["autoscalerOptions"])["RAY_AUTH_TOKEN"] == token_ref
    for pod in _pods(cluster):
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        }
        for container in pod["containers"]:
            env = _env(container)
            assert env["RAY_AUTH_MODE"] == "token", name
            assert env["RAY_AUTH_TOKEN"] == token_ref, name
            assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert claims[mounts["/shared"]] == PVC, name


def test_shared_claim_is_read_write_many() -> None:
    claim = _one("storage.yaml", "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == PVC
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_rayjob_runs_the_same_cluster_as_raycluster() -> None:
    (_, long_lived), (_, job) = _cluster_specs()
    assert job["workerGroupSpecs"] == long_lived["workerGroupSpecs"]
    assert job["autoscalerOptions"] == long_lived["autoscalerOptions"]
    assert job["headGroupSpec"]["rayStartParams"] == long_lived["headGroupSpec"]["rayStartParams"]


def test_rayjob_runs_rsearch_on_the_spec_its_configmap_mounts() -> None:
    job = _one("rayjob.yaml", "RayJob")["spec"]
    argv = job["entrypoint"].split()
    assert argv[:2] == ["rsearch", "run"]
    assert "--no-live" in argv and argv[argv.index("--address") + 1] == "auto"
    spec_path = Path(argv[2])
    head = job["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    config_maps = {v["name"]: v["configMap"]["name"] for v in head["volumes"] if "configMap" in v}
    mount = next(
        m for m in head["containers"][0]["volumeMounts"] if m["mountPath"] == str(spec_path.parent)
    )
    config_map = _one("rayjob.yaml", "ConfigMap")
    assert config_maps[mount["name"]] == config_map["metadata"]["name"]
    text = config_map["data"][spec_path.name]
    spec = parse_spec_text(text, f"rayjob.yaml:{spec_path.name}")
    assert spec.storage.startswith("/shared/")
    assert spec.resources.gpus_per_worker >= 1


def test_the_embedded_spec_check_can_fail() -> None:
    text = _one("rayjob.yaml", "ConfigMap")["data"]["search.yaml"]
    with pytest.raises(SpecError, match="num_trails"):
        parse_spec_text(text.replace("num_trials", "num_trails"), "broken")


def test_example_secret_holds_the_token_key() -> None:
    secret = _one("secret.example.yaml", "Secret")
    assert secret["metadata"]["name"] == SECRET
    assert set(secret["stringData"]) == {"token"}


def test_mlflow_service_answers_on_the_uri_the_pods_use() -> None:
    service = _one("mlflow.yaml", "Service")
    assert service["metadata"]["name"] == "mlflow"
    assert service["spec"]["ports"][0]["port"] == 5000
    deployment = _one("mlflow.yaml", "Deployment")
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
