"""The backlog: which ingested days the chain can train next, and training them in order."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable

from trainer.data.day_parts import is_closed
from trainer.data.held_parts import held_days
from trainer.data.ingest import read_manifest
from trainer.labels import awaiting_labels
from trainer.queue.work_queue import WorkQueue
from trainer.replay import rewind_for_replay
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage
from trainer.step import StepResult, run_step

log = logging.getLogger(__name__)


def trainable_days(share: Share, days: Iterable[dt.date] | None = None,
                   through: dt.date | None = None) -> list[dt.date]:
    """The ingested days the chain can train next, oldest first.

    A day is trainable when its dataset is on the share, it is not on the active chain
    and it comes after the head: a day before the head needs a replay from an earlier
    checkpoint, and queueing it would only dead-letter it with `OutOfOrderError`.
    Training keeps strict date order across days that arrived without labels: no day
    after an arrived day still awaiting its labels (`trainer.labels.awaiting_labels`) is
    trainable, or that day could only be trained later by a replay; nor any day from an
    open one on (`trainer.data.day_parts.is_closed`: more of its rows may still come), nor
    from a day off the chain whose late rows are still kept aside.

    Args:
        share: the storage root.
        days: the candidates (default: every ingested day).
        through: ignore days after this one.
    """
    lineage = Lineage.load(share)
    head = lineage.head_entry
    trained = lineage.dates()
    candidates = share.training_dates() if days is None else days
    waiting = [d for d in awaiting_labels(share) if head is None or d > head.date]
    manifest = read_manifest(share)
    waiting += [d for d in share.training_dates() if d not in trained
                and (head is None or d > head.date) and not is_closed(share, d, manifest)]
    # Late rows kept aside for a day off the chain (rewound by a repair, not a replay):
    # training it without them would lose them; `fraudpipe relabel` merges them first.
    waiting += [dt.date.fromisoformat(d["date"]) for d in held_days(share, manifest)
                if dt.date.fromisoformat(d["date"]) not in trained]
    waiting.sort()
    if waiting:
        through = min(through or waiting[0], waiting[0] - dt.timedelta(days=1))
    return sorted(d for d in set(candidates)
                  if d not in trained and (head is None or d > head.date)
                  and (through is None or d <= through)
                  and share.training_dataset(d).is_file())


def record_trained(share: Share, queue: WorkQueue) -> None:
    """Mark every day on the chain done in `queue`: the lineage is the record of training."""
    queue.mark_done(Lineage.load(share).dates())


def queue_trainable(share: Share, queue: WorkQueue,
                    days: Iterable[dt.date] | None = None) -> list[dt.date]:
    """Push the trainable days among `days` (default: all ingested); mark trained ones done.

    A trainable day the queue remembers as done (a replay moved the head back behind it)
    is forgotten first, so it is handed out again.

    Returns:
        The days newly added to the queue.
    """
    record_trained(share, queue)
    todo = trainable_days(share, days)
    queue.forget_done(todo)
    return queue.push(todo)


def train_all(share: Share, through: dt.date | None = None, learner: str | None = None,
              on_step: Callable[[int, int, StepResult], None] | None = None) -> list[StepResult]:
    """Run the step for each pending day in date order; stops at the first failure."""
    days = trainable_days(share, through=through)
    waiting = awaiting_labels(share)
    if waiting:
        log.info("%d arrived day(s) await their labels (first %s): no later day trains "
                 "before it", len(waiting), waiting[0])
    results = []
    for i, day in enumerate(days, 1):
        result = run_step(share, day, learner=learner)
        results.append(result)
        if on_step:
            on_step(i, len(days), result)
    return results


def replay(share: Share, to_day: dt.date | None, *, learner: str | None = None,
           on_step: Callable | None = None) -> tuple[list[Entry], list]:
    """Rewind to `to_day` and train every ingested day after it, oldest first.

    Returns:
        The superseded entries and the step results.
    """
    superseded = rewind_for_replay(share, to_day)
    return superseded, train_all(share, learner=learner, on_step=on_step)
