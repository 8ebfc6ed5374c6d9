"""Validation of KubeRay objects against the operator's CustomResourceDefinitions, offline.

The CRDs (RayCluster, RayJob; KubeRay's `ray-operator/config/crd/bases/`) are reference data
beside the repository, in ../shared/reference/kuberay-crds (or $RSEARCH_KUBERAY_CRDS). Their
schemas are plain OpenAPI v3, checked with jsonschema. The API server prunes or (with
kubectl's default strict field validation) rejects fields a schema does not declare, while
JSON Schema accepts them: so every object schema that lists its properties is closed here,
and a misspelt field fails as it would on `kubectl apply`.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.deploy.paths import REPO

CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}


def crd_dir() -> Path:
    """Where the CRD files are looked for."""
    return Path(
        os.environ.get("RSEARCH_KUBERAY_CRDS") or REPO.parent / "shared/reference/kuberay-crds"
    )


@cache
def schema(kind: str, version: str = "v1") -> dict[str, Any]:
    """The closed OpenAPI v3 schema of a KubeRay kind."""
    # The C loader: the two files are 2 MB of YAML, ten times slower to parse in Python.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load((crd_dir() / CRD_FILES[kind]).read_text(), Loader=loader)
    served = {v["name"]: v for v in crd["spec"]["versions"]}
    return _closed(served[version]["schema"]["openAPIV3Schema"])


def _closed(node: Any) -> Any:
    if isinstance(node, list):
        return [_closed(n) for n in node]
    if not isinstance(node, dict):
        return node
    closed = {k: _closed(v) for k, v in node.items()}
    if (
        "properties" in closed
        and "additionalProperties" not in closed
        and not closed.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


def crd_errors(doc: dict[str, Any]) -> list[str]:
    """What the CRD schema of doc's kind finds wrong with it: `path: message` per error."""
    version = doc["apiVersion"].split("/", 1)[1]
    validator = jsonschema.Draft7Validator(schema(doc["kind"], version))
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]
