"""A real MLflow server killed mid-search and restarted: the search goes on, nothing is lost."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

from rsearch.spec import SearchSpec
from rsearch.tracking import SearchRecorder, UiServer, start_ui
from tests.tracking.conftest import make_trial, start, write_checkpoint
from tests.tracking.helpers import read_search

EPOCHS = 6
DOWN = (3, 4)
"""Epochs reported while the server is dead."""


def kill(server: UiServer) -> None:
    """End the server abruptly, as a crash or a lost machine would."""
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(30)


@pytest.mark.slow  # two server starts: ~25 s on an idle machine, more on a busy one
def test_records_made_while_the_server_is_down_arrive_once_and_in_order(
    ram_dir: Path,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rsearch.tracking")
    backend = f"sqlite:///{ram_dir / 'outage' / 'mlflow.db'}"
    server = start_ui(backend, port=0, log_path=tmp_path / "server.log")
    port = int(server.base_url.rsplit(":", 1)[1])
    rec = SearchRecorder(
        server.base_url, "outage", run_dir / "mlflow", flush_interval=0.0, retry_interval=1.0
    )
    trials = [make_trial(spec, f"t{i}", 0.05 * (i + 1), 0.0, EPOCHS) for i in range(2)]
    try:
        start(rec, spec, spec_file, run_dir)
        for t in trials:
            rec.trial_started(t.trial_id, t.recipe, t.searched)
        for epoch in range(1, EPOCHS + 1):
            if epoch == DOWN[0]:
                kill(server)
            if epoch == DOWN[-1] + 1:
                server = start_ui(backend, port=port, log_path=tmp_path / "server2.log")
                restarted_ms = time.time() * 1000
            began = time.monotonic()
            for t in trials:
                rec.trial_result(t.trial_id, t.epochs[epoch - 1], step=epoch)
            if epoch in DOWN:
                # A refused connection costs one quick failure, then records just queue.
                assert time.monotonic() - began < 5
                assert rec.queued > 0
        for t in trials:
            ckpt = write_checkpoint(run_dir, t.trial_id)
            rec.trial_ended(t.trial_id, "FINISHED", t.epochs[-1], checkpoint=ckpt)
        assert rec.end_search([trials[1].trial_id], {"val_top1": trials[1].epochs[-1]["val_top1"]})
        assert (rec.queued, rec.dropped) == (0, 0)

        s = read_search(server.base_url, "outage")
        assert set(s.children) == {"t0", "t1"}
        for t in trials:
            expected = [(e["epoch"], e["val_top1"]) for e in t.epochs]
            assert s.history(t.trial_id, "val_top1") == expected
            assert s.children[t.trial_id].info.status == "FINISHED"
            # Results queued during the outage keep the time they were made at.
            points = s.client.get_metric_history(s.children[t.trial_id].info.run_id, "val_top1")
            stamps = [m.timestamp for m in sorted(points, key=lambda m: m.step)]
            assert stamps == sorted(stamps)
            assert all(stamps[e - 1] < restarted_ms for e in DOWN)
        best = s.children["t1"]
        assert s.artifact_names(best, "checkpoint") == {"checkpoint/checkpoint.pt"}
        assert s.parent.info.status == "FINISHED"
        assert s.parent.data.tags["rsearch.best_run_id"] == best.info.run_id
        messages = [r.getMessage() for r in caplog.records]
        assert any("is unreachable" in m for m in messages)
        assert any("reachable again" in m for m in messages)
    finally:
        server.stop()
