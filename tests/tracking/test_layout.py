"""The layout rule: only rsearch/tracking imports mlflow, and tracking imports no ray or torch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MLFLOW_IMPORT = re.compile(r"^\s*(import mlflow|from mlflow[\s.])", re.MULTILINE)


def test_only_the_tracking_package_imports_mlflow() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "rsearch").rglob("*.py")
        if "tracking" not in path.relative_to(REPO / "rsearch").parts
        and MLFLOW_IMPORT.search(path.read_text())
    ]
    assert offenders == []


def test_tracking_imports_neither_ray_nor_torch() -> None:
    package = REPO / "rsearch" / "tracking"
    modules = sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__")
    assert {"recorder", "sender", "reports", "spec_params"} <= set(modules)
    code = (
        "import sys\n"
        + "".join(f"import rsearch.tracking.{m}\n" for m in modules)
        + "print(sorted(m for m in ('ray', 'torch', 'timm') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_importing_the_package_does_not_import_mlflow() -> None:
    code = "import sys, rsearch.tracking; print('mlflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_no_tracking_module_reaches_400_lines() -> None:
    lengths = {
        path.name: len(path.read_text().splitlines())
        for path in (REPO / "rsearch" / "tracking").glob("*.py")
    }
    assert {name: n for name, n in lengths.items() if n >= 400} == {}
