"""The `train` flow: drain the dataset queue into the lineage, oldest day first.

Backend "local" (`flows/drain.py`): the flow leases one day at a time (the queue is
serial: the warm-start chain is one line), keeps the lease alive with a heartbeat while
the day's step runs as a Prefect task, then completes the lease, or fails it. Prefect
retries a step with exponential backoff for errors a retry can fix (Redis blips, a head
moved by a concurrent writer); a permanent error (bad data, a day behind the head) is not
retried. A day whose step fails for good is dead-lettered at once, with the error as the
reason, and the flow goes on with the later days: a missing day is a gap the lineage
records (`gap_days`), not a break in the chain. Once the queue is drained the run is
published and, if any day was dead-lettered, the flow run ends Failed with a message
naming each day and its error.

Backend "argo": the same steps run as pods of an Argo workflow on GKE, submitted and
watched by the bridge in `flows/argo_backend.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from prefect import flow

from flows.artifacts import publish
from flows.drain import drain_local
from flows.errors import DatasetsDeadLetteredError, LabelProblemsError
from flows.resolve import load_block, resolve_queue, resolve_share
from flows.summary import RunSummary
from trainer.backlog import record_trained, trainable_days
from trainer.errors import FraudpipeError
from trainer.queue.work_queue import WorkQueue
from trainer.share.layout import Share
from trainer.share.lineage import Lineage
from trainer.step import StepResult

if TYPE_CHECKING:
    from flows.argo_backend import TrainingSubmission
    from trainer.queue.settings import RedisSettings


def train_argo(share: Share, queue: WorkQueue, summary: RunSummary, *,
               argo_server_block: str | None, timeout_seconds: float | None = None) -> None:
    """Train the trainable days in one Argo workflow (bridge: `flows/argo_backend.py`).

    The pods run the same CLI step and report to the same lineage and queue, so the run's
    outcome is read back from them: the days the lineage gained are "trained", the days
    the queue dead-lettered meanwhile are "dead" (with the pods' reasons).
    """
    from blocks.argo_server import ArgoServer
    from flows import argo_backend
    from workflows.image import step_image

    if not argo_server_block:
        raise FraudpipeError("backend='argo' needs argo_server_block (a saved ArgoServer block)")
    step_image()  # unset or unqualified: say so before any block is loaded
    server = load_block(ArgoServer, argo_server_block)
    days = trainable_days(share)
    if not days:
        summary.notes.append("argo: nothing to train")
        return
    before = Lineage.load(share).dates()
    dead_before = {item for item, _, _ in queue.dead()}
    submission = argo_submission([d.isoformat() for d in days], queue.settings)
    failure: Exception | None = None
    try:
        result = argo_backend.run_training_workflow(server, submission,
                                                    timeout_seconds=timeout_seconds)
        summary.notes.append(f"argo workflow {result.name}: {result.phase} ({result.url})")
    except argo_backend.ArgoWorkflowFailed as exc:
        failure = exc
    lineage = Lineage.load(share)
    for entry in lineage.chain():
        if entry.date not in before:
            summary.trained.append(StepResult.of_entry(entry).to_json())
    for item, reason, attempts in queue.dead():
        if item not in dead_before:
            summary.dead.append({"date": item, "reason": f"{reason} (after {attempts} attempt(s))"})
    if failure is not None and not summary.dead:
        raise failure


def argo_submission(days: list[str], queue_settings: RedisSettings) -> TrainingSubmission:
    """The submission of `days` to the training WorkflowTemplate, with this run's image.

    The steps run the image this flow run runs in: the GKE work pool's job template sets
    `FRAUDPIPE_IMAGE` to the Job's own image (`{{ image }}`); elsewhere export it. Unset
    or not a pushed image's name, it raises `ImageError` before anything is submitted.
    """
    from flows.argo_backend import training_submission
    from workflows.image import step_image

    return training_submission(days, image=step_image(), redis_host=queue_settings.host,
                               redis_port=queue_settings.port, redis_db=queue_settings.db)


def finish(summary: RunSummary, share: Share) -> dict:
    """Publish the run's artifacts; raise naming every dead-lettered day, else return JSON."""
    publish(summary, share)
    if summary.label_problems:
        raise LabelProblemsError(
            f"{len(summary.label_problems)} unresolved label problem(s) hold days back: "
            + "; ".join(summary.label_problems[:10])
            + (f"; dead-lettered: {', '.join(d['date'] for d in summary.dead)}"
               if summary.dead else "")
            + ". Withdraw the wrong label file (fraudpipe labels --withdraw NAME) or deliver "
              "it again corrected")
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
