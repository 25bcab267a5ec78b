"""Evaluate a checkpoint of the chain with the handbook's protocol."""

from __future__ import annotations

import datetime as dt

from trainer.errors import LineageError
from trainer.evaluation.scoring import score_day
from trainer.evaluation.split import evaluate_on_share
from trainer.learners.registry import uses_cards, uses_profiles
from trainer.share.checkpoints import load_checkpoint
from trainer.share.layout import Share
from trainer.share.lineage import Lineage


def evaluate_checkpoint(share: Share, checkpoint_day: dt.date, test_start: dt.date, *,
                        test_days: int = 7, known_window_days: int = 7) -> dict:
    """Metrics of the chain's checkpoint for `checkpoint_day` on the test days."""
    lineage = Lineage.load(share)
    entry = lineage.entry_for(checkpoint_day)
    if entry is None:
        raise LineageError(f"no checkpoint for {checkpoint_day} on the chain "
                           f"(head: {lineage.head_entry.date if lineage.head_entry else 'none'})")
    model = load_checkpoint(share.root / entry.checkpoint, entry.sha256)

    def score(frame):
        return score_day(model, frame, entry.learner)

    # The checkpoint reads its learner's inputs: the features must hold them.
    result = evaluate_on_share(share, score, checkpoint_day, test_start, test_days=test_days,
                               known_window_days=known_window_days,
                               profiles=uses_profiles(entry.learner),
                               cards=uses_cards(entry.learner))
    result["checkpoint"] = entry.checkpoint
    result["learner"] = entry.learner
    return result
