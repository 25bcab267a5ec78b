"""The `backfill` flow: train a date range of ingested days, re-using what is trained.

Days of the range already on the chain are kept (their checkpoints are reused, nothing
is retrained); the ingested days after the head are queued and trained in date order.
Days of the range that are missing from the share, or that fall before the head without
being on the chain (a gap left earlier), are listed in the report: the first need
ingesting, the second a replay from the checkpoint before them.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger

from flows.ingest import queue_days
from flows.params import Connections, Training, expands_groups
from flows.summary import RunSummary
from flows.train import finish, run_training
from trainer.backlog import plan_range
from trainer.data.schema import parse_date
from trainer.errors import FraudpipeError
from trainer.share.lineage import Lineage
from trainer.share.manifest import read_manifest


def date_range(start: str | dt.date, end: str | dt.date) -> list[dt.date]:
    """Every day from `start` to `end` inclusive; raises naming the bad parameter."""
    try:
        first, last = parse_date(str(start)), parse_date(str(end))
    except ValueError as exc:
        raise FraudpipeError(f"backfill start/end: {exc}") from exc
    if last < first:
        raise FraudpipeError(f"backfill end {last} is before start {first}")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@flow(name="backfill", log_prints=True)
@expands_groups
def backfill_flow(start: str, end: str, connections: Connections, training: Training) -> dict:
    """Queue and train the ingested, untrained days from `start` to `end` (inclusive).

    Args:
        start: first day, YYYY-MM-DD.
        end: last day, YYYY-MM-DD.
        connections: the share and the queue (`flows.params.Connections`).
        training: how the days are trained (`flows.params.Training`).
    """
    days = date_range(start, end)
    share, queue = connections.share(), connections.queue()
    summary = RunSummary(flow="backfill")
    lineage, manifest = Lineage.load(share), read_manifest(share)
    plan = plan_range(share, days, lineage=lineage, manifest=manifest)
    head = lineage.head_entry
    summary.queued += queue_days(str(share.root), queue, lineage, manifest,
                                 [d.isoformat() for d in plan.trainable])
    summary.notes.append(f"range {days[0]}..{days[-1]}: {len(plan.reused)} day(s) already "
                         f"trained and reused, {len(summary.queued)} queued")
    if plan.missing:
        summary.notes.append("not ingested (ingest them first): "
                             + ", ".join(d.isoformat() for d in plan.missing))
    if plan.behind and head is not None:
        summary.notes.append(f"before the head {head.date} but not on the chain (replay "
                             "from an earlier checkpoint to include them): "
                             + ", ".join(d.isoformat() for d in plan.behind))
    get_run_logger().info("; ".join(summary.notes))
    run_training(share, queue, summary, training, lineage=lineage, manifest=manifest)
    return finish(summary, share)
