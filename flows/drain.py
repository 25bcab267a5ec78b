"""The local backend of the training flows: drain the queue, one leased day at a time.

It runs the worker's own lease loop (`trainer.queue.worker.Worker.work`): leasing, the
heartbeat, fencing, settling and dead letters are the worker's. Only how a step runs
differs (`FlowWorker.run_step`): in this process, as a Prefect task, so each day shows in
the flow run. Prefect retries a step for errors a retry can fix; a day whose step fails
for good is dead-lettered at once and the drain goes on with the later days.
"""

from __future__ import annotations

import os
import socket
import threading

from prefect import get_run_logger
from prefect.runtime import flow_run

from flows.artifacts import Progress
from flows.params import Training
from flows.summary import DeadLetter, RunSummary, TrainedDay, entry_of
from flows.tasks import backoff_delays, is_retryable, step_error, train_day
from trainer.queue.lease import LeaseStatus, Outcome
from trainer.queue.work_queue import Lease, WorkQueue
from trainer.queue.worker import StepReport, Worker
from trainer.share.layout import Share


def holder_name() -> str:
    """Who holds the lease, as queue stats show it: the flow run, host and pid."""
    run_id = flow_run.get_id()
    return f"prefect:{run_id or 'no-run'}@{socket.gethostname()}:{os.getpid()}"


class FlowWorker(Worker):
    """The worker's loop with each step run in-process as the `train_day` Prefect task.

    Args:
        share: the storage root.
        queue: the dataset queue.
        summary: gets the trained, skipped and dead-lettered days and the notes.
        training: the learner for a new chain, the step's retries and their backoff.
    """

    #: The flow's process owns its signals; a step in this process cannot be killed anyway.
    handles_signals = False

    def __init__(self, share: Share, queue: WorkQueue, summary: RunSummary,
                 training: Training) -> None:
        super().__init__(share, queue, name=holder_name(), learner=training.learner)
        self.summary, self.step_retries = summary, training.step_retries
        self.step = train_day.with_options(
            retries=training.step_retries,
            retry_delay_seconds=backoff_delays(training.step_retries,
                                               training.retry_backoff_seconds))

    def run_step(self, lease: Lease, lost: threading.Event) -> StepReport:
        """Run the day's step as a Prefect task (with its retries) in this process."""
        state = self.step(str(self.share.root), lease.date.isoformat(), self.learner,
                          lambda: self.queue.assert_holds(lease), return_state=True)
        if state.is_completed():
            return StepReport(result=state.result())
        error = step_error(state)
        tries = 1 if not is_retryable(error) else self.step_retries + 1
        reason = f"{type(error).__name__}: {error}" if error else (state.message or "failed")
        failure = f"{reason} (after {tries} attempt(s), queue attempt {lease.attempt})"
        if error is None:
            return StepReport(failure=failure, permanent=True)
        # Retries are spent (or useless): dead-letter now rather than loop on the same day.
        report = StepReport.of_error(error, failure)
        return StepReport(failure=report.failure, kind=report.kind, permanent=True,
                          lost=report.lost)

    def record(self, outcome: Outcome) -> None:
        """Add one settled lease to the run summary."""
        day = outcome.date.isoformat()
        if outcome.status in (LeaseStatus.TRAINED, LeaseStatus.SKIPPED):
            if outcome.refused:  # committed under a valid guard; the lineage is right
                self.summary.notes.append(f"{day}: trained, but completing its lease failed: "
                                          f"{outcome.refused}")
            if outcome.status == LeaseStatus.SKIPPED:
                self.summary.skipped.append(day)
            else:
                self.summary.trained.append(entry_of(TrainedDay, outcome.result or {"date": day}))
        elif outcome.status == LeaseStatus.LOST:  # another holder owns the day; it settles it
            self.summary.notes.append(f"{day}: lease lost while training, left to its new "
                                      "holder")
        elif outcome.refused:
            self.summary.notes.append(f"{day}: failed, and failing its lease was refused: "
                                      f"{outcome.refused}")
        else:
            get_run_logger().error("%s dead-lettered: %s", day, outcome.detail)
            self.summary.dead.append(DeadLetter(day, outcome.detail))

    def idle_timeout(self, seconds: float) -> None:
        """Note, in the summary, the days another worker still held when waiting ended."""
        stats = self.queue.stats()
        note = (f"stopped waiting after {seconds:.0f}s: "
                f"{', '.join(f'{i.date} held by {i.holder}' for i in stats.leased)}; "
                f"{stats.pending} day(s) still pending")
        get_run_logger().warning(note)
        self.summary.notes.append(note)


def drain_local(share: Share, queue: WorkQueue, summary: RunSummary, training: Training, *,
                wait_seconds: float = 600.0) -> None:
    """Lease and train until nothing is pending; record each outcome in `summary`.

    Args:
        share: the storage root.
        queue: the dataset queue.
        summary: gets the trained, skipped and dead-lettered days.
        training: the learner for a new chain, the step's retries and their backoff.
        wait_seconds: how long to wait for a day leased by another worker.
    """
    stats = queue.stats()
    progress = Progress(summary.flow, stats.pending + len(stats.leased))
    worker = FlowWorker(share, queue, summary, training)

    def settled(outcome: Outcome) -> None:
        worker.record(outcome)
        progress.step(outcome.date.isoformat())

    worker.work(burst=True, max_idle_seconds=wait_seconds, on_outcome=settled)
    progress.finish()
