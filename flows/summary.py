"""What one flow run did: the summary every flow gathers, publishes and keeps between runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from trainer.outcomes import REVIEW_CAPACITY


@dataclass
class RunSummary:
    """What one flow run did, gathered as it goes; every field is JSON-ready."""

    flow: str
    """Flow name ("train", "daily-pipeline", ...)."""
    trained: list[dict] = field(default_factory=list)
    """`StepResult.to_json()` of each day trained in this run."""
    skipped: list[str] = field(default_factory=list)
    """Days handed out that were already on the chain."""
    ingested: list[dict] = field(default_factory=list)
    """Ingest entries (date, source, rows, frauds)."""
    quarantined: list[dict] = field(default_factory=list)
    """Bad files: source and reason."""
    refused: list[dict] = field(default_factory=list)
    """Changed files for days already trained: source, date, reason."""
    dead: list[dict] = field(default_factory=list)
    """Days dead-lettered in this run: date and reason."""
    queued: list[str] = field(default_factory=list)
    """Days pushed on the queue in this run."""
    notes: list[str] = field(default_factory=list)
    """Anything else the reader should know (superseded days of a replay, ...)."""
    plot: str | None = None
    """Path of the metrics plot on the share."""
    labels: list[dict] = field(default_factory=list)
    """Labels filed in this run, per day (`trainer.label_files.LabelsResult.stored`)."""
    labels_unknown: list[dict] = field(default_factory=list)
    """Labels not applied: ids of no arrived day, or late for a completed day."""
    completed: list[dict] = field(default_factory=list)
    """Arrived days made training datasets in this run (`trainer.labels.complete_days`)."""
    scored: list[dict] = field(default_factory=list)
    """Arrived days scored on arrival in this run: date, scores_file, scored_by."""
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

    def merge(self, other: RunSummary) -> None:
        """Add another run's (a sub-flow's) lists to this one."""
        for name in ("trained", "skipped", "ingested", "quarantined", "refused", "dead",
                     "queued", "notes", "labels", "labels_unknown", "completed", "scored",
                     "unscored"):
            getattr(self, name).extend(getattr(other, name))
        self.plot = other.plot or self.plot
        self.awaiting = other.awaiting or self.awaiting
        self.label_problems = other.label_problems or self.label_problems
        self.late_labels = other.late_labels or self.late_labels

    def to_json(self) -> dict:
        """The summary as JSON-ready data (kept between runs to say what changed)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RunSummary:
        """The summary `to_json` wrote."""
        return cls(**data)
