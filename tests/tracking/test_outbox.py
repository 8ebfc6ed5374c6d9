"""The on-disk queue: typed records, order, persistence across processes, crash leftovers, bound."""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path

import pytest

from rsearch.tracking import outbox
from rsearch.tracking.outbox import Outbox
from rsearch.tracking.records import (
    EndSearch,
    EndTrial,
    Metrics,
    OpenSearch,
    OpenTrial,
    Record,
    SearchArtifacts,
    Unreadable,
    to_line,
)

EVERY_RECORD: list[Record] = [
    OpenSearch(
        ts=1,
        params={"search.seed": "0"},
        tags={"rsearch.version": "0.1.0"},
        artifacts=[("/r/spec/resolved.yaml", "spec")],
    ),
    OpenTrial(
        ts=2,
        trial="t1",
        params={"optim.lr": "0.1"},
        tags={"rsearch.searched": None},
        artifacts=[("/r/recipe.yaml", None)],
    ),
    Metrics(ts=3, trial="t1", step=1, values={"val_top1": 0.5, "epoch": 1.0}),
    EndTrial(
        ts=4,
        trial="t1",
        status="FAILED",
        final={"val_top1": 0.5},
        tags={"rsearch.error": "boom"},
        artifacts=[("/r/metrics.json", None), ("/r/ckpt", "checkpoint")],
    ),
    EndSearch(
        ts=5,
        status="FINISHED",
        best=["t1"],
        metrics={"val_top1": 0.5},
        checkpoints={"t1": "/r/ckpt"},
        artifacts=[],
        dropped=2,
    ),
    SearchArtifacts(ts=6, artifacts=[("/r/report", "report")]),
]


class Killed(BaseException):
    """The process stopped mid-write (what a SIGKILL would leave, without killing pytest)."""


OLD_LINES = {
    # Written by the version that queued plain dicts: json.dumps(record, separators=(",", ":")).
    OpenSearch: '{"op":"open_search","ts":1,"params":{"search.seed":"0"},'
    '"tags":{"rsearch.version":"0.1.0"},"artifacts":[["/r/spec/resolved.yaml","spec"]]}',
    OpenTrial: '{"op":"open_trial","trial":"t1","ts":2,"params":{"optim.lr":"0.1"},'
    '"tags":{"rsearch.searched":null},"artifacts":[["/r/recipe.yaml",null]]}',
    Metrics: '{"op":"metrics","trial":"t1","step":1,"ts":3,"values":{"val_top1":0.5,"epoch":1}}',
    EndTrial: '{"op":"end_trial","trial":"t1","ts":4,"status":"FAILED","final":{"val_top1":0.5},'
    '"tags":{"rsearch.error":"boom"},"artifacts":[["/r/metrics.json",null],["/r/ckpt","checkpoint"]]}',
    EndSearch: '{"op":"end_search","ts":5,"status":"FINISHED","best":["t1"],'
    '"metrics":{"val_top1":0.5},"checkpoints":{"t1":"/r/ckpt"},"artifacts":[],"dropped":2}',
    SearchArtifacts: '{"op":"search_artifacts","ts":6,"artifacts":[["/r/report","report"]]}',
}


def test_every_record_type_comes_back_equal_from_a_new_process(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "q", max_bytes=10_000)
    for record in EVERY_RECORD:
        box.append(record)
    assert Outbox(tmp_path, "q", max_bytes=10_000).pending() == EVERY_RECORD
    assert {type(r) for r in EVERY_RECORD} == set(OLD_LINES)  # every type is covered


def test_non_finite_metrics_keep_their_value_on_disk(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "q", max_bytes=10_000)
    box.append(Metrics(ts=1, trial="t", step=1, values={"loss": math.nan, "g": -math.inf}))
    assert b'"loss":NaN' in box.path.read_bytes()  # not null, as pydantic's JSON would write
    (read,) = Outbox(tmp_path, "q", max_bytes=10_000).pending()
    assert isinstance(read, Metrics)
    assert math.isnan(read.values["loss"]) and read.values["g"] == -math.inf


@pytest.mark.parametrize("kind", list(OLD_LINES), ids=lambda k: k.__name__)
def test_a_line_queued_by_the_dict_version_reads_as_its_model(
    tmp_path: Path, kind: type[Record]
) -> None:
    (tmp_path / "q.jsonl").write_text(OLD_LINES[kind] + "\n")
    (read,) = Outbox(tmp_path, "q", max_bytes=10_000).pending()
    expected = next(r for r in EVERY_RECORD if type(r) is kind)
    assert type(read) is kind and read == expected
    assert to_line(read) == to_line(expected)


def test_lines_no_known_record_come_back_unreadable_in_their_place(tmp_path: Path) -> None:
    lines = [
        OLD_LINES[SearchArtifacts],
        '{"op":"set_note","ts":7,"note":"from a newer version"}',  # unknown op
        '{"op":"metrics","trial":"t1","step":2,"ts":8,"values":{"a":1},"shard":3}',  # new field
        '{"op":"end_trial","trial":"t1","ts":9}',  # fields missing
        '{"op":"metrics","trial":',  # damaged, and not the last line: no crash cut it
        "[1, 2]",
    ]
    path = tmp_path / "q.jsonl"
    path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe not utf-8\n")
    pending = Outbox(tmp_path, "q", max_bytes=10_000).pending()
    assert isinstance(pending[0], SearchArtifacts)
    bad = pending[1:]
    assert all(isinstance(p, Unreadable) for p in bad)
    assert [p.line for p in bad if isinstance(p, Unreadable)] == [2, 3, 4, 5, 6, 7]
    assert isinstance(bad[0], Unreadable) and "set_note" in bad[0].reason
    assert isinstance(bad[1], Unreadable) and "shard" in bad[1].reason
    assert isinstance(bad[2], Unreadable) and "status" in bad[2].reason


def test_records_come_back_in_order_and_sent_ones_stay_sent_across_instances(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path, "q", max_bytes=10_000)
    for i in range(5):
        box.append(Metrics(ts=i, trial="t", step=i, values={"a": 1.0}))
    box.mark_sent(2)
    again = Outbox(tmp_path, "q", max_bytes=10_000)  # a new driver process
    assert [r.step for r in again.pending() if isinstance(r, Metrics)] == [2, 3, 4]
    assert len(again) == 3
    again.mark_sent(3)
    assert len(again) == 0 and not again.path.exists()


def test_a_line_cut_short_by_a_crash_is_dropped_and_later_records_are_whole(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path, "q", max_bytes=10_000)
    box.append(EVERY_RECORD[1])
    with open(box.path, "a") as handle:
        handle.write('{"op": "metr')  # the process died mid-write
    again = Outbox(tmp_path, "q", max_bytes=10_000)
    again.append(EVERY_RECORD[3])
    assert again.pending() == [EVERY_RECORD[1], EVERY_RECORD[3]]


def queue_with_a_cut_line(tmp_path: Path) -> Outbox:
    """A queue of every record type whose last line a crash cut short."""
    box = Outbox(tmp_path, "q", max_bytes=10_000)
    for record in EVERY_RECORD:
        box.append(record)
    with open(box.path, "a") as handle:
        handle.write('{"op": "metr')  # a cut line, so the next Outbox rewrites the file
    return box


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_crash_at_any_step_of_the_repair_loses_no_record(
    step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_with_a_cut_line(tmp_path)

    def crash(*args: object) -> None:
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(os, step, crash)  # the process dies before the copy is whole, or in place
        with pytest.raises(Killed):
            Outbox(tmp_path, "q", max_bytes=10_000)
    again = Outbox(tmp_path, "q", max_bytes=10_000)  # the next driver
    assert again.pending() == EVERY_RECORD
    assert [p.name for p in tmp_path.iterdir()] == ["q.jsonl"]  # no copy left behind


def test_the_repaired_queue_is_on_disk_before_it_replaces_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_with_a_cut_line(tmp_path)
    calls: list[str] = []
    fsync, replace = os.fsync, os.replace

    def logged_fsync(fd: int) -> None:
        calls.append("fsync")
        fsync(fd)

    def logged_replace(src: str, dst: Path) -> None:
        calls.append(f"replace {Path(dst).name}")
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged_replace)
    Outbox(tmp_path, "q", max_bytes=10_000)
    # Renamed before its data is synced, a power cut could leave an empty queue in place.
    assert calls[: calls.index("replace q.jsonl") + 1] == ["fsync", "replace q.jsonl"]


class FullDisk:
    """A file whose write stores half the data, then fails as a full disk does."""

    def __init__(self, path: Path):
        self._file = open(path, "ab")  # noqa: SIM115 - closed by __exit__

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def write(self, data: bytes) -> int:
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_record_a_full_disk_cut_short_does_not_spoil_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Outbox(tmp_path, "q", max_bytes=10_000)
    box.append(EVERY_RECORD[0])
    with monkeypatch.context() as patched:
        patched.setattr(outbox, "open", lambda path, mode: FullDisk(path), raising=False)
        with pytest.raises(OSError, match="No space"):
            box.append(EVERY_RECORD[1])
    box.append(EVERY_RECORD[2])  # space is back
    assert box.pending() == [EVERY_RECORD[0], EVERY_RECORD[2]]
    assert Outbox(tmp_path, "q", max_bytes=10_000).pending() == [EVERY_RECORD[0], EVERY_RECORD[2]]


def test_a_full_queue_refuses_droppable_records_only(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "q", max_bytes=90)
    first = Metrics(ts=1, trial="t", step=1, values={"a": 1.0})
    assert box.append(first, droppable=True)
    assert not box.append(Metrics(ts=2, trial="t", step=2, values={"a": 2.0}), droppable=True)
    end = EndTrial(ts=3, trial="t", status="FINISHED", final={}, tags={"x": "y" * 50}, artifacts=[])
    assert box.append(end)
    assert box.pending() == [first, end]
