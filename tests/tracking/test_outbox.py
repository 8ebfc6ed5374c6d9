"""The on-disk queue: order, persistence across processes, crash leftovers, its bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.tracking.outbox import Outbox


class Killed(BaseException):
    """The process stopped mid-write (what a SIGKILL would leave, without killing pytest)."""


def test_records_come_back_in_order_and_sent_ones_stay_sent_across_instances(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path, "q", max_bytes=10_000)
    for i in range(5):
        box.append({"op": "metrics", "step": i})
    box.mark_sent(2)
    again = Outbox(tmp_path, "q", max_bytes=10_000)  # a new driver process
    assert [r["step"] for r in again.pending()] == [2, 3, 4]
    assert len(again) == 3
    again.mark_sent(3)
    assert len(again) == 0 and not again.path.exists()


def test_a_line_cut_short_by_a_crash_is_dropped_and_later_records_are_whole(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path, "q", max_bytes=10_000)
    box.append({"op": "open_trial", "trial": "a"})
    with open(box.path, "a") as handle:
        handle.write('{"op": "metr')  # the process died mid-write
    again = Outbox(tmp_path, "q", max_bytes=10_000)
    again.append({"op": "end_trial", "trial": "a"})
    assert [r["op"] for r in again.pending()] == ["open_trial", "end_trial"]


def test_a_crash_while_repairing_the_queue_leaves_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Outbox(tmp_path, "q", max_bytes=10_000)
    records = [{"op": "metrics", "step": i} for i in range(20)]
    for record in records:
        box.append(record)
    with open(box.path, "a") as handle:
        handle.write('{"op": "metr')  # a cut line, so the next Outbox rewrites the file
    write_bytes = Path.write_bytes

    def die_halfway(path: Path, data: bytes) -> int:
        write_bytes(path, data[: len(data) // 2])
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(Path, "write_bytes", die_halfway)
        with pytest.raises(Killed):
            Outbox(tmp_path, "q", max_bytes=10_000)
    again = Outbox(tmp_path, "q", max_bytes=10_000)  # the next driver
    assert again.pending() == records
    assert [p.name for p in tmp_path.iterdir()] == ["q.jsonl"]  # the half-written copy is gone


def test_a_full_queue_refuses_droppable_records_only(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "q", max_bytes=60)
    assert box.append({"op": "metrics", "values": {"a": 1.0}}, droppable=True)
    assert not box.append({"op": "metrics", "values": {"a": 2.0}}, droppable=True)
    assert box.append({"op": "end_trial", "trial": "a", "tags": {"x": "y" * 50}})
    assert [r["op"] for r in box.pending()] == ["metrics", "end_trial"]
