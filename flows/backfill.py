"""The `backfill` flow: train a date range of ingested days, re-using what is trained.

Days of the range already on the chain are kept (their checkpoints are reused, nothing
is retrained); the ingested days after the head are queued and trained in date order.
Days of the range that are missing from the share, or that fall before the head without
being on the chain (a gap left earlier), are listed in the report: the first need
ingesting, the second a replay from the checkpoint before them.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from prefect import flow, get_run_logger

from flows.resolve import resolve_queue, resolve_share
from flows.summary import RunSummary
from flows.train import finish, run_training
from trainer.backlog import queue_trainable, trainable_days
from trainer.data.schema import parse_date
from trainer.errors import FraudpipeError
from trainer.share.lineage import Lineage


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
def backfill_flow(
    start: str,
    end: str,
    storage_block: str | None = None,
    storage: str | None = None,
    queue_block: str | None = None,
    redis_url: str | None = None,
    backend: Literal["local", "argo"] = "local",
    learner: str | None = None,
    step_retries: int = 2,
    retry_backoff_seconds: float = 10.0,
    argo_server_block: str | None = None,
) -> dict:
    """Queue and train the ingested, untrained days from `start` to `end` (inclusive).

    Args:
        start: first day, YYYY-MM-DD.
        end: last day, YYYY-MM-DD.
        storage_block: saved FilestoreStorage block (else `storage`).
        storage: local directory of the share.
        queue_block: saved RedisWorkQueue block (else `redis_url`).
        redis_url: Redis URL (else `$FRAUDPIPE_REDIS_URL`).
        backend: "local" or "argo".
        learner: learner name for a new chain.
        step_retries: retries of a step after a transient error.
        retry_backoff_seconds: first retry delay, doubled each retry.
        argo_server_block: saved ArgoServer block (argo backend).
    """
    days = date_range(start, end)
    share = resolve_share(storage_block, storage)
    queue = resolve_queue(queue_block, redis_url)
    summary = RunSummary(flow="backfill")
    lineage = Lineage.load(share)
    trained = lineage.dates()
    head = lineage.head_entry
    reused = [d for d in days if d in trained]
    missing = [d for d in days if not share.training_dataset(d).is_file()]
    behind = [d for d in days if d not in trained and d not in missing
              and head is not None and d < head.date]
    pushed = queue_trainable(share, queue, trainable_days(share, days))
    summary.queued.extend(d.isoformat() for d in pushed)
    summary.notes.append(f"range {days[0]}..{days[-1]}: {len(reused)} day(s) already trained "
                         f"and reused, {len(pushed)} queued")
    if missing:
        summary.notes.append("not ingested (ingest them first): "
                             + ", ".join(d.isoformat() for d in missing))
    if behind and head is not None:
        summary.notes.append(f"before the head {head.date} but not on the chain (replay "
                             "from an earlier checkpoint to include them): "
                             + ", ".join(d.isoformat() for d in behind))
    get_run_logger().info("; ".join(summary.notes))
    run_training(share, summary, queue_block=queue_block, redis_url=redis_url,
                 backend=backend, learner=learner, step_retries=step_retries,
                 retry_backoff_seconds=retry_backoff_seconds,
                 argo_server_block=argo_server_block, storage_block=storage_block)
    return finish(summary, share)
