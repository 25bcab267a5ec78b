"""The warm-start model: learners that continue from their previous state day by day.

Every learner is a scikit-learn estimator with `partial_fit(X, y)` that keeps its own
state across calls, so a day's step is: load yesterday's checkpoint, `partial_fit` on
today, save. Learners are chosen by name (`LEARNERS`); the name is stored in the lineage
so a chain never switches learner half-way; the registry is `trainer.learners.registry`.

Class imbalance is handled explicitly: frauds are about 0.8% of transactions, and
`partial_fit` refuses `class_weight="balanced"`, so each learner weights frauds by
`fraud_weight` through `sample_weight` (the boosters use LightGBM's `scale_pos_weight`).

This module holds what every learner shares (`DailyClassifier`) and the linear/MLP
learner (`WarmStartClassifier`); the LightGBM learners are in `trainer.learners.boosting`,
the average of learners in `trainer.learners.ensemble`. `bench/QUALITY.md` compares them.
Checkpoints name these classes by module path, so moving one breaks loading old ones.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import StandardScaler

#: The labels every learner predicts: 0 genuine, 1 fraud.
CLASSES = np.array([0, 1])

#: Rows `WarmStartClassifier.predict_proba` scores at a time (the last block up to twice
#: that): small enough that a block's arrays stay in the CPU's cache (8,192 rows x 26
#: inputs: 1.7 MB), large enough that scikit-learn's checks of each block cost little. A
#: power of two: a multiple of every BLAS kernel's unroll.
PREDICT_BLOCK_ROWS = 8_192


class DailyClassifier(ClassifierMixin, BaseEstimator):
    """What every learner shares: two classes, a fixed feature count, a 0.5 threshold."""

    def _check_features(self, X: np.ndarray, *, first_call: bool) -> None:
        """Record the feature count on the first call; refuse another count later.

        The same contract as scikit-learn's `reset=first_call` validation: a day with a
        different number of columns is a bug upstream, not something to learn from.
        """
        if first_call:
            self.classes_ = CLASSES
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")

    def predict(self, X) -> np.ndarray:
        """The more probable class of each row (fraud at a probability of 0.5 or more)."""
        return CLASSES[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


class WarmStartClassifier(DailyClassifier):
    """Running standardisation followed by a `partial_fit` classifier.

    scikit-learn's `Pipeline` has no `partial_fit`; this is the two-stage equivalent.
    The scaler's running mean and variance are updated with each day before the
    classifier sees it, so early days are not scaled with statistics of a single day.

    Args:
        classifier: an unfitted estimator with `partial_fit` and `predict_proba`.
        fraud_weight: sample weight of a fraud relative to a genuine transaction.
        passes: passes over each day's data (shuffled with a seed derived from
            `random_state` and the number of days seen, so steps are reproducible).
        random_state: seed of the per-pass shuffles.
    """

    def __init__(self, classifier=None, fraud_weight: float = 10.0, passes: int = 1,
                 random_state: int = 0):
        self.classifier = classifier
        self.fraud_weight = fraud_weight
        self.passes = passes
        self.random_state = random_state

    def partial_fit(self, X, y):
        """Update the scaler, then the classifier, with one day of data."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1, got {self.passes}")
        first_call = not hasattr(self, "classifier_")
        self._check_features(X, first_call=first_call)
        if first_call:
            if self.classifier is None:
                raise ValueError("classifier is required")
            from sklearn.base import clone

            self.classifier_ = clone(self.classifier)
            self.scaler_ = StandardScaler()
            self.days_seen_ = 0
        self.scaler_.partial_fit(X)
        self._passes(X, y, np.random.default_rng([self.random_state, self.days_seen_]))
        self.days_seen_ += 1
        return self

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        """The scaler's own `transform` of rows X, (X - mean_) / scale_, row-major.

        X was checked when the scaler was fitted on the day. Each pass gathers the rows in
        a new order, and a row is 26 scattered values of a column-major day (the features
        frame's layout) against one contiguous run of a row-major copy: 3x cheaper per
        pass on a 100,000-row day. The gathered arrays, all the classifier sees, are
        row-major and equal either way. Written row-major at once: no column-major copy
        to make, then copy again.
        """
        Xs = np.subtract(X, self.scaler_.mean_, order="C")
        Xs /= self.scaler_.scale_
        return Xs

    def _passes(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        """`passes` shuffled passes of the classifier over every row of the day, scaled."""
        Xs = self._scaled(X)
        weights = np.where(y == 1, self.fraud_weight, 1.0)
        orders = [rng.permutation(len(y)) for _ in range(self.passes)]
        if getattr(self.classifier_, "takes_passes", False):
            # It gathers each pass' minibatches from Xs in these orders itself: no shuffled
            # copy of the day to write and read again (0.2 GB for 1M rows), and the day's
            # inputs are checked once, not once a pass.
            self.classifier_.partial_fit(Xs, y, classes=CLASSES, sample_weight=weights,
                                         passes=orders)
            return
        for order in orders:
            # `take` copies the same rows as `Xs[order]`, 2.5x faster on a 100,000-row day
            # (numpy's fancy indexing goes through its general indexing machinery).
            self.classifier_.partial_fit(Xs.take(order, axis=0), y.take(order),
                                         classes=CLASSES, sample_weight=weights.take(order))

    def predict_proba(self, X):
        """Fraud probability in column 1, as scikit-learn classifiers do.

        The scaler's `transform` then the classifier's `predict_proba`, a block of rows at
        a time, with the values of one call on the whole day, bit for bit (a test checks
        it). A block's arrays stay in the CPU's cache and their memory is reused: on a
        1M-row day the whole day's arrays (0.6 GB) cost 1.0-1.4 s of CPU in the step, most
        of it system time (the kernel providing fresh memory), against 0.25 s in blocks.
        """
        X = np.asarray(X, dtype=np.float64)
        self._check_features(X, first_call=False)
        # Each row is computed from that row alone, except that a BLAS product computes
        # its last rows (its length modulo the kernel's unroll, a power of two) with
        # another kernel: so every block but the last is a multiple of it, and the last
        # holds the remainder, the rows the whole day's product computes apart.
        blocks = max(len(X) // PREDICT_BLOCK_ROWS, 1)
        for index in range(blocks):
            start = index * PREDICT_BLOCK_ROWS
            block = slice(start, len(X) if index == blocks - 1 else start + PREDICT_BLOCK_ROWS)
            # The scaler's `transform` of the block, (X - mean_) / scale_, in X's layout.
            Xs = np.subtract(X[block], self.scaler_.mean_)
            Xs /= self.scaler_.scale_
            part = self.classifier_.predict_proba(Xs)
            if index == 0:  # the classifier's own layout (column-major from an MLP)
                probabilities = np.empty((len(X), part.shape[1]),
                                         order="F" if np.isfortran(part) else "C")
            probabilities[block] = part
        return probabilities


def fraud_scores(model, X) -> np.ndarray:
    """Fraud probability for each row of `X`."""
    return np.asarray(model.predict_proba(X))[:, 1]
