"""The daily pipeline's stages for days that arrive without labels, one task per use case.

After ingest: `store_labels_from` stages the label files of a landing URL and files them
by day (`trainer.label_files.store_labels`); `apply_late` writes late labels into their
training datasets when asked (`trainer.relabel.apply_late_labels`); `complete` turns every
day the N-day rule allows into a training dataset (`trainer.labels.complete_days`).
`run_labels` runs them in that order and records what they did in the run's
`RunSummary`. After training, `score_arrivals` scores every arrived day not trained yet
with the head model (`trainer.arrival.score_arrived_days`); `flows/today.py` writes the
headline and the alerts from it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import stage_landing
from flows.summary import (
    CompletedDay,
    LabelsFiled,
    QuarantinedFile,
    RefusedFile,
    RunSummary,
    ScoredDay,
    UnknownLabel,
    entry_of,
)
from trainer.arrival import ArrivalScoring, score_arrived_days
from trainer.data.held_parts import held_days
from trainer.errors import DatasetValidationError
from trainer.label_files import LabelsResult, store_labels
from trainer.labels import awaiting_labels, complete_days, label_problems
from trainer.relabel import apply_late_labels, late_labels, late_summary
from trainer.share.layout import Share
from trainer.share.lineage import Lineage


@task(name="store-labels", cache_policy=NO_CACHE)
def store_labels_from(storage_root: str, labels: str) -> LabelsResult:
    """Stage the label files of the landing URL `labels` and file them (`store_labels`).

    Each file is stored or quarantined on its own; conflicts are kept and reported, and
    hold back only the days they concern.

    Raises:
        DatasetValidationError: the landing area cannot be read.
    """
    logger = get_run_logger()
    staging = Path(tempfile.mkdtemp(prefix="fraudpipe-labels-"))
    try:
        staged = stage_landing(labels, staging)
        logger.info("staged %d label file(s) from %s", len(staged), labels)
        result = store_labels(Share.at(storage_root), staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for what in ("quarantined", "unknown", "conflicts"):
        entries = getattr(result, what)
        if entries:
            logger.warning("%d %s label entr(ies), first: %s", len(entries), what, entries[0])
    return result


@task(name="apply-late-labels", cache_policy=NO_CACHE)
def apply_late(storage_root: str) -> dict:
    """`trainer.relabel.apply_late_labels`: rewind, then write the late labels in."""
    applied = apply_late_labels(Share.at(storage_root))
    if applied["days"]:
        get_run_logger().info("late labels applied to %s; head rewound to %s",
                              [d["date"] for d in applied["days"]], applied["rewound_to"])
    return applied


@task(name="complete-days", cache_policy=NO_CACHE)
def complete(storage_root: str, genuine_after_days: int,
             today: str | None = None) -> list[CompletedDay]:
    """`trainer.labels.complete_days` from `today` (default: the latest day on the share)."""
    when = dt.date.fromisoformat(today) if today else None
    done = [entry_of(CompletedDay, day) for day in
            complete_days(Share.at(storage_root), when, genuine_after_days)]
    for day in done:
        get_run_logger().info("%s complete (%s): %d label(s) received, %d fraud(s)",
                              day.date, day.how, day.labels, day.frauds)
    return done


def run_labels(share: Share, summary: RunSummary, labels: str | None, *,
               genuine_after_days: int, today: str | None, relabel: bool) -> None:
    """Store labels, apply late ones if asked, complete days; record it in `summary`.

    A landing area that cannot be read is recorded as refused and the run goes on.
    """
    root = str(share.root)
    if labels:
        try:
            stored = store_labels_from(root, labels)
        except DatasetValidationError as exc:
            get_run_logger().error("labels from %s not read: %s", labels, exc)
            summary.refused.append(RefusedFile(source=labels, date="", reason=str(exc)))
        else:
            summary.labels += [entry_of(LabelsFiled, s) for s in stored.stored]
            summary.labels_unknown += [entry_of(UnknownLabel, u) for u in stored.unknown]
            summary.quarantined += [entry_of(QuarantinedFile, q) for q in stored.quarantined]
    if relabel:
        applied = apply_late(root)
        if applied["days"] or applied.get("rows"):
            summary.notes.append(
                f"late labels applied to "
                f"{', '.join(d['date'] for d in applied['days']) or 'no day'}, late rows to "
                f"{', '.join(d['date'] for d in applied.get('rows') or []) or 'no day'}; "
                f"head rewound to {applied['rewound_to']}, superseded: "
                f"{', '.join(applied['superseded']) or 'none'}")
    summary.completed += complete(root, genuine_after_days, today)
    summary.label_problems = label_problems(share)
    for problem in summary.label_problems:
        get_run_logger().error("unresolved: %s", problem)


def record_late_labels(share: Share, summary: RunSummary, lineage: Lineage,
                       manifest: dict) -> None:
    """Say in `summary` what late data waits (`trainer.relabel.late_summary`).

    Labels that disagree with completed days' datasets, rows kept aside for trained days.
    """
    summary.late_labels = late_summary(late_labels(share, lineage), held_days(share, manifest))


@task(name="score-arrived-days", cache_policy=NO_CACHE)
def score_arrivals(storage_root: str, lineage: Lineage | None = None,
                   manifest: dict | None = None) -> ArrivalScoring:
    """`trainer.arrival.score_arrived_days` as a task, from the run's record if given."""
    result = score_arrived_days(Share.at(storage_root), lineage, manifest)
    get_run_logger().info(result.message)
    return result


def run_arrival_scoring(share: Share, summary: RunSummary, lineage: Lineage,
                        manifest: dict) -> None:
    """Score the arrived days the head has not scored; record them and what still waits.

    `lineage` and `manifest`: the record after training, read once by the caller.
    """
    result = score_arrivals(str(share.root), lineage, manifest)
    summary.scored += [ScoredDay.of_json(s) for s in result.scored]
    summary.unscored += result.unscored
    if result.unscored:
        summary.notes.append(result.message)
    summary.awaiting = [d.isoformat() for d in awaiting_labels(share)]
