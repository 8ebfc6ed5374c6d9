"""SearchRecorder against a real SQLite MLflow store: what a search leaves in MLflow."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from rsearch.rundir.layout import CHECKPOINTS
from rsearch.spec import SearchSpec
from rsearch.tracking import SearchRecorder, find_search_run, log_search_artifacts, spec_hash
from rsearch.tracking.entities import params_of
from rsearch.tracking.sender import TAG_CHECKPOINT
from rsearch.tracking.spec_params import resolved_spec
from tests.tracking.conftest import Trial, make_trial, simulate_search, start, write_checkpoint
from tests.tracking.helpers import read_search


def recorder(store: str, experiment: str, run_dir: Path, **options: Any) -> SearchRecorder:
    """A recorder keeping its queue in the run directory, sending every record at once."""
    options.setdefault("flush_interval", 0.0)
    return SearchRecorder(store, experiment, run_dir / "mlflow", **options)


def test_a_search_is_recorded_as_one_parent_and_a_child_per_trial(
    store: str,
    experiment: str,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    trials: list[Trial],
    tmp_path: Path,
) -> None:
    rec = recorder(store, experiment, run_dir)
    simulate_search(rec, spec, spec_file, run_dir, trials)
    assert (rec.queued, rec.dropped) == (0, 0)

    s = read_search(store, experiment)
    parent = s.parent
    assert parent.info.run_name.startswith("track-demo-2")
    assert parent.info.run_id == rec.parent_run_id
    assert parent.info.status == "FINISHED"
    assert parent.data.params["search.algorithm"] == "tpe"
    assert parent.data.params["search.num_trials"] == "3"
    assert parent.data.params["scheduler.type"] == "asha"
    assert parent.data.params["resources.workers_per_trial"] == "1"
    assert parent.data.params["objective.val_top1"] == "max"
    assert parent.data.tags["rsearch.spec_hash"] == spec_hash(resolved_spec(spec))
    assert parent.data.tags["rsearch.run_dir"] == str(run_dir)
    assert parent.data.tags["rsearch.ray_address"] == "embedded"
    assert parent.data.tags["rsearch.version"]
    assert s.artifact_names(parent, "spec") == {"spec/resolved.yaml", "spec/track-demo.yaml"}
    # The spec as written keeps its comment; the resolved one is the whole resolved spec.
    assert s.artifact_text(parent, "spec/track-demo.yaml", tmp_path / "a").startswith("# A tiny")
    resolved = yaml.safe_load(s.artifact_text(parent, "spec/resolved.yaml", tmp_path / "b"))
    assert resolved == resolved_spec(spec)

    finished, pruned, failed = trials
    assert set(s.children) == {t.trial_id for t in trials}
    best = s.children[finished.trial_id]
    assert parent.data.tags["rsearch.best_trial_id"] == finished.trial_id
    assert parent.data.tags["rsearch.best_run_id"] == best.info.run_id
    assert best.info.run_id in parent.data.tags["mlflow.note.content"]
    assert parent.data.metrics["val_top1"] == finished.epochs[-1]["val_top1"]

    for t in trials:
        child = s.children[t.trial_id]
        assert child.data.tags["rsearch.trial_id"] == t.trial_id
        assert child.data.tags["rsearch.searched"] == "optim.lr,loss.label_smoothing"
        assert child.data.params == params_of(t.recipe)
        assert child.data.params["optim.lr"] == str(t.searched["optim.lr"])
        expected = [(e["epoch"], e["val_top1"]) for e in t.epochs]
        assert s.history(t.trial_id, "val_top1") == expected
        assert "trial_id" not in child.data.metrics and "done" not in child.data.metrics
        assert s.artifact_names(child) >= {"recipe.yaml", "metrics.json"}

    assert best.info.status == "FINISHED"
    assert best.data.tags["rsearch.best"] == "true"
    assert best.data.metrics["params_m"] == 11.2  # a final metric no epoch reported
    summary = s.artifact_json(best, "metrics.json", tmp_path / "c")
    assert summary["status"] == "FINISHED" and summary["metrics"]["params_m"] == 11.2
    assert s.artifact_names(best, "checkpoint") == {"checkpoint/checkpoint.pt"}

    killed = s.children[pruned.trial_id]
    assert killed.info.status == "KILLED"
    assert killed.data.tags["rsearch.pruned"] == "true"
    assert "checkpoint" not in s.artifact_names(killed)  # policy "best": only the best's

    broken = s.children[failed.trial_id]
    assert broken.info.status == "FAILED"
    assert broken.data.tags["rsearch.error"] == "RuntimeError: CUDA out of memory"
    assert "rsearch.pruned" not in broken.data.tags


def test_epoch_results_are_sent_in_batches_not_one_request_per_key(
    store: str,
    experiment: str,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    trials: list[Trial],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches: list[int] = []
    real_log_batch = MlflowClient.log_batch

    def counting_log_batch(self: MlflowClient, run_id: str, metrics: Any = (), **kw: Any) -> Any:
        if metrics:
            batches.append(len(metrics))
        return real_log_batch(self, run_id, metrics, **kw)

    def no_single_metrics(*args: Any, **kw: Any) -> None:
        raise AssertionError("log_metric sends one request per key")

    # Spies on the real client: every call still reaches the real store.
    monkeypatch.setattr(MlflowClient, "log_batch", counting_log_batch)
    monkeypatch.setattr(MlflowClient, "log_metric", no_single_metrics)
    rec = recorder(store, experiment, run_dir, flush_interval=3600.0)
    start(rec, spec, spec_file, run_dir)
    trial = trials[0]
    rec.trial_started(trial.trial_id, trial.recipe, trial.searched)
    for row in trial.epochs:
        rec.trial_result(trial.trial_id, row, step=row["epoch"])
    sent_before_flush = list(batches)
    assert rec.flush()
    # Results within flush_interval of the last request wait, then go in one request:
    # 3 epochs x 3 metrics (val_top1, val_loss, epoch).
    assert sent_before_flush == []
    assert batches == [9]
    assert read_search(store, experiment).history(trial.trial_id, "val_loss") == [
        (1, 1.0),
        (2, 0.5),
        (3, 0.3333),
    ]


def test_a_resumed_search_continues_its_runs_without_duplicates(
    store: str,
    experiment: str,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    trials: list[Trial],
    tmp_path: Path,
) -> None:
    first = recorder(store, experiment, run_dir)
    parent_id = start(first, spec, spec_file, run_dir)
    a, b, _ = trials
    long_a = make_trial(spec, a.trial_id, 0.1, 0.05, 5)
    first.trial_started(a.trial_id, a.recipe, a.searched)
    first.trial_started(b.trial_id, b.recipe, b.searched)
    for row in long_a.epochs[:2]:
        first.trial_result(a.trial_id, row, step=row["epoch"])
    first.trial_result(b.trial_id, b.epochs[0], step=1)
    del first  # the driver dies here; the search is resumed by a new process

    second = recorder(store, experiment, run_dir)  # relative and absolute paths must match too
    assert start(second, spec, spec_file, run_dir / ".." / run_dir.name) == parent_id
    second.trial_started(a.trial_id, a.recipe, a.searched)  # same params again: no error
    # Tune restores trial A from its epoch-1 checkpoint: epoch 2 is reported a second time,
    # with a different value; the first one stays.
    for row in long_a.epochs[1:]:
        second.trial_result(a.trial_id, {**row, "val_top1": 0.0}, step=row["epoch"])
    second.trial_ended(a.trial_id, "FINISHED", long_a.epochs[-1])
    second.trial_ended(b.trial_id, "KILLED", b.epochs[0], pruned=True)
    assert second.end_search([a.trial_id], {"val_top1": 0.5})
    assert second.dropped == 0

    s = read_search(store, experiment)
    assert s.parent.info.run_id == parent_id
    assert set(s.children) == {a.trial_id, b.trial_id}
    history = s.history(a.trial_id, "val_top1")
    assert [step for step, _ in history] == [1, 2, 3, 4, 5]
    assert history[:2] == [(1, long_a.epochs[0]["val_top1"]), (2, long_a.epochs[1]["val_top1"])]
    assert s.children[a.trial_id].data.params == params_of(a.recipe)
    assert s.children[a.trial_id].info.status == "FINISHED"
    assert s.children[b.trial_id].info.status == "KILLED"
    assert s.parent.info.status == "FINISHED"

    # A third driver (resume after the end) finds the same runs and reopens the parent.
    third = recorder(store, experiment, run_dir)
    assert start(third, spec, spec_file, run_dir) == parent_id
    assert read_search(store, experiment).parent.info.status == "RUNNING"


def test_an_extended_search_with_a_new_best_moves_the_best_tag(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    first = recorder(store, experiment, run_dir)
    parent_id = start(first, spec, spec_file, run_dir)
    old = make_trial(spec, "old", 0.01, 0.0, 1)
    first.trial_started(old.trial_id, old.recipe, old.searched)
    first.trial_ended(old.trial_id, "FINISHED", old.epochs[-1])
    assert first.end_search([old.trial_id], {"val_top1": old.epochs[-1]["val_top1"]})

    # `rsearch extend`: a new driver adds a trial to the same parent, and it is the best.
    second = recorder(store, experiment, run_dir)
    assert start(second, spec, spec_file, run_dir) == parent_id
    new = make_trial(spec, "new", 0.2, 0.0, 1)
    second.trial_started(new.trial_id, new.recipe, new.searched)
    second.trial_ended(new.trial_id, "FINISHED", new.epochs[-1])
    assert second.end_search([new.trial_id], {"val_top1": new.epochs[-1]["val_top1"]})

    s = read_search(store, experiment)
    assert s.children["new"].data.tags["rsearch.best"] == "true"
    assert "rsearch.best" not in s.children["old"].data.tags
    assert s.parent.data.tags["rsearch.best_trial_id"] == "new"
    assert s.parent.data.metrics["val_top1"] == new.epochs[-1]["val_top1"]
    assert s.parent.info.status == "FINISHED"


def test_ending_the_search_closes_trials_left_running_as_killed(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    rec = recorder(store, experiment, run_dir)
    start(rec, spec, spec_file, run_dir)
    t = make_trial(spec, "orphan", 0.1, 0.0, 1)
    rec.trial_started("orphan", t.recipe, t.searched)  # its end never comes (Ctrl-C)
    assert rec.end_search(status="KILLED")
    s = read_search(store, experiment)
    assert s.children["orphan"].info.status == "KILLED"
    assert s.parent.info.status == "KILLED"
    assert "rsearch.best_trial_id" not in s.parent.data.tags


def test_a_retried_trial_reopens_its_run_and_forgets_the_old_error(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    rec = recorder(store, experiment, run_dir)
    start(rec, spec, spec_file, run_dir)
    t = make_trial(spec, "retried", 0.1, 0.0, 3)
    rec.trial_started(t.trial_id, t.recipe, t.searched)
    rec.trial_result(t.trial_id, t.epochs[0], step=1)
    rec.trial_ended(t.trial_id, "FAILED", t.epochs[0], error="node died")
    rec.flush()
    assert read_search(store, experiment).children["retried"].info.status == "FAILED"

    rec.trial_started(t.trial_id, t.recipe, t.searched)
    running = read_search(store, experiment).children["retried"]
    assert running.info.status == "RUNNING" and "rsearch.error" not in running.data.tags
    for row in t.epochs:
        rec.trial_result(t.trial_id, row, step=row["epoch"])
    rec.trial_ended(t.trial_id, "FINISHED", t.epochs[-1])
    rec.flush()
    s = read_search(store, experiment)
    assert s.children["retried"].info.status == "FINISHED"
    assert [step for step, _ in s.history("retried", "val_top1")] == [1, 2, 3]


def test_a_recipe_changed_mid_trial_keeps_its_params_and_tags_the_new_value(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    rec = recorder(store, experiment, run_dir)
    start(rec, spec, spec_file, run_dir)
    before = make_trial(spec, "pbt", 0.1, 0.0, 1)
    after = make_trial(spec, "pbt", 0.2, 0.0, 1)  # PBT perturbed the learning rate
    rec.trial_started("pbt", before.recipe, before.searched)
    rec.trial_started("pbt", after.recipe, after.searched)
    assert rec.flush() and rec.dropped == 0
    child = read_search(store, experiment).children["pbt"]
    assert child.data.params["optim.lr"] == "0.1"
    assert child.data.tags["rsearch.changed.optim.lr"] == "0.2"


@pytest.mark.parametrize(("policy", "expected"), [("all", {"a", "b"}), ("none", set())])
def test_checkpoint_policy_decides_which_trials_upload_theirs(
    policy: str,
    expected: set[str],
    store: str,
    experiment: str,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    tmp_path: Path,
) -> None:
    rec = recorder(store, experiment, run_dir, checkpoints=policy)
    start(rec, spec, spec_file, run_dir)
    for trial_id in ("a", "b"):
        t = make_trial(spec, trial_id, 0.1, 0.0, 1)
        rec.trial_started(trial_id, t.recipe, t.searched)
        rec.trial_ended(trial_id, "FINISHED", {}, checkpoint=write_checkpoint(run_dir, trial_id))
    assert rec.end_search(["a"], {})
    s = read_search(store, experiment)
    uploaded = {t for t, run in s.children.items() if "checkpoint" in s.artifact_names(run)}
    assert uploaded == expected


def test_best_checkpoint_of_a_trial_ended_before_a_resume_is_found_in_the_run_directory(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    first = recorder(store, experiment, run_dir)
    start(first, spec, spec_file, run_dir)
    t = make_trial(spec, "early", 0.1, 0.0, 1)
    first.trial_started("early", t.recipe, t.searched)
    first.trial_ended("early", "FINISHED", {}, checkpoint=write_checkpoint(run_dir, "early"))
    assert json.loads((run_dir / CHECKPOINTS).read_text()) == {"early": "train/early/checkpoint.pt"}
    # The tag is information only: the resumed driver finds the path in the run directory.
    child = read_search(store, experiment).children["early"]
    MlflowClient(store).delete_tag(child.info.run_id, TAG_CHECKPOINT)
    second = recorder(store, experiment, run_dir)
    start(second, spec, spec_file, run_dir)
    assert second.end_search(["early"], {})
    s = read_search(store, experiment)
    assert s.artifact_names(s.children["early"], "checkpoint") == {"checkpoint/checkpoint.pt"}


def test_a_checkpoint_tag_on_the_server_never_chooses_a_file_to_upload(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY")
    first = recorder(store, experiment, run_dir)
    start(first, spec, spec_file, run_dir)
    t = make_trial(spec, "best", 0.1, 0.0, 1)
    first.trial_started("best", t.recipe, t.searched)
    first.trial_ended("best", "FINISHED", {})  # no checkpoint recorded (e.g. URI storage)
    # Someone with write access to the tracking server plants a path on the best trial.
    child = read_search(store, experiment).children["best"]
    MlflowClient(store).set_tag(child.info.run_id, TAG_CHECKPOINT, str(secret))
    second = recorder(store, experiment, run_dir)  # a resumed driver
    start(second, spec, spec_file, run_dir)
    assert second.end_search(["best"], {})
    s = read_search(store, experiment)
    assert s.artifact_names(s.children["best"]) == {"metrics.json", "recipe.yaml"}


def test_a_checkpoint_leading_outside_the_run_directory_is_refused_with_a_warning(
    store: str,
    experiment: str,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = tmp_path / "secret.key"
    secret.write_text("PRIVATE KEY")
    link = run_dir / "train" / "a" / "checkpoint.pt"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)  # inside by name, outside once resolved
    rec = recorder(store, experiment, run_dir, checkpoints="all")
    start(rec, spec, spec_file, run_dir)
    for trial_id, checkpoint in (("a", link), ("b", secret)):
        t = make_trial(spec, trial_id, 0.1, 0.0, 1)
        rec.trial_started(trial_id, t.recipe, t.searched)
        rec.trial_ended(trial_id, "FINISHED", {}, checkpoint=checkpoint)
    assert rec.end_search(["a"], {})
    s = read_search(store, experiment)
    assert all("checkpoint" not in s.artifact_names(run) for run in s.children.values())
    assert not (run_dir / CHECKPOINTS).exists()
    refused = [r.message for r in caplog.records if "not uploading checkpoint" in r.message]
    assert len(refused) == 2


def closed_port() -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_neither_blocks_the_search_nor_loses_records(
    store: str,
    experiment: str,
    spec: SearchSpec,
    spec_file: Path,
    run_dir: Path,
    trials: list[Trial],
    tmp_path: Path,
) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    rec = recorder(down, experiment, run_dir, flush_attempts=2, flush_wait=0.5)
    started = time.monotonic()
    simulate_search(rec, spec, spec_file, run_dir, trials)  # ends with a flush
    # A refused connection fails at once, and is not tried again within retry_interval.
    assert time.monotonic() - started < 10
    assert rec.parent_run_id is None
    assert rec.queued == 1 + 3 + 6 + 3 + 1  # search, trials, epoch results, trial ends, end

    # The driver gave up; the next one (here: the store is back) sends the queue first.
    back = recorder(store, experiment, run_dir)
    start(back, spec, spec_file, run_dir)
    assert back.queued == 0 and back.dropped == 0
    s = read_search(store, experiment)
    finished, pruned, failed = trials
    assert s.children[finished.trial_id].info.status == "FINISHED"
    assert s.children[pruned.trial_id].data.tags["rsearch.pruned"] == "true"
    assert s.children[failed.trial_id].info.status == "FAILED"
    for t in trials:
        assert s.history(t.trial_id, "val_top1") == [(e["epoch"], e["val_top1"]) for e in t.epochs]
    # The replayed end of search closed the parent; the new start reopened it after that.
    assert s.parent.data.tags["rsearch.best_trial_id"] == finished.trial_id
    assert s.parent.info.status == "RUNNING"


def test_a_full_queue_drops_epoch_results_but_never_run_starts_and_ends(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    # One byte: every epoch result finds the queue full.
    rec = recorder(down, experiment, run_dir, flush_attempts=1, max_queue_bytes=1)
    start(rec, spec, spec_file, run_dir)
    t = make_trial(spec, "t", 0.1, 0.0, 3)
    rec.trial_started("t", t.recipe, t.searched)
    for row in t.epochs:
        rec.trial_result("t", row, step=row["epoch"])
    rec.trial_ended("t", "FINISHED", t.epochs[-1])
    assert not rec.end_search(["t"], {})
    assert rec.dropped == 3

    back = recorder(store, experiment, run_dir)
    start(back, spec, spec_file, run_dir)
    s = read_search(store, experiment)
    assert s.children["t"].info.status == "FINISHED"
    assert s.history("t", "val_top1") == [(0, t.epochs[-1]["val_top1"])]  # the final metrics
    assert s.parent.data.tags["rsearch.dropped_records"] == "3"  # the loss is on record


def test_trials_cannot_be_recorded_before_the_search_and_statuses_are_checked(
    store: str, experiment: str, run_dir: Path
) -> None:
    rec = recorder(store, experiment, run_dir)
    with pytest.raises(RuntimeError, match="start_search"):
        rec.trial_result("t", {"val_top1": 1.0}, step=1)
    with pytest.raises(ValueError, match="status"):
        rec.trial_ended("t", "DONE", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="checkpoints"):
        recorder(store, experiment, run_dir, checkpoints="some")


def test_report_files_reach_the_parent_run_found_by_its_run_directory(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path, tmp_path: Path
) -> None:
    rec = recorder(store, experiment, run_dir)
    parent_id = start(rec, spec, spec_file, run_dir)
    table = tmp_path / "best.csv"
    table.write_text("trial,val_top1\n")
    rec.log_search_artifacts([table], "report")
    assert rec.end_search()
    plot = tmp_path / "pareto.png"
    plot.write_bytes(b"\x89PNG")
    assert log_search_artifacts(run_dir, [plot], "report", tracking_uri=store) == parent_id
    found = find_search_run(run_dir, tracking_uri=store, experiment=experiment)
    assert found is not None and found.info.run_id == parent_id
    s = read_search(store, experiment)
    assert s.artifact_names(s.parent, "report") == {"report/best.csv", "report/pareto.png"}
    assert find_search_run(tmp_path / "elsewhere", tracking_uri=store) is None
    missing_store = f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}"
    assert find_search_run(run_dir, tracking_uri=missing_store) is None
    assert not (tmp_path / "none").exists()


def test_the_git_commit_of_the_spec_is_tagged(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    repo = spec_file.parent
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "spec"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    rec = recorder(store, experiment, run_dir)
    start(rec, spec, spec_file, run_dir)
    parent = read_search(store, experiment).parent
    assert parent.data.tags["mlflow.source.git.commit"] == head.strip()


def test_metrics_json_of_a_failed_trial_holds_the_error_and_non_finite_values(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path, tmp_path: Path
) -> None:
    rec = recorder(store, experiment, run_dir)
    start(rec, spec, spec_file, run_dir)
    t = make_trial(spec, "nan", 0.1, 0.0, 1)
    rec.trial_started("nan", t.recipe, t.searched)
    rec.trial_ended("nan", "FAILED", {"train_loss": float("nan")}, error="loss is NaN")
    rec.flush()
    s = read_search(store, experiment)
    summary = s.artifact_json(s.children["nan"], "metrics.json", tmp_path / "d")
    assert summary == {
        "trial_id": "nan",
        "status": "FAILED",
        "metrics": {"train_loss": "nan"},
        "error": "loss is NaN",
    }
    assert json.dumps(summary)  # strict JSON: no bare NaN
