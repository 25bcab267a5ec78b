"""The window booster with a finer histogram of each input.

LightGBM cuts every input into at most `max_bin` histogram bins (255 by default) and
places split thresholds only on bin edges. The bins follow the training rows' quantiles,
so where rows are sparse (amounts near 220, the simulator's scenario-1 threshold, sit in
the tail of every card's distribution) one bin spans several currency units and genuine
amounts just below a sharp fraud rule share a leaf with the frauds just above it. More
bins let a split land close to such a rule. A class of its own, not a setting of
`WindowBoostingClassifier`, so that learner's checkpoints keep their exact bytes; the
learner `lgbm_mlp_profiles_binned` uses it (bench/QUALITY.md has its validation figures).
"""

from __future__ import annotations

from trainer.learners.boosting import WindowBoostingClassifier


class BinnedWindowBoostingClassifier(WindowBoostingClassifier):
    """`WindowBoostingClassifier` with LightGBM's `max_bin` as a setting.

    Args:
        max_bin: histogram bins per input (LightGBM's `max_bin`).
        **settings: `WindowBoostingClassifier`'s.
    """

    def __init__(self, window_days: int = 28, genuine_fraction: float = 0.1,
                 n_trees: int = 80, learning_rate: float = 0.1, num_leaves: int = 15,
                 min_data_in_leaf: int = 20, feature_fraction: float = 0.8,
                 l2: float = 1.0, fraud_weight: float = 1.0, random_state: int = 0,
                 fraud_window_days: int | None = None, max_bin: int = 1023):
        super().__init__(window_days=window_days, genuine_fraction=genuine_fraction,
                         n_trees=n_trees, learning_rate=learning_rate, num_leaves=num_leaves,
                         min_data_in_leaf=min_data_in_leaf, feature_fraction=feature_fraction,
                         l2=l2, fraud_weight=fraud_weight, random_state=random_state,
                         fraud_window_days=fraud_window_days)
        self.max_bin = max_bin

    def _params(self) -> dict:
        # lightgbm.train passes these to the daily Dataset before building its bins.
        return {**super()._params(), "max_bin": self.max_bin}
