"""A weighted average of other learners, each continued day by day on its own."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from trainer.model import DailyClassifier


class AveragedClassifier(DailyClassifier):
    """Fraud probability = weighted mean of the members' probabilities.

    Each member receives every day through its own `partial_fit`, so the ensemble's state
    is the members' states (each bounded on its own) and nothing else. Averaging a
    tree model with a neural network helps where their errors differ: the booster cuts
    the features into steps, the network draws smooth boundaries.

    Args:
        members: unfitted learners with `partial_fit` and `predict_proba`.
        weights: one weight per member (default: equal).
    """

    def __init__(self, members: list | None = None, weights: list[float] | None = None):
        self.members = members
        self.weights = weights

    def partial_fit(self, X, y):
        """Train every member on the day."""
        first_call = not hasattr(self, "members_")
        self._check_features(np.asarray(X), first_call=first_call)
        if first_call:
            if not self.members:
                raise ValueError("members is required: a list of learners")
            if self.weights is not None and len(self.weights) != len(self.members):
                raise ValueError(f"weights has {len(self.weights)} entries for "
                                 f"{len(self.members)} members")
            self.members_ = [clone(member) for member in self.members]
        for member in self.members_:
            member.partial_fit(X, y)
        return self

    def predict_proba(self, X):
        """Weighted mean of the members' class probabilities."""
        weights = np.asarray(self.weights if self.weights is not None
                             else [1.0] * len(self.members_), dtype=np.float64)
        probabilities = [member.predict_proba(X) for member in self.members_]
        return np.tensordot(weights / weights.sum(), np.stack(probabilities), axes=1)
