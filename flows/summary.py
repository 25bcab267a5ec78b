"""What one flow run did: the summary every flow gathers, publishes and returns.

Each entry is a dataclass, so the artifacts and the headline read attributes that mypy
checks (a renamed field is a type error, not a KeyError in a flow run). `to_json` is the
flow run's result (the same keys as the dicts it replaces); `from_json` reads such a
result back, from this version or an older one (unknown keys are ignored, missing ones
take their defaults).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from trainer.outcomes import REVIEW_CAPACITY
from trainer.step import StepResult

E = TypeVar("E")


def entry_of(cls: type[E], data: dict[str, Any]) -> E:
    """A `cls` from a JSON dict: its known keys; the others are ignored."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TrainedDay:
    """A day trained (or found trained) by a step of this run: `StepResult.to_json`."""

    date: str
    """The day, YYYY-MM-DD."""
    status: str = "trained"
    """"trained" (a new head) or "skipped" (already on the chain)."""
    checkpoint_sha256: str | None = None
    """sha256 of the checkpoint the step committed."""
    metrics: dict = field(default_factory=dict)
    """The lineage entry's metrics (transactions, frauds, prequential, test, ...)."""
    seconds: float = 0.0
    """Wall time of the step (0 when read back from the lineage)."""
    gap_days: int = 0
    """Days missing between the parent's day and this one."""

    @classmethod
    def of_step(cls, result: StepResult) -> TrainedDay:
        """The entry of a step's result."""
        return entry_of(cls, result.to_json())

    @property
    def prequential(self) -> dict:
        """The day's scores before training on it (empty for the chain's first day)."""
        return self.metrics.get("prequential") or {}


@dataclass
class IngestedDay:
    """A day written to the share from a landing file (`IngestResult.ingested`)."""

    source: str
    """The landing file (its landing URL or path)."""
    kind: str
    """"training", "arrived" (no labels yet) or "testing"."""
    date: str
    """The day, YYYY-MM-DD."""
    output: str = ""
    """The dataset written on the share."""
    sha256: str = ""
    """sha256 of the dataset written."""
    rows: int = 0
    """Transactions of the day."""
    frauds: int | None = None
    """Frauds of the day; None when it arrived without labels."""
    replaced: bool = False
    """An older version of a day not trained yet was replaced (or merged into)."""
    parts: list[str] = field(default_factory=list)
    """The files whose rows make the day, when more than one."""
    dropped_columns: list[str] = field(default_factory=list)
    """Columns of the file the mapping does not keep."""
    labels_for_missing_ids: list[str] = field(default_factory=list)
    """Labels stored for ids the replaced day no longer holds."""


@dataclass
class QuarantinedFile:
    """A landing or label file (or a day of it) copied to quarantine, with the reason."""

    source: str
    """The file (landing URL or path)."""
    reason: str
    """Why it was quarantined."""
    quarantined_to: str | None = None
    """Where the copy is on the share."""
    source_removed: bool = False
    """Always False: sources are copied, never moved."""
    date: str | None = None
    """The bad day, for a file holding several days; else None."""
    days: list[str] = field(default_factory=list)
    """For a label file: the days whose ids it names (they wait for it)."""


@dataclass
class RefusedFile:
    """A file left in place: a changed day already trained, a clash, an unreadable area."""

    source: str
    """The file or landing URL."""
    date: str
    """The day it concerns ("" when none)."""
    reason: str
    """Why it was refused."""


@dataclass
class DeadLetter:
    """A day whose step failed for good in this run: dead-lettered, not trained."""

    date: str
    """The day, YYYY-MM-DD."""
    reason: str
    """The error, with the attempts made."""


@dataclass
class LabelsFiled:
    """Labels filed for one day in this run (`LabelsResult.stored`)."""

    date: str
    """The day the labelled transactions belong to."""
    new: int
    """Labels added."""
    known: int = 0
    """Labels already received before."""
    frauds: int = 0
    """Frauds on file for the day after filing."""
    path: str = ""
    """The day's label record on the share."""


@dataclass
class UnknownLabel:
    """A label for a transaction id on no day yet (kept until its day arrives)."""

    source: str
    """The label file."""
    row: int
    """Its row in the file."""
    transaction_id: str
    """The id named."""


@dataclass
class CompletedDay:
    """An arrived day made a training dataset in this run (`trainer.labels.complete_days`)."""

    date: str
    """The day, YYYY-MM-DD."""
    how: str
    """"all labelled" or "N-day rule"."""
    rows: int = 0
    """Transactions of the day."""
    labels: int = 0
    """Labels received for it."""
    frauds: int = 0
    """Frauds in its training dataset."""
    dataset_sha256: str = ""
    """sha256 of the training dataset written."""
    labels_for_missing_ids: list[str] = field(default_factory=list)
    """Labels of ids the day no longer holds."""


@dataclass
class ScoredBy:
    """The checkpoint that scored a day on arrival (the scores file's metadata)."""

    checkpoint: str
    """Its path on the share."""
    sha256: str
    """Its sha256."""
    trained_through: str
    """The last day it was trained on."""
    when: str = ""
    """"on arrival, before its labels"."""
    scored_at: str = ""
    """UTC time of scoring."""
    inputs: str | None = None
    """sha256 over the datasets the day's features read."""


@dataclass
class ScoredDay:
    """An arrived day scored on arrival in this run (`trainer.arrival.score_arrived`)."""

    date: str
    """The day, YYYY-MM-DD."""
    scores_file: str
    """Its scores file on the share."""
    scored_by: ScoredBy
    """The checkpoint that scored it."""

    @classmethod
    def of_json(cls, data: dict[str, Any]) -> ScoredDay:
        """A `ScoredDay` from `score_arrived`'s dict (or this class's `asdict`)."""
        by = data["scored_by"]
        return cls(date=data["date"], scores_file=data["scores_file"],
                   scored_by=by if isinstance(by, ScoredBy) else entry_of(ScoredBy, by))


@dataclass
class RunSummary:
    """What one flow run did, gathered as it goes."""

    flow: str
    """Flow name ("train", "daily-pipeline", ...)."""
    trained: list[TrainedDay] = field(default_factory=list)
    """Each day trained in this run."""
    skipped: list[str] = field(default_factory=list)
    """Days handed out that were already on the chain."""
    ingested: list[IngestedDay] = field(default_factory=list)
    """Days written from the landing area."""
    quarantined: list[QuarantinedFile] = field(default_factory=list)
    """Bad files: source and reason."""
    refused: list[RefusedFile] = field(default_factory=list)
    """Changed files for days already trained: source, date, reason."""
    dead: list[DeadLetter] = field(default_factory=list)
    """Days dead-lettered in this run: date and reason."""
    queued: list[str] = field(default_factory=list)
    """Days pushed on the queue in this run."""
    notes: list[str] = field(default_factory=list)
    """Anything else the reader should know (superseded days of a replay, ...)."""
    plot: str | None = None
    """Path of the metrics plot on the share."""
    labels: list[LabelsFiled] = field(default_factory=list)
    """Labels filed in this run, per day."""
    labels_unknown: list[UnknownLabel] = field(default_factory=list)
    """Labels not applied: ids of no arrived day."""
    completed: list[CompletedDay] = field(default_factory=list)
    """Arrived days made training datasets in this run."""
    scored: list[ScoredDay] = field(default_factory=list)
    """Arrived days scored on arrival in this run."""
    unscored: list[str] = field(default_factory=list)
    """Arrived days not scored: no head model yet."""
    awaiting: list[str] = field(default_factory=list)
    """Arrived days still waiting for their labels after the run."""
    label_problems: list[str] = field(default_factory=list)
    """Unresolved label conflicts and quarantined label files (`trainer.labels.label_problems`)."""
    late_labels: str = ""
    """"3 late label(s) on 2 trained day(s)" after the run; empty when none."""
    review_capacity: int = REVIEW_CAPACITY
    """Cards the team checks a day: the length of today's list and of each list's outcome."""

    def to_json(self) -> dict:
        """The summary as JSON-ready data: the flow run's result."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RunSummary:
        """The summary `to_json` wrote, by this version or an earlier one (dict entries)."""
        lists: dict[str, Any] = {
            "trained": TrainedDay, "ingested": IngestedDay, "quarantined": QuarantinedFile,
            "refused": RefusedFile, "dead": DeadLetter, "labels": LabelsFiled,
            "labels_unknown": UnknownLabel, "completed": CompletedDay}
        values = {k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}}
        for name, kind in lists.items():
            values[name] = [entry_of(kind, item) for item in data.get(name) or []]
        values["scored"] = [ScoredDay.of_json(item) for item in data.get("scored") or []]
        return cls(**values)
