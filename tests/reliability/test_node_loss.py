"""A search on a three-node Ray cluster survives losing a node in the middle of a trial.

The nodes are real Ray nodes (`ray.cluster_utils.Cluster`) on this machine: a head with no
CPUs, where the test's driver runs, and two 1-CPU workers, each training one trial. Once a
trial has checkpointed an epoch, the node holding its Train worker is killed outright (no
graceful shutdown, as a lost machine); the trial must go on from its last checkpoint on the
other node, losing at most the epoch it was training: the first epoch its new Train attempt
reports follows the last one reported before the kill (or repeats it, when the checkpoint of
that epoch was not yet written), and no epoch is reported twice.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow import MlflowClient

from rsearch.cluster.auth import resolve_token
from rsearch.spec import load_spec
from rsearch.tune.driver import run_search
from tests.reliability.figures import record
from tests.study_helpers import load_study
from tests.tune.conftest import write_spec
from tests.tune.mlflow_checks import epoch_steps, search_runs

pytestmark = pytest.mark.slow

EPOCHS = 12
TRIALS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def three_nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A head without CPUs (dashboard on a free port) and two 1-CPU worker nodes."""
    import ray
    from ray.cluster_utils import Cluster

    # A Ray temp dir of our own: the head writes its address to `<temp>/ray/ray_current_cluster`,
    # which any plain `ray.init()` on this machine would otherwise join. Short, because Ray's
    # socket paths live under it.
    temp = tempfile.mkdtemp(prefix="rsmn-", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", temp)
    # Ray Train's run and attempt records (which node each attempt's workers ran on), served by
    # the dashboard: the test's evidence that a trial moved to another node.
    monkeypatch.setenv("RAY_TRAIN_ENABLE_STATE_TRACKING", "1")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": _free_port(),
        },
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def _trial_results(runs: Path) -> dict[str, list[dict[str, Any]]]:
    """Every Tune trial's reported results so far, by Tune trial id."""
    results = {}
    for path in runs.glob("*/*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            results[rows[0]["trial_id"]] = rows
    return results


def _train_runs(cluster: Any) -> list[dict[str, Any]]:
    """Every Ray Train run with its attempts (dashboard REST); none before the first starts."""
    url = f"http://{cluster.webui_url}/api/train/v2/runs/v1"
    # Once any local ray.init() on this machine has made ~/.ray/auth_token, new heads (this
    # one too) serve their dashboard with token auth: present the token as a client would.
    token = resolve_token()
    request = urllib.request.Request(url, headers=token.headers() if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return list(json.loads(response.read())["train_runs"])
    except OSError:  # no Train run yet: the state actor does not exist
        return []


def _train_attempts(cluster: Any, trial_id: str) -> list[dict[str, Any]]:
    """The Ray Train attempts of a Tune trial's Train runs, oldest first."""
    attempts = [
        a
        for run in _train_runs(cluster)
        if run["name"].startswith(f"trial-{trial_id}-")
        for a in run["attempts"]
    ]
    return sorted(attempts, key=lambda a: a["start_time_ns"])


def _kill_first_training_node(cluster: Any, runs: Path, killed: dict[str, Any]) -> None:
    """Once a trial has checkpointed its first epoch, kill the node its Train worker runs on.

    Progress is read from the Train checkpoints the worker writes every epoch, which land on
    disk at once (Tune's result.json files are flushed lazily and may lag by several epochs).
    The trial is then one or two epochs into its EPOCHS, so it is surely still training.
    """
    deadline = time.time() + 240
    while time.time() < deadline:
        for run in _train_runs(cluster):
            attempts = sorted(run["attempts"], key=lambda a: a["start_time_ns"])
            if not attempts or attempts[-1]["status"] != "RUNNING":
                continue
            if not any(runs.glob(f"*/train/{run['name']}/checkpoint_*")):
                continue
            nodes = {w["node_id"] for w in attempts[-1]["workers"]}
            victims = [n for n in cluster.worker_nodes if n.node_id in nodes]
            if victims:
                killed_at = time.time()
                cluster.remove_node(victims[0], allow_graceful=False)
                killed.update(
                    trial=run["name"].split("-")[1], node=victims[0].node_id, at=killed_at
                )
                return
        time.sleep(0.2)


def test_trial_resumes_on_another_node_after_its_node_dies(
    three_nodes: Any, tmp_path: Path
) -> None:
    path = write_spec(
        tmp_path, trials=TRIALS, concurrent=TRIALS, scheduler="{type: none}", epochs=EPOCHS
    )
    # All of digits: epochs long enough (~0.6 s) that a trial is still training when its node
    # is killed a few epochs in.
    spec = load_spec(path, ["search.max_failures=2", "base.data.fraction=1.0"])
    killed: dict[str, Any] = {}
    watcher = threading.Thread(
        target=_kill_first_training_node,
        args=(three_nodes, tmp_path / "runs", killed),
        daemon=True,
    )
    watcher.start()
    started = time.monotonic()
    info = run_search(spec, path, address=three_nodes.address, live=False)
    wall = time.monotonic() - started
    watcher.join(timeout=5)
    assert killed, "no trial's node was found training after its first epoch"

    # Tune saw every epoch of the trial exactly once, in order: after the node died the trial
    # went on from its checkpointed epoch instead of starting again at epoch 1.
    results = _trial_results(tmp_path / "runs")
    attempts = _train_attempts(three_nodes, killed["trial"])
    epochs = [r["epoch"] for r in results[killed["trial"]]]
    assert epochs == list(range(1, EPOCHS + 1)), (killed, epochs, attempts)
    # ... on another node: a later Train attempt of the trial (a worker group Ray Train restarted,
    # or a new Train run after Tune restored the trial) ran its worker elsewhere.
    nodes = [{w["node_id"] for w in a["workers"]} for a in attempts]
    assert killed["node"] in nodes[0], (killed, attempts)
    assert nodes[-1] and killed["node"] not in nodes[-1], (killed, attempts)

    assert info.errors == [], info.errors
    study = load_study(info.run_dir, spec)
    assert len(study.trials) == TRIALS
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    _, children = search_runs(info.run_dir)
    assert sorted(c.data.tags["rsearch.trial_id"] for c in children) == sorted(results)
    for child in children:
        assert epoch_steps(child.info.run_id) == list(range(1, EPOCHS + 1))
        assert child.info.status == "FINISHED"

    (child,) = [c for c in children if c.data.tags["rsearch.trial_id"] == killed["trial"]]
    before, restored = _epochs_around_the_kill(child.info.run_id, killed["at"], attempts[-1])
    recomputed = before - restored
    assert restored >= 1, f"trained again from scratch (last epoch before the kill: {before})"
    assert 0 <= recomputed <= 1, (before, restored)
    record(
        "node lost mid-trial",
        "the node training a trial killed (no graceful shutdown) on a 3-node cluster",
        1,
        f"{recomputed} epoch(s) recomputed, the epoch in flight at the kill",
        epochs=EPOCHS,
        last_epoch_before_kill=before,
        restored_from_epoch=restored,
        wall_s=round(wall, 1),
    )


def _epochs_around_the_kill(
    run_id: str, killed_at: float, last_attempt: dict[str, Any]
) -> tuple[int, int]:
    """(last epoch the driver received before the kill, epoch the new attempt restored from).

    Read from the child run's metric history, whose timestamps are when each result reached
    the driver; the new attempt's results are those after its start.
    """
    history = MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).get_metric_history(run_id, "val_top1")
    before = max((m.step for m in history if m.timestamp < killed_at * 1000), default=0)
    restart_ms = last_attempt["start_time_ns"] / 1e6
    after = [m.step for m in history if m.timestamp > restart_ms]
    assert after, (killed_at, restart_ms, [(m.step, m.timestamp) for m in history])
    return before, min(after) - 1
