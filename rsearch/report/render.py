"""Turning report sections into Markdown (PNGs beside it) or one self-contained HTML page."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Table:
    """A header row and body rows of already formatted cells."""

    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Section:
    """One titled part of a report: paragraphs, then an optional table, then figures."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: Table | None = None
    figures: list[Path] = field(default_factory=list)


def markdown(title: str, sections: list[Section]) -> str:
    """The report as Markdown; figures are referenced by file name, next to the .md file."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        if section.table is not None:
            lines += [*_markdown_table(section.table), ""]
        for figure in section.figures:
            lines += [f"![{section.title}]({figure.name})", ""]
    return "\n".join(lines)


def _markdown_table(table: Table) -> list[str]:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [row(table.header), row(["---"] * len(table.header)), *map(row, table.rows)]


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def html_page(title: str, sections: list[Section]) -> str:
    """The report as one HTML page with every figure embedded as a base64 data URI."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        if section.table is not None:
            parts.append(_html_table(section.table))
        parts += [_html_image(section.title, figure) for figure in section.figures]
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_image(alt: str, figure: Path) -> str:
    data = base64.b64encode(figure.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
