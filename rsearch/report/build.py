"""write_report: a run directory in, a report file and its PNG figures out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rsearch.errors import UserError
from rsearch.report import fronts, sections
from rsearch.report.data import SearchRecord, load_search
from rsearch.report.formats import ReportFormat
from rsearch.report.ood import ood_section
from rsearch.report.render import Section, html_page, markdown
from rsearch.rundir import Run

REPORT_DIR = "report"
"""Folder of the run directory a report goes to by default."""
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


@dataclass(frozen=True)
class Report:
    """A written report: the page, its figures, and whether the search was still running."""

    page: Path
    figures: list[Path]
    partial: bool

    @property
    def files(self) -> list[Path]:
        """The page and its figures, e.g. to upload as artifacts."""
        return [self.page, *self.figures]


def write_report(
    run: Run | Path, out_dir: Path | None = None, fmt: ReportFormat = ReportFormat.html
) -> Report:
    """Write the report of a search, finished or still running.

    Args:
        run: The search's run (or its directory).
        out_dir: Where to write; defaults to `<run_dir>/report`.
        fmt: html (one self-contained page) or md (Markdown, PNGs beside it).

    Raises:
        UserError: When run_dir is not an rsearch run, or no trial has finished yet.
    """
    fmt = ReportFormat(fmt)
    search = load_search(run)
    finished = search.in_state(*FINISHED)
    if not finished:
        running = len(search.in_state("RUNNING", "WAITING"))
        raise UserError(
            f"no trial of {search.run_dir} has finished yet ({running} running); "
            "a report needs at least one"
        )
    out_dir = out_dir or search.run_dir / REPORT_DIR
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file in the way, no permission: the user's path to fix
        raise UserError(f"cannot write the report to {out_dir}: {e.strerror}") from None
    parts = build_sections(search, out_dir)
    title = f"rsearch report: {search.spec.name}"
    page = out_dir / f"report.{fmt.value}"
    html = fmt is ReportFormat.html
    page.write_text(html_page(title, parts) if html else markdown(title, parts))
    partial = len(finished) < max(len(search.trials), search.spec.search.num_trials)
    return Report(page, [f for s in parts for f in s.figures], partial)


def build_sections(search: SearchRecord, out_dir: Path) -> list[Section]:
    """Every section of the report in reading order (scaling only when the search scaled)."""
    compute = sections.compute(search)
    parts = [
        sections.summary(search),
        *([compute] if compute is not None else []),
        sections.best_trials(search),
        fronts.pareto(search, out_dir),
        sections.importance(search, out_dir),
        sections.parallel(search, out_dir),
        sections.curves(search, out_dir),
    ]
    optional = [
        sections.rungs(search),
        sections.scaling(search, out_dir),
        ood_section(search, out_dir),
    ]
    return [*parts, *(part for part in optional if part is not None)]
