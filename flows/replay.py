"""The `replay` flow: move the head back to a day's checkpoint and retrain from there.

`trainer.share.lineage.rewind` moves the head to the checkpoint of `from_date`; the entries
after it stay in the lineage, marked superseded, so the old branch can still be
inspected and compared. Every ingested day after `from_date` is then queued again
(the queue remembers them as done, so that memory is cleared first) and trained in date
order, building the new branch on top of the kept checkpoint.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import queue_days
from flows.params import Connections, Training, expands_groups
from flows.summary import RunSummary
from flows.train import finish, run_training
from trainer.errors import FraudpipeError
from trainer.replay import parse_from, rewind_for_replay
from trainer.share.layout import Share


@task(name="rewind", cache_policy=NO_CACHE)
def rewind(storage_root: str, to_day: dt.date | None) -> list[str]:
    """`trainer.replay.rewind_for_replay`: the head moves to `to_day`; the days superseded."""
    return [e.date.isoformat() for e in rewind_for_replay(Share.at(storage_root), to_day)]


@flow(name="replay", log_prints=True)
@expands_groups
def replay_flow(from_date: str, connections: Connections, training: Training) -> dict:
    """Rewind the head to `from_date`'s checkpoint and retrain the later ingested days.

    The learner of the new branch (`learner`) may change only from "start": a kept
    checkpoint fixes the learner of everything trained on top of it.

    Args:
        from_date: day whose checkpoint becomes the head (YYYY-MM-DD); "start" rewinds to
            before the first day (everything is retrained).
        connections: the share and the queue (`flows.params.Connections`).
        training: how the days are trained (`flows.params.Training`).
    """
    to_day = parse_from(from_date)
    share, queue = connections.share(), connections.queue()
    stats = queue.stats()
    if stats.leased:
        held = ", ".join(f"{i.date} by {i.holder}" for i in stats.leased)
        raise FraudpipeError(f"cannot replay while a step is running ({held}); "
                             "wait for it or let its lease expire")
    superseded = rewind(str(share.root), to_day)
    summary = RunSummary(flow="replay")
    summary.notes.append(
        f"head rewound to {to_day or 'before the first day'}; superseded (kept in the "
        f"lineage): {', '.join(superseded) or 'none'}")
    queue.forget_done(dt.date.fromisoformat(d) for d in superseded)
    summary.queued += queue_days(str(share.root), queue)
    get_run_logger().info(summary.notes[-1])
    run_training(share, queue, summary, training)
    return finish(summary, share)
