"""The `daily-pipeline` flow: ingest, complete labels, train, score arrivals, publish.

One flow run shows the whole day in the Prefect UI, one task per stage, each calling one
use case of `trainer/`: the ingest task, the label tasks (file the label files of
`labels`, complete the days the N-day rule allows: see `trainer/labels.py`), the queueing
of the trainable days, one task per trained day, the scoring of the days that arrived
without labels by the head model (`trainer/arrival.py`), and one set of artifacts
(`flows/artifacts.py`): the headline (what to do today), today's alerts table, the
report, the metrics table, progress and the plot inline. A run with no new files
trains nothing, writes no plot and says so. A bad file is quarantined and does not stop
the run; a day whose step fails for good is dead-lettered, the later days are still
trained, and the run ends Failed naming it; so does an unresolved label conflict or a
quarantined label file (the days it holds back wait, the others go on).
"""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from flows.arrival import record_late_labels, run_arrival_scoring, run_labels
from flows.errors import FlowConfigurationError, refused
from flows.ingest import check_landing, queue_days, run_ingest
from flows.params import Connections, Training, expands_groups
from flows.summary import RunSummary
from flows.train import finish, run_training
from trainer.data.label_delay import GENUINE_AFTER_DAYS
from trainer.errors import FraudpipeError
from trainer.evaluation.scoring import TOP_CARDS
from trainer.outcomes import REVIEW_CAPACITY
from trainer.share.lineage import Lineage
from trainer.share.manifest import read_manifest


@flow(name="daily-pipeline", log_prints=True)
@expands_groups
def daily_pipeline(
    landing: str,
    connections: Connections,
    training: Training,
    allow_pickle: bool = False,
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
        connections: the share and the queue (`flows.params.Connections`).
        training: how the days are trained (`flows.params.Training`).
        allow_pickle: also read `.pkl` files from the landing area.
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
        share = connections.share()
        check_landing(landing)
        if labels:
            check_landing(labels, "labels")
    except FraudpipeError as exc:
        return refused(exc)
    queue = connections.queue()
    summary = RunSummary(flow="daily-pipeline", review_capacity=review_capacity)
    run_ingest(share, summary, landing, allow_pickle=allow_pickle)
    run_labels(share, summary, labels, genuine_after_days=genuine_after_days, today=today,
               relabel=apply_late_labels)
    # The record is read once before training (what to queue) and once after (what to
    # score and publish); the steps read it themselves, under their locks.
    lineage, manifest = Lineage.load(share), read_manifest(share)
    record_late_labels(share, summary, lineage, manifest)
    summary.queued += queue_days(str(share.root), queue, lineage, manifest)
    run_training(share, queue, summary, training, lineage=lineage, manifest=manifest)
    lineage, manifest = Lineage.load(share), read_manifest(share)
    run_arrival_scoring(share, summary, lineage, manifest)
    return finish(summary, share, lineage, manifest)
