"""Train every ingested day that is not on the chain yet, oldest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from trainer.lineage import Lineage
from trainer.step import StepResult, run_step
from trainer.storage import Share


def pending_days(share: Share, through: dt.date | None = None) -> list[dt.date]:
    """Ingested days after the head, oldest first (days before the head need a replay)."""
    lineage = Lineage.load(share)
    head = lineage.head_entry
    done = lineage.dates()
    return [d for d in share.training_dates()
            if d not in done and (head is None or d > head.day)
            and (through is None or d <= through)]


def train_all(share: Share, through: dt.date | None = None, learner: str | None = None,
              on_step: Callable[[int, int, StepResult], None] | None = None) -> list[StepResult]:
    """Run the step for each pending day in date order; stops at the first failure."""
    days = pending_days(share, through)
    results = []
    for i, day in enumerate(days, 1):
        result = run_step(share, day, learner=learner)
        results.append(result)
        if on_step:
            on_step(i, len(days), result)
    return results

