"""What the reliability suite measured, kept for docs/reliability.md.

Each reliability test states what it did, how often, and what was lost through `record`. When
`RSEARCH_FIGURES` names a file, the rows are appended to it as JSON lines, and
`benchmarks/reliability_table.py` renders them as the table in docs/reliability.md; otherwise
they are only checked by the tests' own assertions.

The tests whose figures docs/reliability.md quotes at a size CI cannot afford every run (the
driver killed six times, 1,000 trials, a 30 s tracking outage) prove the same point at a
smaller size unless `RSEARCH_FULL_FIGURES=1`; `full_size` picks between the two.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

FIGURES_ENV = "RSEARCH_FIGURES"
"""Environment variable naming the JSON-lines file the suite's figures are appended to."""

FULL_ENV = "RSEARCH_FULL_FIGURES"
"""Environment variable: `1` runs the figure tests at the size docs/reliability.md quotes."""


def full_size() -> bool:
    """Whether the figure tests run at the full size docs/reliability.md quotes."""
    return os.environ.get(FULL_ENV, "") == "1"


def record(case: str, done: str, times: int, lost: str, **measured: Any) -> None:
    """Append one row of figures (a no-op unless RSEARCH_FIGURES is set).

    Args:
        case: The failure or load the test injected, e.g. "driver SIGKILL + resume".
        done: What was done, in a few words.
        times: How many times it was done.
        lost: What was lost (e.g. "nothing", "≤ 1 epoch of one trial").
        **measured: Any numbers worth reporting (seconds, MB, counts).
    """
    target = os.environ.get(FIGURES_ENV)
    if not target:
        return
    row = {"case": case, "done": done, "times": times, "lost": lost, "at": time.time()}
    row.update(measured)
    with Path(target).open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
