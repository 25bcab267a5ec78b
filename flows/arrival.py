"""The daily pipeline's two steps for days that arrive without labels.

`run_labels` (after ingest): stage the label files of a landing URL, file them by day
(`trainer.labels.store_labels`), complete every day the N-day rule allows
(`trainer.labels.complete_days`) and queue what became trainable. `run_arrival_scoring`
(after training): score every arrived day not trained yet with the head model, the one
just trained if any (`trainer.arrival.score_arrived_days`). Both record what they did in
the run's `RunSummary`, from which `flows/today.py` writes the headline and the alerts.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.artifacts import RunSummary
from flows.ingest import stage_landing
from flows.resolve import resolve_queue
from trainer.arrival import score_arrived_days
from trainer.backlog import queue_trainable
from trainer.errors import DatasetValidationError
from trainer.label_files import store_labels
from trainer.labels import awaiting_labels, complete_days
from trainer.storage import Share


@task(name="store-labels", cache_policy=NO_CACHE)
def store_and_complete(storage_root: str, labels: str | None, genuine_after_days: int,
                       today: str | None = None) -> dict:
    """Stage and store the label files of `labels` (if given); complete what the rule allows.

    A bad label file (unreadable, or a conflicting label) stores nothing and is returned
    as `error`, naming the file, row and transaction: the run goes on with the days that
    need no new label, and its report lists the error.

    Returns:
        stored / unknown / late (`LabelsResult`), error (or None), completed
        (`complete_days`).
    """
    logger = get_run_logger()
    share = Share.at(storage_root)
    result: dict = {"stored": [], "unknown": [], "late": [], "error": None}
    if labels:
        staging = Path(tempfile.mkdtemp(prefix="fraudpipe-labels-"))
        try:
            staged = stage_landing(labels, staging)
            logger.info("staged %d label file(s) from %s", len(staged), labels)
            result = {**result, **store_labels(share, staging).to_json()}
        except DatasetValidationError as exc:
            result["error"] = str(exc)
            logger.error("labels from %s not stored: %s", labels, exc)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for what in ("unknown", "late"):
            if result[what]:
                logger.warning("%d %s label(s), first: %s", len(result[what]), what,
                               result[what][0])
    when = dt.date.fromisoformat(today) if today else None
    result["completed"] = complete_days(share, when, genuine_after_days)
    for day in result["completed"]:
        logger.info("%s complete (%s): %d label(s) received, %d fraud(s)", day["date"],
                    day["how"], day["labels"], day["frauds"])
    return result


def run_labels(share: Share, summary: RunSummary, labels: str | None, *,
               genuine_after_days: int, today: str | None, queue_block: str | None,
               redis_url: str | None) -> None:
    """Store labels, complete days, queue the newly trainable; record it in `summary`."""
    result = store_and_complete(str(share.root), labels, genuine_after_days, today)
    summary.labels.extend(result["stored"])
    summary.labels_unknown.extend(result["unknown"] + result["late"])
    summary.completed.extend(result["completed"])
    if result["error"]:
        summary.refused.append({"source": labels, "date": "", "reason": result["error"]})
    pushed = queue_trainable(share, resolve_queue(queue_block, redis_url))
    summary.queued.extend(d.isoformat() for d in pushed)


@task(name="score-arrived-days", cache_policy=NO_CACHE)
def score_arrivals(storage_root: str) -> dict:
    """`trainer.arrival.score_arrived_days` as a task; returns its JSON."""
    result = score_arrived_days(Share.at(storage_root))
    get_run_logger().info(result.message)
    return result.to_json()


def run_arrival_scoring(share: Share, summary: RunSummary) -> None:
    """Score the arrived days the head has not scored; record them and what still waits."""
    result = score_arrivals(str(share.root))
    summary.scored.extend(result["scored"])
    summary.unscored.extend(result["unscored"])
    if result["unscored"]:
        summary.notes.append(result["message"])
    summary.awaiting = [d.isoformat() for d in awaiting_labels(share)]
