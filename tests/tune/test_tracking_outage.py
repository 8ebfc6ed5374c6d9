"""A real search recorded on a real MLflow server that dies mid-search and comes back."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from rsearch.rundir import STUDY_FILE
from rsearch.spec import load_spec
from rsearch.tracking import find_search_run, start_ui
from rsearch.tune.driver import RunInfo, run_search
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec

pytestmark = pytest.mark.slow


def test_search_survives_tracking_outage(ray_2cpu: None, tmp_path: Path) -> None:
    backend = f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}"
    (tmp_path / "server").mkdir()
    server = start_ui(backend, port=0, log_path=tmp_path / "server.log")
    port = int(server.base_url.rsplit(":", 1)[1])
    path = write_spec(tmp_path, trials=3, concurrent=2, scheduler="{type: none}", epochs=2)
    spec = load_spec(path, flags={"--tracking-uri": server.base_url})
    done: dict[str, RunInfo] = {}

    def search() -> None:
        done["info"] = run_search(spec, path, live=False)

    worker = threading.Thread(target=search)
    worker.start()
    try:
        deadline = time.time() + 300
        while time.time() < deadline:  # the server dies once the first epoch is in
            runs = list((tmp_path / "runs").glob("tiny-*"))
            if runs and (runs[0] / STUDY_FILE).is_file():
                trials = load_study(runs[0], spec).trials
                if any(t.intermediate_values or t.state.is_finished() for t in trials):
                    break
            time.sleep(0.5)
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(30)
        time.sleep(8)  # trials go on reporting while nobody listens
        server = start_ui(backend, port=port, log_path=tmp_path / "server2.log")
        worker.join(600)
        assert not worker.is_alive()

        info = done["info"]
        parent = find_search_run(info.run_dir, tracking_uri=server.base_url)
        assert parent is not None and parent.info.status == "FINISHED"
        client = MlflowClient(server.base_url)
        children = client.search_runs(
            [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
        )
        assert len(children) == 3
        for child in children:
            steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_top1")]
            assert sorted(steps) == [1, 2], steps
            assert child.info.status == "FINISHED"
    finally:
        server.stop()
