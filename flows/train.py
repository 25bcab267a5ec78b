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

import datetime as dt
from typing import TYPE_CHECKING

from prefect import flow

from flows.artifacts import publish
from flows.drain import drain_local
from flows.errors import DatasetsDeadLetteredError, LabelProblemsError
from flows.params import Connections, LeasePolicy, Training, expands_groups
from flows.resolve import load_block
from flows.summary import DeadLetter, RunSummary, TrainedDay
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
               argo_server_block: str | None, lineage: Lineage | None = None,
               manifest: dict | None = None, timeout_seconds: float | None = None) -> None:
    """Train the trainable days in one Argo workflow (bridge: `flows/argo_backend.py`).

    The pods run the same CLI step and report to the same lineage and queue, so each
    submitted day's outcome is read back from them once the workflow ends: on the chain
    it is "trained", in the dead letters "dead" (with the pods' reason), else a note says
    it was left pending. `lineage` and `manifest`: the record as the caller read it.
    """
    from blocks.argo_server import ArgoServer
    from flows import argo_backend
    from workflows.image import step_image

    if not argo_server_block:
        raise FraudpipeError("backend='argo' needs argo_server_block (a saved ArgoServer block)")
    step_image()  # unset or unqualified: say so before any block is loaded
    server = load_block(ArgoServer, argo_server_block)
    days = trainable_days(share, lineage=lineage, manifest=manifest)
    if not days:
        summary.notes.append("argo: nothing to train")
        return
    dead_before = {item for item, _, _ in queue.dead()}  # an earlier run's, not this one's
    submission = argo_submission([d.isoformat() for d in days], queue.settings)
    failure: Exception | None = None
    try:
        result = argo_backend.run_training_workflow(server, submission,
                                                    timeout_seconds=timeout_seconds)
        summary.notes.append(f"argo workflow {result.name}: {result.phase} ({result.url})")
    except argo_backend.ArgoWorkflowFailed as exc:
        failure = exc
    settle_submitted(summary, days, Lineage.load(share),
                     [d for d in queue.dead() if d[0] not in dead_before])
    if failure is not None and not summary.dead:
        raise failure


def settle_submitted(summary: RunSummary, days: list[dt.date], lineage: Lineage,
                     dead: list[tuple[str, str, int]]) -> None:
    """Record what became of each day submitted to Argo, from the record the pods left.

    Args:
        summary: gets the trained and dead-lettered days, and a note naming the others.
        days: the days submitted.
        lineage: the lineage after the workflow.
        dead: the queue's dead letters of this run (item, reason, attempts).
    """
    chain = {entry.date: entry for entry in lineage.chain()}
    reasons = {item: f"{reason} (after {attempts} attempt(s))" for item, reason, attempts in dead}
    pending = []
    for day in days:
        if day in chain:
            summary.trained.append(TrainedDay.of_step(StepResult.of_entry(chain[day])))
        elif day.isoformat() in reasons:
            summary.dead.append(DeadLetter(day.isoformat(), reasons[day.isoformat()]))
        else:
            pending.append(day.isoformat())
    if pending:
        summary.notes.append(f"argo: neither trained nor dead-lettered: {', '.join(pending)}")


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


def finish(summary: RunSummary, share: Share, lineage: Lineage | None = None,
           manifest: dict | None = None) -> dict:
    """Publish the run's artifacts; raise naming every dead-lettered day, else return JSON.

    `lineage` and `manifest`: the record after the run, if the caller read it.
    """
    publish(summary, share, lineage, manifest)
    if summary.label_problems:
        raise LabelProblemsError(
            f"{len(summary.label_problems)} unresolved label problem(s) hold days back: "
            + "; ".join(summary.label_problems[:10])
            + (f"; dead-lettered: {', '.join(d.date for d in summary.dead)}"
               if summary.dead else "")
            + ". Withdraw the wrong label file (fraudpipe labels --withdraw NAME) or deliver "
              "it again corrected")
    if summary.dead:
        named = "; ".join(f"{d.date}: {d.reason}" for d in summary.dead)
        trained = ", ".join(s.date for s in summary.trained) or "none"
        raise DatasetsDeadLetteredError(
            f"{len(summary.dead)} dataset(s) dead-lettered: {named}. "
            f"Trained in this run: {trained}")
    return summary.to_json()


@flow(name="train", log_prints=True)
@expands_groups
def train_flow(connections: Connections, training: Training, lease: LeasePolicy) -> dict:
    """Train every queued dataset in date order, locally or on Argo.

    Args:
        connections: the share and the queue (`flows.params.Connections`).
        training: how the days are trained (`flows.params.Training`).
        lease: the queue's lease policy overrides (`flows.params.LeasePolicy`).
    """
    share = connections.share()
    summary = RunSummary(flow="train")
    run_training(share, connections.queue(lease), summary, training, lease)
    return finish(summary, share)


def run_training(share: Share, queue: WorkQueue, summary: RunSummary, training: Training,
                 lease: LeasePolicy | None = None, *, lineage: Lineage | None = None,
                 manifest: dict | None = None) -> None:
    """Train the queued days (the train flow's body, shared by the other flows).

    `lineage` and `manifest`: the record as the caller last read it (default: read here).
    """
    lineage = Lineage.load(share) if lineage is None else lineage
    record_trained(share, queue, lineage)  # the lineage is the authority: never hand these out
    if training.backend == "local":
        drain_local(share, queue, summary, training,
                    wait_seconds=(lease or LeasePolicy()).wait_seconds)
    elif training.backend == "argo":
        train_argo(share, queue, summary, argo_server_block=training.argo_server_block,
                   lineage=lineage, manifest=manifest)
    else:
        raise FraudpipeError(f"backend {training.backend!r}: expected 'local' or 'argo'")
