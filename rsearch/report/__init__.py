"""Reports of a search: best trials, speed–accuracy Pareto fronts, importance, curves, plots.

Reads a run directory (its spec and Optuna study) and writes Markdown or self-contained HTML
with PNG figures. Depends on `rsearch.spec`, Optuna and matplotlib only; logging a report to
MLflow is the caller's step (through `rsearch.tracking`).
"""

from __future__ import annotations

from rsearch.report.build import REPORT_DIR, Report, write_report

__all__ = ["REPORT_DIR", "Report", "write_report"]
