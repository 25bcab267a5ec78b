"""The `replay` flow: move the head back to a day's checkpoint and retrain from there.

`trainer.share.lineage.rewind` moves the head to the checkpoint of `from_date`; the entries
after it stay in the lineage, marked superseded, so the old branch can still be
inspected and compared. Every ingested day after `from_date` is then queued again
(the queue remembers them as done, so that memory is cleared first) and trained in date
order, building the new branch on top of the kept checkpoint.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger

from flows.resolve import resolve_queue, resolve_share
from flows.summary import RunSummary
from flows.train import finish, run_training
from trainer.backlog import queue_trainable
from trainer.errors import FraudpipeError
from trainer.replay import parse_from, rewind_for_replay


@flow(name="replay", log_prints=True)
def replay_flow(
    from_date: str,
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
    """Rewind the head to `from_date`'s checkpoint and retrain the later ingested days.

    Args:
        from_date: day whose checkpoint becomes the head (YYYY-MM-DD); "start" rewinds to
            before the first day (everything is retrained).
        storage_block: saved FilestoreStorage block (else `storage`).
        storage: local directory of the share.
        queue_block: saved RedisWorkQueue block (else `redis_url`).
        redis_url: Redis URL (else `$FRAUDPIPE_REDIS_URL`).
        backend: "local" or "argo".
        learner: learner of the new branch; only "start" may change it (a kept
            checkpoint fixes the learner of everything trained on top of it).
        step_retries: retries of a step after a transient error.
        retry_backoff_seconds: first retry delay, doubled each retry.
        argo_server_block: saved ArgoServer block (argo backend).
    """
    to_day = parse_from(from_date)
    share = resolve_share(storage_block, storage)
    queue = resolve_queue(queue_block, redis_url)
    stats = queue.stats()
    if stats.leased:
        held = ", ".join(f"{i.date} by {i.holder}" for i in stats.leased)
        raise FraudpipeError(f"cannot replay while a step is running ({held}); "
                             "wait for it or let its lease expire")
    superseded = rewind_for_replay(share, to_day)
    summary = RunSummary(flow="replay")
    summary.notes.append(
        f"head rewound to {to_day or 'before the first day'}; superseded (kept in the "
        f"lineage): {', '.join(e.date.isoformat() for e in superseded) or 'none'}")
    queue.forget_done(e.date for e in superseded)
    pushed = queue_trainable(share, queue)
    summary.queued.extend(d.isoformat() for d in pushed)
    get_run_logger().info("%s; queued %d day(s)", summary.notes[-1], len(pushed))
    run_training(share, summary, queue_block=queue_block, redis_url=redis_url,
                 backend=backend, learner=learner, step_retries=step_retries,
                 retry_backoff_seconds=retry_backoff_seconds,
                 argo_server_block=argo_server_block, storage_block=storage_block)
    return finish(summary, share)
