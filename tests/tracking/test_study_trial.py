"""One child run per study trial: a trial that takes over another's study trial replaces its run.

A resumed search whose driver was killed before Tune's next snapshot gives the lost Tune
trial's Optuna trial to a new Tune trial; the lost trial's child run must not stay behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType

from rsearch.spec import SearchSpec
from rsearch.tracking import SearchRecorder
from rsearch.tracking.outbox import Outbox
from rsearch.tracking.records import Metrics, OpenTrial, from_line
from rsearch.tracking.runs import TAG_STUDY_TRIAL, TAG_TRIAL_ID, normalise_run_dir, search_id
from tests.tracking.conftest import make_trial, start
from tests.tracking.helpers import read_search


def recorder(store: str, experiment: str, run_dir: Path) -> SearchRecorder:
    """A recorder keeping its queue in the run directory, sending every record at once."""
    return SearchRecorder(store, experiment, run_dir / "mlflow", flush_interval=0.0)


def _deleted_runs(store: str, experiment: str) -> dict[str, Any]:
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    return {r.data.tags[TAG_TRIAL_ID]: r for r in runs}


def test_a_trial_taking_over_a_study_trial_replaces_the_lost_trials_run(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    done = make_trial(spec, "done", 0.1, 0.0, 2)
    lost = make_trial(spec, "lost", 0.2, 0.0, 2)
    first = recorder(store, experiment, run_dir)
    start(first, spec, spec_file, run_dir)
    first.trial_started("done", done.recipe, done.searched, study_trial=0)
    for row in done.epochs:
        first.trial_result("done", row, step=row["epoch"])
    first.trial_ended("done", "FINISHED", done.epochs[-1])
    first.trial_started("lost", lost.recipe, lost.searched, study_trial=1)
    first.trial_result("lost", lost.epochs[0], step=1)
    assert first.flush()
    lost_id = read_search(store, experiment).children["lost"].info.run_id
    del first  # killed; the resumed search gives study trial 1 to a new Tune trial

    second = recorder(store, experiment, run_dir)
    start(second, spec, spec_file, run_dir)
    second.trial_started("done", done.recipe, done.searched, study_trial=0)  # Tune restored it
    second.trial_ended("done", "FINISHED", done.epochs[-1])
    second.trial_started("adopter", lost.recipe, lost.searched, study_trial=1)
    for row in lost.epochs:  # trained again from scratch: its own values, from step 1
        second.trial_result("adopter", {**row, "val_top1": row["val_top1"] / 2}, step=row["epoch"])
    second.trial_ended("adopter", "FINISHED", lost.epochs[-1])
    assert second.end_search(["done"], {"val_top1": 0.7})

    s = read_search(store, experiment)
    assert set(s.children) == {"done", "adopter"}
    assert s.children["adopter"].data.tags[TAG_STUDY_TRIAL] == "1"
    assert s.children["done"].data.tags[TAG_STUDY_TRIAL] == "0"
    assert s.history("adopter", "val_top1") == [
        (r["epoch"], r["val_top1"] / 2) for r in lost.epochs
    ]
    assert {c.info.status for c in s.children.values()} == {"FINISHED"}
    assert _deleted_runs(store, experiment)["lost"].info.run_id == lost_id
    assert s.parent.data.params  # the parent itself is untouched


def test_records_a_killed_driver_left_queued_are_sent_then_their_run_replaced(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    # The driver died with the lost trial's records still queued (MLflow was down).
    lost = make_trial(spec, "lost", 0.2, 0.0, 2)
    queue = Outbox(run_dir / "mlflow", f"queue-{search_id(normalise_run_dir(run_dir))}", 2**20)
    queue.append(OpenTrial(trial="lost", ts=1, params={}, tags={}, artifacts=[], study_trial=4))
    queue.append(Metrics(trial="lost", step=1, ts=2, values={"val_top1": 0.1}), droppable=True)

    rec = recorder(store, experiment, run_dir)
    start(rec, spec, spec_file, run_dir)  # sends the queue first
    assert _read_children(store, experiment) == {"lost"}
    rec.trial_started("adopter", lost.recipe, lost.searched, study_trial=4)
    rec.trial_result("adopter", lost.epochs[0], step=1)
    assert rec.end_search()
    s = read_search(store, experiment)
    assert set(s.children) == {"adopter"}
    assert s.history("adopter", "val_top1") == [(1, lost.epochs[0]["val_top1"])]
    assert set(_deleted_runs(store, experiment)) == {"lost"}


def _read_children(store: str, experiment: str) -> set[str]:
    return set(read_search(store, experiment).children)


def test_opening_a_trial_again_keeps_its_run(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    t = make_trial(spec, "adopter", 0.1, 0.0, 1)
    first = recorder(store, experiment, run_dir)
    start(first, spec, spec_file, run_dir)
    first.trial_started("adopter", t.recipe, t.searched, study_trial=2)
    run_id = read_search(store, experiment).children["adopter"].info.run_id
    # Sent again by a later driver (killed before marking it sent), or a retried trial.
    second = recorder(store, experiment, run_dir)
    start(second, spec, spec_file, run_dir)
    second.trial_started("adopter", t.recipe, t.searched, study_trial=2)
    assert second.end_search()
    s = read_search(store, experiment)
    assert {k: c.info.run_id for k, c in s.children.items()} == {"adopter": run_id}
    assert _deleted_runs(store, experiment) == {}


def test_a_pbt_exploit_copying_a_donors_study_trial_replaces_nothing(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    donor = make_trial(spec, "donor", 0.1, 0.0, 1)
    rec = recorder(store, experiment, run_dir)
    start(rec, spec, spec_file, run_dir)
    rec.trial_started("donor", donor.recipe, donor.searched, study_trial=0)
    rec.trial_started("exploiter", donor.recipe, donor.searched, study_trial=1)
    # PBT restarts the exploiting trial with the donor's whole config, its number included.
    rec.trial_started("exploiter", donor.recipe, donor.searched, study_trial=0)
    assert rec.end_search()
    s = read_search(store, experiment)
    assert set(s.children) == {"donor", "exploiter"}
    assert s.children["exploiter"].data.tags[TAG_STUDY_TRIAL] == "1"
    assert _deleted_runs(store, experiment) == {}


def test_trials_without_a_study_trial_are_never_replaced(
    store: str, experiment: str, spec: SearchSpec, spec_file: Path, run_dir: Path
) -> None:
    t = make_trial(spec, "a", 0.1, 0.0, 1)
    rec = recorder(store, experiment, run_dir)
    start(rec, spec, spec_file, run_dir)
    rec.trial_started("a", t.recipe, t.searched)
    rec.trial_started("b", t.recipe, t.searched)
    assert rec.end_search()
    s = read_search(store, experiment)
    assert set(s.children) == {"a", "b"}
    assert TAG_STUDY_TRIAL not in s.children["a"].data.tags


def test_a_queued_open_trial_of_an_older_version_still_reads() -> None:
    line = b'{"op":"open_trial","ts":1,"trial":"t","params":{},"tags":{},"artifacts":[]}'
    record = from_line(line)
    assert isinstance(record, OpenTrial) and record.study_trial is None
