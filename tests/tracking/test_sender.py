"""A queue a dead driver left: old lines, lines that are no record, errors that are no outage."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rsearch.spec import SearchSpec
from rsearch.tracking import SearchRecorder
from rsearch.tracking.runs import RunBook, normalise_run_dir, search_id
from tests.tracking.conftest import start
from tests.tracking.helpers import read_search

LEFT_QUEUE = [
    # As the version that queued plain dicts wrote them, with two lines no version can send.
    '{"op":"open_trial","trial":"t","ts":1700000000000,"params":{"optim.lr":"0.1"},'
    '"tags":{"rsearch.searched":"optim.lr"},"artifacts":[]}',
    '{"op":"metrics","trial":"t","step":1,"ts":1700000001000,"values":{"val_top1":0.5}}',
    '{"op":"set_note","ts":1700000001500,"note":"a record of a newer version"}',
    '{"op":"metrics","trial":"t","step":',
    '{"op":"metrics","trial":"t","step":2,"ts":1700000002000,"values":{"val_top1":0.6}}',
    '{"op":"end_trial","trial":"t","ts":1700000003000,"status":"FINISHED",'
    '"final":{"val_top1":0.6,"params_m":11.2},"tags":{},"artifacts":[]}',
]


def leave_queue(run_dir: Path, lines: list[str]) -> Path:
    """Write the queue a dead driver of this run directory would have left."""
    path = run_dir / "mlflow" / f"queue-{search_id(normalise_run_dir(run_dir))}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_lines_no_record_are_skipped_said_and_counted_and_the_rest_is_sent(
    store: str,
    experiment: str,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rsearch.tracking")
    queue = leave_queue(run_dir, LEFT_QUEUE)
    rec = SearchRecorder(store, experiment, run_dir / "mlflow", flush_interval=0.0)
    start(rec, spec, spec_file, run_dir)  # sends the left queue first
    assert (rec.queued, rec.dropped) == (0, 2)
    assert not queue.exists()
    skipped = [r.getMessage() for r in caplog.records if "skipping line" in r.getMessage()]
    assert len(skipped) == 2
    assert "line 3 " in skipped[0] and "set_note" in skipped[0]
    assert "line 4 " in skipped[1] and '{"op":"metrics","trial":"t","step":' in skipped[1]

    assert rec.end_search(["t"], {"val_top1": 0.6})
    s = read_search(store, experiment)
    assert s.history("t", "val_top1") == [(1, 0.5), (2, 0.6)]
    assert s.children["t"].data.metrics["params_m"] == 11.2
    assert s.children["t"].info.status == "FINISHED"
    assert s.parent.data.tags["rsearch.dropped_records"] == "2"  # the loss is on record


class UploadRefused(Exception):
    """Stands in for a cloud SDK's error (boto3's for an s3:// artifact root: no S3 here)."""


def test_an_error_that_is_no_outage_costs_its_record_and_says_where_it_was_raised(
    store: str,
    experiment: str,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="rsearch.tracking")

    def refuse(*args: object) -> None:
        raise UploadRefused("403 Forbidden")

    monkeypatch.setattr(RunBook, "log_artifact", refuse)
    rec = SearchRecorder(store, experiment, run_dir / "mlflow", flush_interval=0.0)
    start(rec, spec, spec_file, run_dir)  # its spec files cannot be uploaded
    report = tmp_path / "report.md"
    report.write_text("# report")
    rec.log_search_artifacts([report])
    monkeypatch.undo()
    assert rec.end_search()

    assert rec.dropped == 2
    (first, second) = [r.getMessage() for r in caplog.records]
    assert "'open_search'" in first and "'search_artifacts'" in second
    assert "UploadRefused: 403 Forbidden (raised at " in first
    assert f"{Path(__file__)}:" in first and "in refuse" in first
    s = read_search(store, experiment)
    assert s.parent.info.status == "FINISHED"  # what came after was sent
