"""KubeRay manifests parse, validate against KubeRay's CRDs, carry what docs/deploy.md
promises, and are hardened: every pod passes the "restricted" Pod Security Standard, only
the pods that call the Kubernetes API get a service account token, a NetworkPolicy admits
only the traffic the search needs, and MLflow cannot write the volume of Tune's state.

No Kubernetes API server runs here: the CRDs are checked with jsonschema (tests/deploy/crd.py)
and the Pod Security Standard and NetworkPolicies by the rules they define, applied to the
parsed YAML (tests/deploy/pod_security.py, `_admits` below).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rsearch.spec import SpecError, parse_spec_text
from tests.deploy.crd import crd_dir, crd_errors
from tests.deploy.paths import KUBERAY
from tests.deploy.pod_security import PodTemplate, pod_templates, restricted_violations

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


# --- CRD validation ---


@pytest.fixture(scope="module")
def crds() -> None:
    if not crd_dir().is_dir():
        pytest.skip(f"KubeRay CRDs not found at {crd_dir()} (set $RSEARCH_KUBERAY_CRDS)")


@pytest.mark.parametrize(
    ("name", "kind"), [("raycluster.yaml", "RayCluster"), ("rayjob.yaml", "RayJob")]
)
def test_ray_objects_validate_against_kuberays_crds(crds: None, name: str, kind: str) -> None:
    assert crd_errors(_one(name, kind)) == []


def test_crd_validation_catches_a_misspelt_field_and_a_wrong_type(crds: None) -> None:
    cluster = copy.deepcopy(_one("raycluster.yaml", "RayCluster"))
    container = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["securityContxt"] = container.pop("securityContext")
    cluster["spec"]["workerGroupSpecs"][0]["maxReplicas"] = "eight"
    errors = crd_errors(cluster)
    assert any("securityContxt" in e for e in errors), errors
    assert any(e.startswith("spec.workerGroupSpecs.0.maxReplicas:") for e in errors), errors


# --- Pod Security Standard "restricted" ---


def _all_templates() -> list[PodTemplate]:
    return [
        template
        for path in sorted(KUBERAY.glob("*.yaml"))
        for doc in _docs(path.name)
        for template in pod_templates(doc, path.name)
    ]


def test_every_pod_template_is_found() -> None:
    found = {t.where for t in _all_templates()}
    assert found == {
        "mlflow.yaml:Deployment/mlflow",
        "raycluster.yaml:RayCluster/rsearch/head",
        "raycluster.yaml:RayCluster/rsearch/gpu",
        "raycluster.yaml:RayCluster/rsearch/cpu",
        "rayjob.yaml:RayJob/rsearch-digits-gpu/submitter",
        "rayjob.yaml:RayJob/rsearch-digits-gpu/head",
        "rayjob.yaml:RayJob/rsearch-digits-gpu/gpu",
        "rayjob.yaml:RayJob/rsearch-digits-gpu/cpu",
    }


def test_every_pod_passes_the_restricted_pod_security_standard() -> None:
    violations = [v for t in _all_templates() for v in restricted_violations(t)]
    assert violations == []


def test_the_restricted_check_lists_each_failure() -> None:
    pod = {
        "hostNetwork": True,
        "securityContext": {"runAsNonRoot": True},
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}, {"name": "ok", "emptyDir": {}}],
        "containers": [
            {
                "name": "c",
                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
                "ports": [{"containerPort": 80, "hostPort": 80}],
            },
            {
                "name": "root",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": False,
                    "seccompProfile": {"type": "Unconfined"},
                },
            },
        ],
    }
    found = restricted_violations(PodTemplate("x", pod))
    assert found == [
        "x: hostNetwork: true",
        "x: volume host: type ['hostPath']",
        "x: c: privileged: true",
        "x: c: allowPrivilegeEscalation is not false",
        "x: c: capabilities.drop lacks ALL",
        "x: c: capabilities.add ['SYS_ADMIN']",
        "x: c: seccompProfile.type is not RuntimeDefault or Localhost (container or pod)",
        "x: c: hostPort 80",
        "x: root: runAsNonRoot is not true (container or pod)",
        "x: root: seccompProfile.type is not RuntimeDefault or Localhost (container or pod)",
    ]


def test_the_injected_autoscaler_is_checked_with_its_own_context() -> None:
    cluster = copy.deepcopy(_one("raycluster.yaml", "RayCluster"))
    del cluster["spec"]["autoscalerOptions"]["securityContext"]
    head = next(t for t in pod_templates(cluster, "c") if t.where.endswith("/head"))
    assert restricted_violations(head) == [
        "c:RayCluster/rsearch/head: autoscaler (injected by KubeRay): "
        "allowPrivilegeEscalation is not false",
        "c:RayCluster/rsearch/head: autoscaler (injected by KubeRay): capabilities.drop lacks ALL",
    ]


# --- Service account tokens ---


def test_only_autoscaling_heads_get_a_service_account_token() -> None:
    """The autoscaler sidecar scales pods through the API; nothing else calls it."""
    for template in _all_templates():
        wanted = template.where.endswith("/head")
        assert template.spec.get("automountServiceAccountToken") is wanted, template.where
    for _, cluster in _cluster_specs():
        assert cluster["enableInTreeAutoscaling"] is True


# --- NetworkPolicy ---


def _labels(name: str, kind: str, path: tuple[str, ...]) -> dict[str, str]:
    node: Any = _one(name, kind)
    for key in path:
        node = node[int(key)] if key.isdigit() else node[key]
    return dict(node["metadata"]["labels"])


@dataclass(frozen=True)
class Pods:
    """The labels of each kind of rsearch pod, as the manifests give them."""

    head: dict[str, str]
    worker: dict[str, str]
    submitter: dict[str, str]
    mlflow: dict[str, str]


@pytest.fixture(scope="module")
def pods() -> Pods:
    return Pods(
        head=_labels("raycluster.yaml", "RayCluster", ("spec", "headGroupSpec", "template")),
        worker=_labels(
            "raycluster.yaml", "RayCluster", ("spec", "workerGroupSpecs", "0", "template")
        ),
        submitter=_labels("rayjob.yaml", "RayJob", ("spec", "submitterPodTemplate")),
        mlflow=_labels("mlflow.yaml", "Deployment", ("spec", "template")),
    )


STRANGER = {"app": "something-else"}


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels is modelled here"
    return selector.get("matchLabels", {}).items() <= labels.items()


def _admits(source: dict[str, str], target: dict[str, str], port: int) -> bool:
    """Whether the NetworkPolicies let a pod of the same namespace reach target:port (TCP).

    A pod no Ingress policy selects admits everything; otherwise one rule of one selecting
    policy must match both the source (podSelector peers) and the port.
    """
    policies = [
        p["spec"]
        for p in _docs("networkpolicy.yaml")
        if "Ingress" in p["spec"]["policyTypes"] and _matches(p["spec"]["podSelector"], target)
    ]
    if not policies:
        return True
    return any(
        any(_matches(peer["podSelector"], source) for peer in rule.get("from", []))
        and (not rule.get("ports") or any(p["port"] == port for p in rule["ports"]))
        for policy in policies
        for rule in policy.get("ingress", [])
    )


def test_ray_pods_talk_to_each_other_on_any_port(pods: Pods) -> None:
    for port in (6379, 8265, 10001, 12345, 19999):
        assert _admits(pods.worker, pods.head, port) and _admits(pods.head, pods.worker, port)
        assert _admits(pods.worker, pods.worker, port)


def test_the_submitter_reaches_only_the_jobs_api_of_the_head(pods: Pods) -> None:
    assert _admits(pods.submitter, pods.head, 8265)
    assert not _admits(pods.submitter, pods.head, 6379)
    assert not _admits(pods.submitter, pods.worker, 8265)
    assert not _admits(pods.submitter, pods.mlflow, 5000)


def test_mlflow_admits_the_ray_pods_on_its_port_only(pods: Pods) -> None:
    assert _admits(pods.head, pods.mlflow, 5000) and _admits(pods.worker, pods.mlflow, 5000)
    assert not _admits(pods.head, pods.mlflow, 22)
    assert not _admits(STRANGER, pods.mlflow, 5000)


def test_other_pods_reach_no_rsearch_pod(pods: Pods) -> None:
    for target in (pods.head, pods.worker, pods.mlflow):
        for port in (5000, 6379, 8265, 10001):
            assert not _admits(STRANGER, target, port)


def test_every_policy_selects_pods_that_exist_and_mlflow_egress_is_dns_only(
    pods: Pods,
) -> None:
    every = [pods.head, pods.worker, pods.mlflow]
    for policy in _docs("networkpolicy.yaml"):
        assert any(_matches(policy["spec"]["podSelector"], p) for p in every), policy["metadata"]
    mlflow = next(
        p for p in _docs("networkpolicy.yaml") if p["metadata"]["name"] == "rsearch-mlflow"
    )
    ports = {(p["protocol"], p["port"]) for rule in mlflow["spec"]["egress"] for p in rule["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53)}
    # The RayJob's cluster carries the same labels as the long-lived one.
    job = _one("rayjob.yaml", "RayJob")["spec"]["rayClusterSpec"]
    assert job["headGroupSpec"]["template"]["metadata"]["labels"] == pods.head


# --- Volumes: MLflow and Tune's pickled state ---


def _claims(pod: dict[str, Any]) -> dict[str, str]:
    return {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("volumes", [])
        if "persistentVolumeClaim" in v
    }


def test_mlflow_cannot_touch_the_volume_of_tunes_state() -> None:
    """Tune's experiment state is pickled on the shared volume: a writer there runs code in
    the search driver. MLflow mounts its own volumes only, and no Ray pod mounts those."""
    mlflow_pod = _one("mlflow.yaml", "Deployment")["spec"]["template"]["spec"]
    mlflow_claims = set(_claims(mlflow_pod).values())
    assert PVC not in mlflow_claims
    ray_claims = {
        c
        for _, cluster in _cluster_specs()
        for pod in _pods(cluster)
        for c in _claims(pod).values()
    }
    assert ray_claims == {PVC}
    assert mlflow_claims.isdisjoint(ray_claims)
    declared = {
        d["metadata"]["name"] for d in _docs("mlflow.yaml") if d["kind"] == "PersistentVolumeClaim"
    }
    assert mlflow_claims == declared


def test_mlflow_stores_artifacts_and_database_on_its_own_mounts() -> None:
    pod = _one("mlflow.yaml", "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = dict(a.split("=", 1) for a in container["args"] if a.startswith("--") and "=" in a)
    mounts = {m["mountPath"]: _claims(pod)[m["name"]] for m in container["volumeMounts"]}
    assert args["--artifacts-destination"] == "/mlflow-artifacts"
    assert mounts["/mlflow-artifacts"] == "mlflow-artifacts"
    db_path = args["--backend-store-uri"].removeprefix("sqlite:///")
    assert mounts[str(Path(db_path).parent)] == "mlflow-db"
