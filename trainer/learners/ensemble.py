"""A weighted average of other learners, each continued day by day on its own."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

CLASSES = np.array([0, 1])


class AveragedClassifier(ClassifierMixin, BaseEstimator):
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
        if not hasattr(self, "members_"):
            if not self.members:
                raise ValueError("members is required: a list of learners")
            if self.weights is not None and len(self.weights) != len(self.members):
                raise ValueError(f"weights has {len(self.weights)} entries for "
                                 f"{len(self.members)} members")
            self.members_ = [clone(member) for member in self.members]
            self.classes_ = CLASSES
        for member in self.members_:
            member.partial_fit(X, y)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict_proba(self, X):
        """Weighted mean of the members' class probabilities."""
        weights = np.asarray(self.weights if self.weights is not None
                             else [1.0] * len(self.members_), dtype=np.float64)
        probabilities = [member.predict_proba(X) for member in self.members_]
        return np.tensordot(weights / weights.sum(), np.stack(probabilities), axes=1)

    def predict(self, X):
        """The more probable class of each row."""
        return CLASSES[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]
