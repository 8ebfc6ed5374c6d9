"""`rsearch report RUN_DIR`: the report written (html or md, here or under --out) and logged to
the search's MLflow run; a wrong run directory or option is one message and exit 2.

What the report says (sections, Pareto sets, scaling, curves) is tests/report/test_report.py;
here, what the verb does with it. The run directories are hand-made (a real Optuna journal
study, no Ray).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from optuna.trial import TrialState

from rsearch.rundir import MANIFEST
from tests.cli.helpers import fails_cleanly, invoke
from tests.report.rundirs import SECTIONS, Trial, make_run, random_trials

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _finished(tmp_path: Path, tracked: bool = True) -> Path:
    run_dir, _ = make_run(tmp_path, random_trials(2, 41, ("val_top1",)), tracked=tracked)
    return run_dir


def test_html_in_the_run_directory(tmp_path: Path) -> None:
    run_dir = _finished(tmp_path)
    res = invoke("report", run_dir, "--no-mlflow")
    assert res.exit_code == 0, res.output
    page = run_dir / "report" / "report.html"
    assert res.stdout == f"report: {page}\n"
    assert res.stderr == ""  # finished, and not asked to log: nothing to warn about
    html = page.read_text()
    assert re.findall(r"<h2>(.+?)</h2>", html) == SECTIONS
    assert 'src="data:image/png;base64,' in html and not re.search(r'src="(?!data:)', html)


def test_markdown_under_out(tmp_path: Path) -> None:
    run_dir = _finished(tmp_path)
    out = tmp_path / "elsewhere" / "report"
    res = invoke("report", run_dir, "--no-mlflow", "--format", "md", "--out", out)
    assert res.exit_code == 0, res.output
    assert res.stdout == f"report: {out / 'report.md'}\n"
    text = (out / "report.md").read_text()
    assert re.findall(r"^## (.+)$", text, flags=re.M) == SECTIONS
    figures = re.findall(r"\]\(([\w.]+\.png)\)", text)
    assert "learning_curves.png" in figures
    for name in figures:  # each figure the page links to is written beside it
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
    assert not (run_dir / "report").exists()


def test_partial_report_of_a_running_search(tmp_path: Path) -> None:
    done = random_trials(3, 8, ("val_top1",))
    running = [
        Trial(TrialState.RUNNING, {"optim.lr": 0.01, "loss.label_smoothing": 0.1}, curve={1: 30.0}),
        Trial(TrialState.RUNNING, {"optim.lr": 0.02, "loss.label_smoothing": 0.1}),
    ]
    run_dir, _ = make_run(tmp_path, [*done, *running], num_trials=8)

    res = invoke("report", run_dir, "--format", "md", "--no-mlflow")

    assert res.exit_code == 0, res.output
    assert "partial report" in res.stderr
    text = (run_dir / "report" / "report.md").read_text()
    assert "Partial report: 2 trial(s) still running and 3 not yet started" in text
    assert "3 complete, 2 running" in text
    assert re.findall(r"^## (.+)$", text, flags=re.M) == SECTIONS


def test_untracked_search_is_not_logged(tmp_path: Path) -> None:
    run_dir = _finished(tmp_path, tracked=False)
    res = invoke("report", run_dir)
    assert res.exit_code == 0, res.output
    assert "run without tracking: report not logged to MLflow" in res.stderr
    assert (run_dir / "report" / "report.html").is_file()


def test_not_a_run_directory(tmp_path: Path) -> None:
    fails_cleanly(
        "report",
        tmp_path,
        expect=f"error: {tmp_path} is not an rsearch run directory (no {MANIFEST})",
    )


def test_no_finished_trial(tmp_path: Path) -> None:
    running = Trial(TrialState.RUNNING, {"optim.lr": 0.01, "loss.label_smoothing": 0.1})
    run_dir, _ = make_run(tmp_path, [running])
    fails_cleanly("report", run_dir, "--no-mlflow", expect="has finished yet (1 running)")
    assert not (run_dir / "report").exists()


def test_unknown_format(tmp_path: Path) -> None:
    run_dir = _finished(tmp_path)
    # A click usage error: its usage banner, then one `Error:` line naming the choices.
    stderr = fails_cleanly(
        "report", run_dir, "--format", "pdf", expect="'pdf' is not one of 'html', 'md'", lines=4
    )
    assert stderr.strip().splitlines()[-1].startswith("Error: Invalid value for '--format'")


@pytest.mark.parametrize("under", ["", "sub"], ids=["a file", "a folder under a file"])
def test_out_pointing_at_a_file(tmp_path: Path, under: str) -> None:
    run_dir = _finished(tmp_path)
    taken = tmp_path / "notes.txt"
    taken.write_text("not a folder\n")
    fails_cleanly("report", run_dir, "--no-mlflow", "--out", taken / under, expect=str(taken))
