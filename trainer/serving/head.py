"""The model the service scores with: the chain's head checkpoint, verified, and its reasons.

The head is the lineage's (`trainer.share.lineage.Lineage.head_entry`), loaded by
`trainer.share.checkpoints.load_checkpoint`, which refuses a file whose sha256 is not the one
the lineage records (and any type skops does not trust): a checkpoint that fails is never
served.

Top reasons: the booster's own per-input contributions to the row's log-odds (LightGBM
``predict(..., pred_contrib=True)``, TreeSHAP: one value per input plus the expected
value, summing to the booster's raw score). The inputs with the largest positive
contributions are the reasons, named by the learner's input columns. For an ensemble
(`lgbm_mlp`, `lgbm_mlp_profiles`) they explain its booster member only: the MLP's share
of the score has no exact attribution here. A learner without a booster gives no reasons.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.errors import LineageError
from trainer.evaluation.reasons import booster_member
from trainer.learners.registry import learner_inputs, uses_cards, uses_profiles
from trainer.serving.fast_model import Probabilities, SingleRowBooster, probabilities
from trainer.share.checkpoints import load_checkpoint
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage


@dataclass(frozen=True)
class Head:
    """A verified head checkpoint, ready to score."""

    entry: Entry
    model: Any
    inputs: list[str]
    """The model's input columns, in order."""
    profiles: bool
    """Whether its inputs include the profile features."""
    cards: bool
    """Whether they include the card inputs (a history of ``CARD_HISTORY_DAYS`` days)."""
    booster: SingleRowBooster | None
    """The LightGBM booster the reasons come from (its contributions), or None."""
    probabilities: Probabilities
    """``model.predict_proba`` without its per-call input checks (`fast_model`)."""

    @property
    def day(self) -> dt.date:
        """The day the checkpoint was trained through."""
        return self.entry.date

    @property
    def sha256(self) -> str:
        """The checkpoint's sha256, as the lineage records it."""
        return self.entry.sha256

    @functools.cached_property
    def described(self) -> dict:
        """`describe`, built once (every answer names it; nobody changes it)."""
        return self.describe()

    def describe(self) -> dict:
        """The checkpoint an answer names."""
        return {"day": self.entry.date.isoformat(), "sha256": self.entry.sha256,
                "path": self.entry.checkpoint, "learner": self.entry.learner}


def head_sha256(share: Share) -> str | None:
    """The lineage's head sha256 now (cheap: one small file read)."""
    return Lineage.load(share).head


def load_head(share: Share) -> Head:
    """The lineage's head, its checkpoint verified against the lineage's sha256.

    Raises:
        LineageError: no head yet, or the checkpoint is missing, altered or untrusted.
    """
    entry = Lineage.load(share).head_entry
    if entry is None:
        raise LineageError(f"{share.lineage}: no head checkpoint yet (nothing trained); "
                           f"train a day first (fraudpipe train)")
    model = load_checkpoint(share.root / entry.checkpoint, entry.sha256)
    inputs = learner_inputs(entry.learner)
    return Head(entry, model, inputs, uses_profiles(entry.learner), uses_cards(entry.learner),
                _booster_of(model, len(inputs)), probabilities(model))


def _booster_of(model: Any, inputs: int) -> SingleRowBooster | None:
    """The contributions of the booster inside `model` (itself or a member), or None."""
    found = booster_member(model)  # the same member the alerts' reasons explain
    if found is None:
        return None
    return SingleRowBooster(found[0]._booster(), inputs, contributions=True)


def top_reasons(head: Head, X: np.ndarray, count: int) -> list[list[dict]]:
    """Per row of `X`, its `count` inputs that raise the booster's score most.

    Each reason: the input's name, its value and its contribution to the log-odds.
    """
    if head.booster is None or count <= 0:
        return [[] for _ in range(len(X))]
    contributions = head.booster(X)[:, :-1]
    reasons = []
    for row, values in zip(X, contributions, strict=True):
        order = np.argsort(-values, kind="stable")[:count]
        reasons.append([{"input": head.inputs[i], "value": float(row[i]),
                         "contribution": float(values[i])} for i in order if values[i] > 0])
    return reasons
