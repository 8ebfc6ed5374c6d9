"""The file formats a report is written in (light: the CLI imports it to parse `--format`)."""

from __future__ import annotations

from enum import Enum


class ReportFormat(str, Enum):
    """A report's file format."""

    html = "html"
    """One self-contained page, figures inlined."""
    md = "md"
    """Markdown, the PNG figures beside it."""
