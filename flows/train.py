"""The `train` flow: drain the dataset queue into the lineage, oldest day first.

Backend "local": the flow leases one day at a time (the queue is serial: the warm-start
chain is one line), keeps the lease alive with a heartbeat while the day's step runs as a
Prefect task, then completes the lease, or fails it. Prefect retries a step with
exponential backoff for errors a retry can fix (Redis blips, a head moved by a concurrent
writer); a permanent error (bad data, a day behind the head) is not retried. A day whose
step fails for good is dead-lettered at once, with the error as the reason, and the flow
goes on with the later days: a missing day is a gap the lineage records (`gap_days`), not
a break in the chain. Once the queue is drained the run is published and, if any day was
dead-lettered, the flow run ends Failed with a message naming each day and its error.

Backend "argo": the same steps run as pods of an Argo workflow on GKE, submitted and
watched by the bridge in `flows/argo_backend.py`.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.artifacts import Progress, RunSummary, publish
from flows.resolve import load_block, resolve_queue, resolve_share
from flows.tasks import backoff_delays, is_retryable, step_error, train_day
from trainer.backlog import record_trained, trainable_days
from trainer.errors import FraudpipeError, LeaseLostError
from trainer.lineage import Lineage
from trainer.queue.lease import Heartbeat, LeaseStatus, settle_lease
from trainer.queue.work_queue import Lease, WorkQueue
from trainer.step import StepResult
from trainer.storage import Share

#: Seconds between two looks at a queue whose only item is leased by someone else.
POLL_SECONDS = 1.0


class DatasetsDeadLetteredError(FraudpipeError):
    """Some datasets of this run are in the dead-letter list; the message names each."""


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


def train_argo(share: Share, queue: WorkQueue, summary: RunSummary, *,
               argo_server_block: str | None, timeout_seconds: float | None = None) -> None:
    """Train the trainable days in one Argo workflow (bridge: `flows/argo_backend.py`).

    The pods run the same CLI step and report to the same lineage and queue, so the run's
    outcome is read back from them: the days the lineage gained are "trained", the days
    the queue dead-lettered meanwhile are "dead" (with the pods' reasons).
    """
    from blocks.argo_server import ArgoServer
    from flows import argo_backend

    if not argo_server_block:
        raise FraudpipeError("backend='argo' needs argo_server_block (a saved ArgoServer block)")
    server = load_block(ArgoServer, argo_server_block)
    days = trainable_days(share)
    if not days:
        summary.notes.append("argo: nothing to train")
        return
    before = Lineage.load(share).dates()
    dead_before = {item for item, _, _ in queue.dead()}
    settings = queue.settings
    submission = argo_backend.training_submission(
        [d.isoformat() for d in days], redis_host=settings.host, redis_port=settings.port,
        redis_db=settings.db)
    failure: Exception | None = None
    try:
        result = argo_backend.run_training_workflow(server, submission,
                                                    timeout_seconds=timeout_seconds)
        summary.notes.append(f"argo workflow {result.name}: {result.phase} ({result.url})")
    except argo_backend.ArgoWorkflowFailed as exc:
        failure = exc
    lineage = Lineage.load(share)
    for entry in lineage.chain():
        if entry.day not in before:
            summary.trained.append(StepResult.of_entry(entry).to_json())
    for item, reason, attempts in queue.dead():
        if item not in dead_before:
            summary.dead.append({"date": item, "reason": f"{reason} (after {attempts} attempt(s))"})
    if failure is not None and not summary.dead:
        raise failure


def finish(summary: RunSummary, share: Share) -> dict:
    """Publish the run's artifacts; raise naming every dead-lettered day, else return JSON."""
    publish(summary, share)
    if summary.dead:
        named = "; ".join(f"{d['date']}: {d['reason']}" for d in summary.dead)
        trained = ", ".join(s["date"] for s in summary.trained) or "none"
        raise DatasetsDeadLetteredError(
            f"{len(summary.dead)} dataset(s) dead-lettered: {named}. "
            f"Trained in this run: {trained}")
    return summary.to_json()


@flow(name="train", log_prints=True)
def train_flow(
    storage_block: str | None = None,
    storage: str | None = None,
    queue_block: str | None = None,
    redis_url: str | None = None,
    backend: Literal["local", "argo"] = "local",
    learner: str | None = None,
    step_retries: int = 2,
    retry_backoff_seconds: float = 10.0,
    lease_seconds: float | None = None,
    max_attempts: int | None = None,
    wait_seconds: float = 600.0,
    argo_server_block: str | None = None,
) -> dict:
    """Train every queued dataset in date order, locally or on Argo.

    Args:
        storage_block: saved FilestoreStorage block (else `storage`).
        storage: local directory of the share.
        queue_block: saved RedisWorkQueue block (else `redis_url`).
        redis_url: Redis URL (else `$FRAUDPIPE_REDIS_URL`).
        backend: "local" (steps as Prefect tasks here) or "argo" (pods on GKE).
        learner: learner name for a new chain.
        step_retries: retries of a step after a transient error (local backend).
        retry_backoff_seconds: first retry delay, doubled each retry.
        lease_seconds: lease length override.
        max_attempts: queue attempt budget override.
        wait_seconds: how long to wait for a day leased by another worker.
        argo_server_block: saved ArgoServer block (argo backend).
    """
    share = resolve_share(storage_block, storage)
    summary = RunSummary(flow="train")
    run_training(share, summary, queue_block=queue_block, redis_url=redis_url,
                 backend=backend, learner=learner, step_retries=step_retries,
                 retry_backoff_seconds=retry_backoff_seconds, lease_seconds=lease_seconds,
                 max_attempts=max_attempts, wait_seconds=wait_seconds,
                 argo_server_block=argo_server_block, storage_block=storage_block)
    return finish(summary, share)


def run_training(share: Share, summary: RunSummary, *, queue_block: str | None,
                 redis_url: str | None, backend: str = "local", learner: str | None = None,
                 step_retries: int = 2, retry_backoff_seconds: float = 10.0,
                 lease_seconds: float | None = None, max_attempts: int | None = None,
                 wait_seconds: float = 600.0, argo_server_block: str | None = None,
                 storage_block: str | None = None) -> None:
    """The body of the train flow, shared by the pipeline, backfill and replay flows."""
    queue = resolve_queue(queue_block, redis_url, lease_seconds=lease_seconds,
                          max_attempts=max_attempts)
    record_trained(share, queue)  # the lineage is the authority: never hand these out again
    if backend == "local":
        drain_local(share, queue, summary, learner=learner, step_retries=step_retries,
                    retry_backoff_seconds=retry_backoff_seconds, wait_seconds=wait_seconds)
    elif backend == "argo":
        train_argo(share, queue, summary, argo_server_block=argo_server_block)
    else:
        raise FraudpipeError(f"backend {backend!r}: expected 'local' or 'argo'")
