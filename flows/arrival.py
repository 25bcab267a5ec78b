"""The daily pipeline's two steps for days that arrive without labels.

`run_labels` (after ingest): stage the label files of a landing URL, file them by day
(`trainer.label_files.store_labels`), complete every day the N-day rule allows
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

from flows.ingest import stage_landing
from flows.resolve import resolve_queue
from flows.summary import RunSummary
from trainer.arrival import score_arrived_days
from trainer.backlog import queue_trainable
from trainer.data.held_parts import held_days
from trainer.errors import DatasetValidationError
from trainer.label_files import LabelsResult, store_labels
from trainer.labels import awaiting_labels, complete_days, label_problems
from trainer.relabel import apply_late_labels, late_labels, late_summary
from trainer.share.layout import Share


@task(name="store-labels", cache_policy=NO_CACHE)
def store_and_complete(storage_root: str, labels: str | None, genuine_after_days: int,
                       today: str | None = None, apply_late: bool = False) -> dict:
    """Store the label files of `labels` (if given), apply late labels by policy, complete.

    Each label file is stored or quarantined on its own; conflicts are kept and reported
    (`problems`), and hold back only the days they concern: the run goes on.

    Returns:
        stored / unchanged / quarantined / unknown / conflicts (`LabelsResult`), error (a
        landing area that cannot be read, or None), relabelled (`apply_late_labels`),
        completed (`complete_days`), late (`late_labels`), late_summary, problems.
    """
    logger = get_run_logger()
    share = Share.at(storage_root)
    result: dict = {**LabelsResult().to_json(), "error": None, "relabelled": None}
    if labels:
        staging = Path(tempfile.mkdtemp(prefix="fraudpipe-labels-"))
        try:
            staged = stage_landing(labels, staging)
            logger.info("staged %d label file(s) from %s", len(staged), labels)
            result = {**result, **store_labels(share, staging).to_json()}
        except DatasetValidationError as exc:
            result["error"] = str(exc)
            logger.error("labels from %s not read: %s", labels, exc)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for what in ("quarantined", "unknown", "conflicts"):
            if result[what]:
                logger.warning("%d %s label entr(ies), first: %s", len(result[what]), what,
                               result[what][0])
    if apply_late:
        result["relabelled"] = apply_late_labels(share)
        if result["relabelled"]["days"]:
            logger.info("late labels applied to %s; head rewound to %s",
                        [d["date"] for d in result["relabelled"]["days"]],
                        result["relabelled"]["rewound_to"])
    when = dt.date.fromisoformat(today) if today else None
    result["completed"] = complete_days(share, when, genuine_after_days)
    for day in result["completed"]:
        logger.info("%s complete (%s): %d label(s) received, %d fraud(s)", day["date"],
                    day["how"], day["labels"], day["frauds"])
    result["late"] = late_labels(share)
    result["late_summary"] = late_summary(result["late"], held_days(share))
    result["problems"] = label_problems(share)
    for problem in result["problems"]:
        logger.error("unresolved: %s", problem)
    return result


def run_labels(share: Share, summary: RunSummary, labels: str | None, *,
               genuine_after_days: int, today: str | None, queue_block: str | None,
               redis_url: str | None, apply_late: bool = False) -> None:
    """Store labels, complete days, queue the newly trainable; record it in `summary`."""
    result = store_and_complete(str(share.root), labels, genuine_after_days, today,
                                apply_late)
    summary.labels.extend(result["stored"])
    summary.labels_unknown.extend(result["unknown"])
    summary.quarantined.extend(result["quarantined"])
    summary.completed.extend(result["completed"])
    summary.label_problems = result["problems"]
    summary.late_labels = result["late_summary"]
    relabelled = result["relabelled"]
    if relabelled and relabelled["days"]:
        summary.notes.append(
            f"late labels applied to {', '.join(d['date'] for d in relabelled['days'])}; "
            f"head rewound to {relabelled['rewound_to']}, superseded: "
            f"{', '.join(relabelled['superseded']) or 'none'}")
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
