"""The `daily-pipeline` flow: ingest, complete labels, train, score arrivals, publish.

One flow run shows the whole day in the Prefect UI: the ingest task, the labels task
(file the label files of `labels`, complete the days the N-day rule allows: see
`trainer/labels.py`), one task per trained day, the scoring of the days that arrived
without labels by the head model (`trainer/arrival.py`), and one set of artifacts
(`flows/artifacts.py`): the headline (what to do today), today's alerts table, the
report, the metrics table, progress and the plot inline. A run with no new files
trains nothing, writes no plot and says so. A bad file is quarantined and does not stop
the run; a day whose step fails for good is dead-lettered, the later days are still
trained, and the run ends Failed naming it; so does an unresolved label conflict or a
quarantined label file (the days it holds back wait, the others go on).
"""

from __future__ import annotations

from typing import Literal

from prefect import flow
from prefect.states import State

from flows.arrival import run_arrival_scoring, run_labels
from flows.errors import FlowConfigurationError, refused
from flows.ingest import check_landing, run_ingest
from flows.resolve import resolve_share
from flows.summary import RunSummary
from flows.train import finish, run_training
from trainer.data.label_delay import GENUINE_AFTER_DAYS
from trainer.errors import FraudpipeError
from trainer.evaluation.scoring import TOP_CARDS
from trainer.outcomes import REVIEW_CAPACITY


@flow(name="daily-pipeline", log_prints=True)
def daily_pipeline(
    landing: str,
    storage_block: str | None = None,
    storage: str | None = None,
    queue_block: str | None = None,
    redis_url: str | None = None,
    backend: Literal["local", "argo"] = "local",
    allow_pickle: bool = False,
    learner: str | None = None,
    step_retries: int = 2,
    retry_backoff_seconds: float = 10.0,
    argo_server_block: str | None = None,
    labels: str | None = None,
    genuine_after_days: int = GENUINE_AFTER_DAYS,
    today: str | None = None,
    apply_late_labels: bool = False,
    review_capacity: int = REVIEW_CAPACITY,
) -> dict | State:
    """Ingest, complete labels, train, score arrived days; publish headline, alerts, report.

    A day that arrives labelled is trained in this run. A day that arrives without labels
    is scored by the head model (today's alerts) and trained in a later run, once its
    labels are complete: all labelled, or `genuine_after_days` days have passed.

    Args:
        landing: fsspec URL or local directory of the incoming files.
        storage_block: saved FilestoreStorage block (else `storage`).
        storage: local directory of the share.
        queue_block: saved RedisWorkQueue block (else `redis_url`).
        redis_url: Redis URL (else `$FRAUDPIPE_REDIS_URL`).
        backend: "local" or "argo".
        allow_pickle: also read `.pkl` files from the landing area.
        learner: learner name for a new chain.
        step_retries: retries of a step after a transient error.
        retry_backoff_seconds: first retry delay, doubled each retry.
        argo_server_block: saved ArgoServer block (argo backend).
        labels: fsspec URL or local directory of label files (transaction id + label,
            partial is fine); None: no labels arrive in this run.
        genuine_after_days: N: no label N days after its day means genuine.
        today: YYYY-MM-DD the N-day rule counts from (default: the latest transaction
            day on the share).
        apply_late_labels: write late labels (for days already complete), and late rows
            kept aside for trained days, into their training datasets and retrain from
            the first trained day they change (`fraudpipe relabel`); off by default: it
            retrains every later day.
        review_capacity: cards the team checks a day (1-100): today's list and the
            length of each list whose outcome is counted.

    Returns:
        The run's summary; a Failed state naming the cause when the share, the landing
        area or the label landing area cannot be used, or review_capacity is out of range
        (one error line, no traceback).
    """
    try:
        if not 1 <= review_capacity <= TOP_CARDS:
            raise FlowConfigurationError(
                f"review_capacity must be between 1 and {TOP_CARDS} (the cards ranked per "
                f"day), got {review_capacity}")
        share = resolve_share(storage_block, storage)
        check_landing(landing)
        if labels:
            check_landing(labels, "labels")
    except FraudpipeError as exc:
        return refused(exc)
    summary = RunSummary(flow="daily-pipeline", review_capacity=review_capacity)
    run_ingest(share, summary, landing, queue_block=queue_block, redis_url=redis_url,
               allow_pickle=allow_pickle)
    run_labels(share, summary, labels, genuine_after_days=genuine_after_days, today=today,
               queue_block=queue_block, redis_url=redis_url, apply_late=apply_late_labels)
    run_training(share, summary, queue_block=queue_block, redis_url=redis_url,
                 backend=backend, learner=learner, step_retries=step_retries,
                 retry_backoff_seconds=retry_backoff_seconds,
                 argo_server_block=argo_server_block, storage_block=storage_block)
    run_arrival_scoring(share, summary)
    return finish(summary, share)
