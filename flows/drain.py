"""The local backend of the training flows: drain the queue, one leased day at a time.

The flow leases a day (the queue is serial: the warm-start chain is one line), keeps the
lease alive with a heartbeat while the day's step runs as a Prefect task, then settles the
lease (`trainer.queue.lease.settle_lease`, as the worker does). Prefect retries a step for
errors a retry can fix; a day whose step fails for good is dead-lettered at once and the
drain goes on with the later days.
"""

from __future__ import annotations

import os
import socket
import time

from prefect import get_run_logger
from prefect.runtime import flow_run

from flows.artifacts import Progress
from flows.summary import RunSummary
from flows.tasks import backoff_delays, is_retryable, step_error, train_day
from trainer.errors import LeaseLostError
from trainer.queue.lease import Heartbeat, LeaseStatus, settle_lease
from trainer.queue.work_queue import Lease, WorkQueue
from trainer.share.layout import Share

#: Seconds between two looks at a queue whose only item is leased by someone else.
POLL_SECONDS = 1.0


def holder_name() -> str:
    """Who holds the lease, as queue stats show it: the flow run, host and pid."""
    run_id = flow_run.get_id()
    return f"prefect:{run_id or 'no-run'}@{socket.gethostname()}:{os.getpid()}"


def drain_local(share: Share, queue: WorkQueue, summary: RunSummary, *,
                learner: str | None = None, step_retries: int = 2,
                retry_backoff_seconds: float = 10.0, wait_seconds: float = 600.0) -> None:
    """Lease and train until nothing is pending; record each outcome in `summary`.

    Args:
        share: the storage root.
        queue: the dataset queue.
        summary: gets the trained, skipped and dead-lettered days.
        learner: learner for a new chain (None: the trainer's default).
        step_retries: Prefect retries of a step after a transient error.
        retry_backoff_seconds: first retry delay; doubled at each retry.
        wait_seconds: how long to wait for a day leased by another worker.
    """
    logger = get_run_logger()
    stats = queue.stats()
    progress = Progress(summary.flow, stats.pending + len(stats.leased))
    step = train_day.with_options(retries=step_retries,
                                  retry_delay_seconds=backoff_delays(step_retries,
                                                                     retry_backoff_seconds))
    holder = holder_name()
    blocked_since: float | None = None
    while True:
        lease = queue.lease(holder)
        if lease is None:
            stats = queue.stats()
            if stats.pending == 0 and not stats.leased:
                break
            # Serial queue: another worker holds a day; wait for it (or its lease to expire).
            blocked_since = blocked_since or time.monotonic()
            if time.monotonic() - blocked_since > wait_seconds:
                note = (f"stopped waiting after {wait_seconds:.0f}s: "
                        f"{', '.join(f'{i.date} held by {i.holder}' for i in stats.leased)}; "
                        f"{stats.pending} day(s) still pending")
                logger.warning(note)
                summary.notes.append(note)
                break
            time.sleep(POLL_SECONDS)
            continue
        blocked_since = None
        _run_leased_step(share, queue, lease, step, learner, summary, step_retries)
        progress.step(f"{lease.date}")
    progress.finish()


def _run_leased_step(share: Share, queue: WorkQueue, lease: Lease, step, learner: str | None,
                     summary: RunSummary, step_retries: int) -> None:
    logger = get_run_logger()
    heartbeat = Heartbeat(queue, lease, queue.lease_seconds / 3)
    heartbeat.start()
    try:
        state = step(str(share.root), lease.date.isoformat(), learner,
                     lambda: queue.assert_holds(lease), return_state=True)
    finally:
        heartbeat.stop()
    day = lease.date.isoformat()
    if state.is_completed():
        result = state.result()
        outcome = settle_lease(queue, lease, status=result["status"])
        if outcome.refused:  # committed under a valid guard; the lineage is right
            summary.notes.append(f"{day}: trained, but completing its lease failed: "
                                 f"{outcome.refused}")
        if outcome.status == LeaseStatus.SKIPPED:
            summary.skipped.append(day)
        else:
            summary.trained.append(result)
        return
    error = step_error(state)
    reason = f"{type(error).__name__}: {error}" if error else (state.message or "failed")
    tries = 1 if not is_retryable(error) else step_retries + 1
    # Retries are spent (or useless): dead-letter now rather than loop on the same day.
    outcome = settle_lease(
        queue, lease, permanent=True,
        lost=isinstance(error, LeaseLostError) or heartbeat.lost.is_set(),
        failure=f"{reason} (after {tries} attempt(s), queue attempt {lease.attempt})")
    if outcome.status == LeaseStatus.LOST:  # another holder owns the day; it settles it
        summary.notes.append(f"{day}: lease lost while training, left to its new holder")
    elif outcome.refused:
        summary.notes.append(f"{day}: failed, and failing its lease was refused: "
                             f"{outcome.refused}")
    else:
        logger.error("%s dead-lettered: %s", day, outcome.detail)
        summary.dead.append({"date": day, "reason": outcome.detail})
