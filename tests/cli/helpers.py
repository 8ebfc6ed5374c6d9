"""Running a verb in-process and checking that a user error is one clean message, exit 2."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from rsearch.cli import app

ROOT = Path(__file__).resolve().parents[2]
SPACES = ROOT / "search_spaces"
QUICKSTART = SPACES / "quickstart.yaml"

runner = CliRunner()


def invoke(*args: str | Path) -> Result:
    """Run `rsearch ARGS...` in this process."""
    return runner.invoke(app, [str(a) for a in args])


def fails_cleanly(*args: str | Path, expect: str, lines: int = 1) -> str:
    """Run a verb that must refuse its input; return its stderr.

    Args:
        args: The command line after `rsearch`.
        expect: A fragment the error output must hold (what names the problem).
        lines: How many lines the error output has (one per problem, plus any summary).
    """
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output + res.stderr
    assert expect in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == lines, res.stderr
    return str(res.stderr)
