"""Kubernetes' "restricted" Pod Security Standard, checked on the pod templates of manifests.

No API server runs here, so this applies the standard's rules (kubernetes.io/docs/concepts/
security/pod-security-standards, restricted profile, Linux pods) to the parsed YAML:

- baseline: no hostNetwork / hostPID / hostIPC, no privileged container, no hostPort, no
  capability added beyond NET_BIND_SERVICE, no hostPath (or other non-listed) volume;
- restricted: volumes of the allowed types only; every container sets
  allowPrivilegeEscalation: false and drops ALL capabilities; runAsNonRoot is true and
  runAsUser is not 0 (the container's setting, else the pod's); the seccomp profile is
  RuntimeDefault or Localhost (the container's, else the pod's).

The KubeRay autoscaler sidecar is not in the manifest: KubeRay injects it into the head pod
with `autoscalerOptions.securityContext`, so it is checked as a container with that context.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}
ALLOWED_ADDED_CAPABILITIES = {"NET_BIND_SERVICE"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


@dataclass(frozen=True)
class PodTemplate:
    """One pod template of a manifest: where it is, and its pod spec."""

    where: str
    spec: dict[str, Any]


def pod_templates(doc: dict[str, Any], source: str) -> Iterator[PodTemplate]:
    """Every pod template in a Kubernetes object (workloads, RayCluster, RayJob)."""
    kind, name = doc["kind"], doc["metadata"]["name"]
    where = f"{source}:{kind}/{name}"
    spec = doc.get("spec", {})
    if kind in WORKLOADS:
        yield PodTemplate(where, spec["template"]["spec"])
    elif kind == "CronJob":
        yield PodTemplate(where, spec["jobTemplate"]["spec"]["template"]["spec"])
    elif kind == "RayCluster":
        yield from _ray_cluster(spec, where)
    elif kind == "RayJob":
        if "submitterPodTemplate" in spec:
            yield PodTemplate(f"{where}/submitter", spec["submitterPodTemplate"]["spec"])
        if "rayClusterSpec" in spec:
            yield from _ray_cluster(spec["rayClusterSpec"], where)


def _ray_cluster(cluster: dict[str, Any], where: str) -> Iterator[PodTemplate]:
    head = dict(cluster["headGroupSpec"]["template"]["spec"])
    if cluster.get("enableInTreeAutoscaling"):
        sidecar = {
            "name": "autoscaler (injected by KubeRay)",
            "securityContext": cluster.get("autoscalerOptions", {}).get("securityContext", {}),
        }
        head["containers"] = [*head["containers"], sidecar]
    yield PodTemplate(f"{where}/head", head)
    for group in cluster.get("workerGroupSpecs", []):
        yield PodTemplate(f"{where}/{group['groupName']}", group["template"]["spec"])


def restricted_violations(template: PodTemplate) -> list[str]:
    """Each rule of the restricted profile the template breaks, as `where: field ...`."""
    pod = template.spec
    pod_context = pod.get("securityContext", {})
    found = [f"{field}: true" for field in ("hostNetwork", "hostPID", "hostIPC") if pod.get(field)]
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: type {sorted(kinds - ALLOWED_VOLUMES)}")
    if pod_context.get("runAsUser") == 0:
        found.append("securityContext.runAsUser: 0")
    containers = [
        *pod.get("initContainers", []),
        *pod.get("containers", []),
        *pod.get("ephemeralContainers", []),
    ]
    for container in containers:
        found += [f"{container['name']}: {v}" for v in _container(container, pod_context)]
    return [f"{template.where}: {v}" for v in found]


def _container(container: dict[str, Any], pod_context: dict[str, Any]) -> list[str]:
    context = container.get("securityContext", {})
    found = []
    if context.get("privileged"):
        found.append("privileged: true")
    if context.get("allowPrivilegeEscalation") is not False:
        found.append("allowPrivilegeEscalation is not false")
    capabilities = context.get("capabilities", {})
    if "ALL" not in capabilities.get("drop", []):
        found.append("capabilities.drop lacks ALL")
    added = set(capabilities.get("add", [])) - ALLOWED_ADDED_CAPABILITIES
    if added:
        found.append(f"capabilities.add {sorted(added)}")
    if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
        found.append("runAsNonRoot is not true (container or pod)")
    if context.get("runAsUser") == 0:
        found.append("runAsUser: 0")
    seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
    if seccomp.get("type") not in ALLOWED_SECCOMP:
        found.append("seccompProfile.type is not RuntimeDefault or Localhost (container or pod)")
    for port in container.get("ports", []):
        if port.get("hostPort"):
            found.append(f"hostPort {port['hostPort']}")
    return found
