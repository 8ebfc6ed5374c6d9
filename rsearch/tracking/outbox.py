"""A bounded on-disk queue of tracking records (JSONL) that survives the process.

Every record is appended before it is sent, and a separate offset file says how many have
been sent. A driver that dies mid-outage leaves its records on disk, and the next recorder of
the same search sends them. Sending may repeat a record after a crash between a send and the
offset update; the recorder makes every record safe to apply twice.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from rsearch.rundir.layout import write_atomic
from rsearch.tracking.records import Record, Unreadable, from_line, to_line

Pending = Record | Unreadable
"""A queued line: a record, or a line this version cannot read (the sender skips it)."""

_SHOWN = 300
"""Characters of an unreadable line kept for the message that reports it."""


class Outbox:
    """Records waiting to be sent, in order, in `<directory>/<name>.jsonl`.

    Args:
        directory: Where the queue files live (created when needed).
        name: The queue's file name without extension.
        max_bytes: Size above which `append` refuses records that may be dropped.
    """

    def __init__(self, directory: Path, name: str, max_bytes: int):
        self.path = directory / f"{name}.jsonl"
        self._offset_path = directory / f"{name}.offset"
        self._max_bytes = max_bytes
        self._count = self._repair()
        self._sent = min(self._read_offset(), self._count)

    def append(self, record: Record, droppable: bool = False) -> bool:
        """Queue a record; False (and nothing written) when full and the record is droppable.

        Args:
            record: The record.
            droppable: Whether the record may be refused when the queue is full. Records that
                open or close runs are never refused, so runs are never left without their end.
        """
        line = to_line(record)
        if droppable and self.size() + len(line) > self._max_bytes:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        size = self.size()
        try:
            with open(self.path, "ab") as handle:
                handle.write(line.encode("utf-8"))
        except OSError:
            # A full disk may have taken part of the line: cut it off, so the next record
            # (written once there is space) starts a line of its own instead of joining it.
            with contextlib.suppress(OSError):
                os.truncate(self.path, size)
            raise
        self._count += 1
        return True

    def pending(self) -> list[Pending]:
        """The records not yet marked sent, oldest first; one entry per line, read or not."""
        if not self:
            return []
        lines = self.path.read_bytes().split(b"\n")
        return [_read(lines[i], i + 1) for i in range(self._sent, self._count)]

    def mark_sent(self, count: int) -> None:
        """Record that `count` more of the pending records were sent; empty the queue if all."""
        self._sent = min(self._sent + count, self._count)
        if self._sent == self._count:
            self.clear()
            return
        write_atomic(self._offset_path, str(self._sent))

    def clear(self) -> None:
        """Forget every record."""
        self.path.unlink(missing_ok=True)
        self._offset_path.unlink(missing_ok=True)
        self._count = self._sent = 0

    def size(self) -> int:
        """Bytes on disk, sent records included until the queue empties."""
        return self.path.stat().st_size if self.path.exists() else 0

    def __len__(self) -> int:
        return self._count - self._sent

    def _repair(self) -> int:
        """Drop a last line cut short by a crash mid-write; return the number of lines.

        The whole lines are written to a new file that replaces the queue (`write_atomic`):
        a crash at any step leaves the old queue or the repaired one, never less.
        """
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) != len(data):
            write_atomic(self.path, whole)
        return whole.count(b"\n")

    def _read_offset(self) -> int:
        try:
            return int(self._offset_path.read_text())
        except (FileNotFoundError, ValueError):
            return 0


def _read(line: bytes, number: int) -> Pending:
    try:
        return from_line(line)
    except ValueError as exc:
        text = line.decode("utf-8", errors="replace")[:_SHOWN]
        return Unreadable(number, text, str(exc))
