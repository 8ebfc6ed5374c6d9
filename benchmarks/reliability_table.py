"""The reliability suite's figures as the Markdown table in docs/reliability.md.

The tests under tests/reliability/ append one JSON line each to the file named by
RSEARCH_FIGURES (tests/reliability/figures.py); this renders those lines, the latest row per
case, in the order the doc lists them.

    RSEARCH_FULL_FIGURES=1 RSEARCH_FIGURES=/tmp/figures.jsonl \
        .venv/bin/pytest -q -m slow tests/reliability
    .venv/bin/python benchmarks/reliability_table.py /tmp/figures.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

FIXED = ("case", "done", "times", "lost", "at")
"""Columns every row has; everything else a test measured goes in the last column."""


def latest_rows(path: Path) -> list[dict[str, Any]]:
    """The last row recorded for each case, in first-seen order."""
    rows: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["case"]] = row
    return list(rows.values())


def measured(row: dict[str, Any]) -> str:
    """The row's own numbers as `name value` pairs (floats to 3 significant digits)."""
    items = []
    for key in sorted(k for k in row if k not in FIXED):
        value = row[key]
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        items.append(f"{key.replace('_', ' ')} {text}")
    return "; ".join(items)


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table: case, what was done, how often, what was lost, measured."""
    lines = ["| case | what was done | times | lost | measured |", "|---|---|---|---|---|"]
    for row in rows:
        cells = [row["case"], row["done"], str(row["times"]), row["lost"], measured(row)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Print the table of the figures file given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", type=Path, help="the JSON-lines file RSEARCH_FIGURES named")
    print(table(latest_rows(parser.parse_args().figures)))


if __name__ == "__main__":
    main()
