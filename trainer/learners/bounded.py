"""The default learner's two members with a daily cost bounded at any day size.

`lgbm_mlp_profiles` reads more of each day the larger the day is: the booster keeps 10% of
the day's genuines and every fraud, for 28 and 84 days, and refits on all of them; the MLP
makes three passes over every row. On a chain of 100,000-transaction days that is a
reservoir of ~350,000 rows by day 39, a 2.5 s refit and a 31 MB checkpoint, growing with
the day's size (bench/RESULTS.md). These two classes read at most a fixed number of rows a
day; beyond it they read a seeded sample, weighted so that the sample's total weight per
class is the day's, which keeps the scores' scale and what the learner fits the same in
expectation (the handbook's standard way with imbalanced data: every fraud and a share of
the genuines, reweighted). The caps sit above anything a day of the default size
(~10,000 transactions, at most ~1,100 genuines and 107 frauds kept by the booster) ever
reaches, so on such days both classes do exactly what their parents do, bit for bit
(tests/unit/test_bounded_learners.py), and the validation and report figures of
bench/QUALITY.md are theirs. Classes of their own, not settings, so the checkpoints of the
learners before them keep their exact bytes.
"""

from __future__ import annotations

import numpy as np

from trainer.learners.boosting import WindowBoostingClassifier
from trainer.model import CLASSES, WarmStartClassifier


def _capped(rows: np.ndarray, cap: int,
            rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """`rows` if at most `cap`, else `cap` of them drawn without replacement (sorted).

    Also returns the weight that restores their total: 1.0 when all are kept.
    """
    if len(rows) <= cap:
        return rows, 1.0
    return np.sort(rng.choice(rows, size=cap, replace=False)), len(rows) / cap


class BoundedWindowBoostingClassifier(WindowBoostingClassifier):
    """`WindowBoostingClassifier` keeping at most a fixed number of rows of each day.

    A day's rows are first sampled as the parent samples them (every fraud, a share
    `genuine_fraction` of the genuines); if more than `max_genuines_per_day` genuines or
    `max_frauds_per_day` frauds remain, a seeded sample of that many is kept, each row
    weighted by how many it stands for. The refit uses the weights only when some kept
    day was capped, so below the caps it is the parent's refit exactly.

    Args:
        max_genuines_per_day: genuines kept of a day, after the `genuine_fraction` sample.
        max_frauds_per_day: frauds kept of a day.
        **settings: `WindowBoostingClassifier`'s.
    """

    def __init__(self, window_days: int = 28, genuine_fraction: float = 0.1,
                 n_trees: int = 80, learning_rate: float = 0.1, num_leaves: int = 15,
                 min_data_in_leaf: int = 20, feature_fraction: float = 0.8,
                 l2: float = 1.0, fraud_weight: float = 1.0, random_state: int = 0,
                 fraud_window_days: int | None = None, max_genuines_per_day: int = 1_500,
                 max_frauds_per_day: int = 200):
        super().__init__(window_days=window_days, genuine_fraction=genuine_fraction,
                         n_trees=n_trees, learning_rate=learning_rate, num_leaves=num_leaves,
                         min_data_in_leaf=min_data_in_leaf, feature_fraction=feature_fraction,
                         l2=l2, fraud_weight=fraud_weight, random_state=random_state,
                         fraud_window_days=fraud_window_days)
        self.max_genuines_per_day = max_genuines_per_day
        self.max_frauds_per_day = max_frauds_per_day

    def partial_fit(self, X, y):
        """Add the day's (capped) sample to the reservoir, drop old days, refit."""
        if self.max_genuines_per_day < 1 or self.max_frauds_per_day < 1:
            raise ValueError(f"max_genuines_per_day and max_frauds_per_day must be >= 1; got "
                             f"{self.max_genuines_per_day}, {self.max_frauds_per_day}")
        X, y = self._checked_day(X, y)
        if not hasattr(self, "reservoir_weight_"):
            self.reservoir_weight_ = np.empty(0, dtype=np.float64)
        # The parent's draw first, from the same generator: below the caps, the same rows.
        rng = self._day_rng()
        keep = (y == 1) | (rng.random(len(y)) < self.genuine_fraction)
        genuines, genuine_weight = _capped(np.flatnonzero(keep & (y != 1)),
                                           self.max_genuines_per_day, rng)
        frauds, fraud_weight = _capped(np.flatnonzero(y == 1), self.max_frauds_per_day, rng)
        kept = np.union1d(genuines, frauds)  # sorted: the day's rows in their order
        alive = self._roll_reservoir(X[kept], y[kept])
        self.reservoir_weight_ = np.concatenate([
            self.reservoir_weight_[alive],
            np.where(y[kept] == 1, fraud_weight, genuine_weight)])
        # No weights at all when nothing was capped: LightGBM's unweighted refit, as the
        # parent's, so the booster text is the parent's to the byte.
        capped = bool(np.any(self.reservoir_weight_ != 1.0))
        self._refit(self.reservoir_weight_ if capped else None)
        return self


class BoundedPassesClassifier(WarmStartClassifier):
    """`WarmStartClassifier` whose passes read at most a fixed number of rows of a day.

    While a day has at most `max_genuines_per_pass` genuines and `max_frauds_per_pass`
    frauds, the passes are the parent's (every row, the same shuffles). Beyond, each pass
    reads a fresh seeded sample of that many, each sampled row's weight multiplied by how
    many rows it stands for. The running standardisation still sees every row.

    Args:
        max_genuines_per_pass: genuines a pass reads at most.
        max_frauds_per_pass: frauds a pass reads at most.
        classifier, fraud_weight, passes, random_state: `WarmStartClassifier`'s.
    """

    def __init__(self, classifier=None, fraud_weight: float = 10.0, passes: int = 1,
                 random_state: int = 0, max_genuines_per_pass: int = 15_000,
                 max_frauds_per_pass: int = 2_000):
        super().__init__(classifier, fraud_weight=fraud_weight, passes=passes,
                         random_state=random_state)
        self.max_genuines_per_pass = max_genuines_per_pass
        self.max_frauds_per_pass = max_frauds_per_pass

    def _passes(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        """The parent's passes below the caps; capped, weighted samples above them."""
        if self.max_genuines_per_pass < 1 or self.max_frauds_per_pass < 1:
            raise ValueError(f"max_genuines_per_pass and max_frauds_per_pass must be >= 1; "
                             f"got {self.max_genuines_per_pass}, {self.max_frauds_per_pass}")
        frauds = np.flatnonzero(y == 1)
        genuines = np.flatnonzero(y != 1)
        if (len(genuines) <= self.max_genuines_per_pass
                and len(frauds) <= self.max_frauds_per_pass):
            super()._passes(X, y, rng)
            return
        for _ in range(self.passes):
            kept_genuines, genuine_weight = _capped(genuines, self.max_genuines_per_pass, rng)
            kept_frauds, fraud_weight = _capped(frauds, self.max_frauds_per_pass, rng)
            rows = rng.permutation(np.concatenate([kept_frauds, kept_genuines]))
            weights = np.where(y[rows] == 1, self.fraud_weight * fraud_weight, genuine_weight)
            # Only the pass' rows scaled (the values `_scaled(X)[rows]` holds): a capped
            # pass reads 17,000 rows, where a 1M-row day's whole scaled copy is 0.2 GB.
            self.classifier_.partial_fit(self._scaled(X[rows]), y[rows], classes=CLASSES,
                                         sample_weight=weights)
