"""Reports of a search: best trials, speed–accuracy Pareto fronts, importance, curves, plots.

Reads a run directory (its spec and Optuna study) and writes Markdown or self-contained HTML
with PNG figures. Depends on `rsearch.spec`, `rsearch.rundir`, Optuna and matplotlib only;
logging a report to MLflow is the caller's step (through `rsearch.tracking`). The names below
load on first use, so `rsearch best` (the best-trial table) never imports matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rsearch.report.build import REPORT_DIR, Report, write_report

from rsearch.report.formats import ReportFormat

_LAZY = {name: "rsearch.report.build" for name in ("REPORT_DIR", "Report", "write_report")}

__all__ = ["REPORT_DIR", "Report", "ReportFormat", "write_report"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rsearch.report' has no attribute {name!r}")
