"""The records of the tracking queue: one pydantic model per event, told apart by `op`.

A record names runs by search and trial id, never by MLflow run id, because the run may not
exist yet when the record is written (the server was down). The field names are the queue's
on-disk format (one JSON object per line): a queue left by an earlier driver, possibly of
another rsearch version, is read back through these models. So a field is never renamed, and
a new field needs a default, or the records of every queue already on disk stop reading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

TrialStatus = Literal["FINISHED", "KILLED", "FAILED"]

Artifact = tuple[str, str | None]
"""A local file or directory to upload, and the folder inside the run's artifacts (None: top)."""


class _Record(BaseModel):
    # A field this version does not know comes from a newer one, whose meaning may depend on
    # it: such a record is refused whole (and skipped loudly) rather than applied in part.
    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: int
    """When the event happened, in ms since the epoch: runs and metrics keep it through outages."""


class OpenSearch(_Record):
    """The search started or resumed: open (or reopen) its parent run."""

    op: Literal["open_search"] = "open_search"
    params: dict[str, str]
    """The search settings, flattened, secrets masked."""
    tags: dict[str, str]
    artifacts: list[Artifact]
    """The staged spec files."""


class OpenTrial(_Record):
    """A trial started, or started again (a resumed search, a retried trial)."""

    op: Literal["open_trial"] = "open_trial"
    trial: str
    params: dict[str, str]
    """The trial's whole recipe, flattened, with the searched values."""
    tags: dict[str, str | None]
    """None leaves a tag out."""
    artifacts: list[Artifact]
    study_trial: int | None = None
    """The study's trial (Optuna's number) the trial runs: the child run's key. A new trial
    given a study trial that another trial ran (a resumed search adopting an orphaned
    proposal) replaces that trial's child run. None: unknown (queues of older versions)."""


class Metrics(_Record):
    """One epoch's numeric results of a trial; consecutive ones are sent in one request."""

    op: Literal["metrics"] = "metrics"
    trial: str
    step: int
    values: dict[str, float]


class EndTrial(_Record):
    """A trial ended: its final metrics, outcome tags and files, then its status."""

    op: Literal["end_trial"] = "end_trial"
    trial: str
    status: TrialStatus
    final: dict[str, float]
    """Final metrics, logged under the keys no epoch reported."""
    tags: dict[str, str]
    artifacts: list[Artifact]


class EndSearch(_Record):
    """The search ended: mark the best trial(s), close what is still running, close the parent."""

    op: Literal["end_search"] = "end_search"
    status: TrialStatus
    best: list[str]
    """The best trial, or the Pareto set of a multi-objective search."""
    metrics: dict[str, float]
    """The best trial's metrics, logged on the parent."""
    checkpoints: dict[str, str]
    """Checkpoint paths of best trials known to the driver, by trial id."""
    artifacts: list[Artifact]
    dropped: int
    """Records given up before this one (tagged on the parent so the loss is on record)."""
    tags: dict[str, str] = {}
    """More tags for the parent (why the search stopped)."""


class SearchArtifacts(_Record):
    """Files for the parent run (a report's plots and tables)."""

    op: Literal["search_artifacts"] = "search_artifacts"
    artifacts: list[Artifact]


Record = Annotated[
    OpenSearch | OpenTrial | Metrics | EndTrial | EndSearch | SearchArtifacts,
    Field(discriminator="op"),
]
"""Any record of the queue."""

_RECORD: TypeAdapter[Record] = TypeAdapter(Record)


@dataclass(frozen=True)
class Unreadable:
    """A queue line that is no record this version knows (another version's, or damaged).

    Attributes:
        line: Its line number in the queue file, from 1.
        text: The line, cut to a few hundred characters.
        reason: Why it could not be read.
    """

    line: int
    text: str
    reason: str


def to_line(record: Record) -> str:
    """A record as one line of JSON, `op` first; NaN and infinities as JSON's usual extensions.

    The stdlib writes non-finite floats as `NaN`/`Infinity`, which pydantic's own JSON output
    would turn into `null`, losing a diverged trial's loss.
    """
    data = record.model_dump(mode="json")
    return json.dumps({"op": data.pop("op"), **data}, separators=(",", ":")) + "\n"


def from_line(line: bytes) -> Record:
    """The record a queue line holds.

    Raises:
        ValueError: When the line is not UTF-8, not JSON, or not a known record; the message
            names the unknown `op` or the fields at fault, on one line.
    """
    data = json.loads(line.decode("utf-8"))
    try:
        return _RECORD.validate_python(data)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors(include_url=False)]
        raise ValueError("; ".join(problems)) from None


def _problem(error: ErrorDetails) -> str:
    # The first part of a location is the record type; the rest is the field.
    where = ".".join(str(part) for part in error["loc"][1:])
    return f"{where}: {error['msg']}" if where else error["msg"]
