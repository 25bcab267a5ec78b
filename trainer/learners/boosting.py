"""Gradient boosting (LightGBM) continued day by day, persisted as LightGBM's own text.

A LightGBM `Booster` is a C++ object that skops cannot persist, and pickling it would
defeat the point of skops (docs/facts.md#checkpoints). So these estimators keep the booster as the
text LightGBM writes with `model_to_string()` in the attribute `model_text_`, a plain
`str` that skops stores as data; the `Booster` is rebuilt from it on first use after a
load and never saved itself (`__getstate__` drops it). Loading such a checkpoint parses
tree text: no code runs.

Two ways to keep the model bounded while it continues from yesterday's state:

* `WindowBoostingClassifier` keeps a bounded reservoir of recent days (every fraud and a
  seeded sample of genuine transactions of the last `window_days` days) and refits a
  small booster on it each day. Its state is the reservoir plus the booster text, so
  step time and checkpoint size stop growing after `window_days` days.
* `ContinuedBoostingClassifier` adds `trees_per_day` trees fitted on the new day on top
  of the previous booster (LightGBM's `init_model`) until it holds `max_trees`; from then
  on it keeps the tree structure and refits the leaf values on each new day
  (`Booster.refit` with `decay_rate`), so the model size is fixed.

Training runs on one thread with LightGBM's deterministic mode, so the same inputs give
the same booster text, hence the same checkpoint bytes, on every pod. Predictions run on
one thread too (`PREDICT_THREADS`, `booster_predict`).
"""

from __future__ import annotations

from typing import Final

import lightgbm
import numpy as np

from trainer.model import DailyClassifier

#: LightGBM's `num_threads` for every prediction the trainer makes: `booster_predict`, and
#: the leaf prediction inside ``Booster.refit``. LightGBM configures a prediction from that
#: call's own keywords only, not from the training parameters, so without it a prediction
#: runs on OpenMP's default thread count. A step's calls are small (a day's rows, the top
#: cards' few hundred rows) and a pod requests one core: extra threads cost more CPU than
#: they save here. Each row is predicted on its own, so the values do not depend on it.
PREDICT_THREADS: Final = 1


def booster_predict(booster: lightgbm.Booster, X, *, contributions: bool = False) -> np.ndarray:
    """`booster`'s predictions of rows `X` on `PREDICT_THREADS` threads.

    Args:
        booster: The LightGBM booster.
        X: Rows x inputs.
        contributions: Per-input contributions (``pred_contrib``: inputs + 1 columns, the
            last the expected value) instead of the probability.

    Returns:
        The probabilities (rows,), or the contributions (rows, inputs + 1).
    """
    return np.asarray(booster.predict(np.asarray(X, dtype=np.float64),
                                      pred_contrib=contributions,
                                      num_threads=PREDICT_THREADS))


class _BoosterText(DailyClassifier):
    """Shared plumbing: LightGBM parameters, the lazily rebuilt booster, prediction."""

    def _params(self) -> dict:
        return {
            "objective": "binary", "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction, "lambda_l2": self.l2,
            "scale_pos_weight": self.fraud_weight, "seed": self.random_state,
            "deterministic": True, "force_col_wise": True, "num_threads": 1, "verbose": -1,
        }

    def _booster(self):
        cached = self.__dict__.get("_booster_cache")
        if cached is None or cached[0] is not self.model_text_:
            booster = lightgbm.Booster(model_str=self.model_text_)
            self.__dict__["_booster_cache"] = cached = (self.model_text_, booster)
        return cached[1]

    def _set_booster(self, booster) -> None:
        self.model_text_ = booster.model_to_string()
        self.__dict__["_booster_cache"] = (self.model_text_, booster)

    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ returns the live __dict__
        state.pop("_booster_cache", None)  # a C++ handle: rebuilt from model_text_
        return state

    def predict_proba(self, X):
        """Fraud probability in column 1."""
        fraud = booster_predict(self._booster(), X)
        fraud = self._calibrate(fraud)
        return np.column_stack([1.0 - fraud, fraud])

    def _calibrate(self, fraud: np.ndarray) -> np.ndarray:
        return fraud

    def _start(self, X) -> bool:
        """Check `X` against the feature count; True (and counters set) on the first day."""
        first_call = not hasattr(self, "days_seen_")
        self._check_features(X, first_call=first_call)
        if first_call:
            self.days_seen_ = 0
        return first_call


class WindowBoostingClassifier(_BoosterText):
    """A booster refitted each day on a bounded reservoir of the recent days.

    Args:
        window_days: days kept in the reservoir (the current one included).
        fraud_window_days: days a fraud is kept, if longer than `window_days` (None: the
            same); frauds are rare, so a longer memory of them costs little.
        genuine_fraction: share of genuine transactions kept; every fraud is kept.
            Subsampling genuines changes the scores' scale, not their ranking much.
        n_trees: boosting rounds of each daily refit.
        learning_rate, num_leaves, min_data_in_leaf, feature_fraction, l2: LightGBM's.
        fraud_weight: LightGBM `scale_pos_weight`.
        random_state: seed of the genuine sampling and of LightGBM.
    """

    #: Class-level default: a checkpoint written before this setting existed loads without it.
    fraud_window_days: int | None = None

    def __init__(self, window_days: int = 28, genuine_fraction: float = 0.1,
                 n_trees: int = 80, learning_rate: float = 0.1, num_leaves: int = 15,
                 min_data_in_leaf: int = 20, feature_fraction: float = 0.8,
                 l2: float = 1.0, fraud_weight: float = 1.0, random_state: int = 0,
                 fraud_window_days: int | None = None):
        self.window_days = window_days
        self.fraud_window_days = fraud_window_days
        self.genuine_fraction = genuine_fraction
        self.n_trees = n_trees
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.feature_fraction = feature_fraction
        self.l2 = l2
        self.fraud_weight = fraud_weight
        self.random_state = random_state

    def _calibrate(self, fraud: np.ndarray) -> np.ndarray:
        # Keeping a fraction f of genuines multiplies the odds of fraud by 1/f; undo it so
        # probabilities (and the step's 0.5-threshold accuracy) mean what they say. The
        # map is increasing, so rankings and every ranking metric are unchanged.
        odds = fraud / np.maximum(1.0 - fraud, 1e-12) * self.genuine_fraction
        return odds / (1.0 + odds)

    def partial_fit(self, X, y):
        """Add the day to the reservoir, drop days past the window, refit the booster."""
        X, y = self._checked_day(X, y)
        keep = (y == 1) | (self._day_rng().random(len(y)) < self.genuine_fraction)
        self._roll_reservoir(X[keep], y[keep])
        self._refit()
        return self

    def _checked_day(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        """The day as arrays, the settings checked, an empty reservoir on the first day."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        if self.window_days < 1 or not 0 < self.genuine_fraction <= 1:
            raise ValueError(f"window_days must be >= 1 and genuine_fraction in (0, 1]; got "
                             f"{self.window_days}, {self.genuine_fraction}")
        if self._start(X):
            self.reservoir_X_ = np.empty((0, X.shape[1]), dtype=np.float32)
            self.reservoir_y_ = np.empty(0, dtype=np.int8)
            self.reservoir_day_ = np.empty(0, dtype=np.int32)
        return X, y

    def _day_rng(self) -> np.random.Generator:
        """The day's generator of the genuine sample: seeded by the seed and the day."""
        return np.random.default_rng([self.random_state, self.days_seen_])

    def _roll_reservoir(self, X_kept: np.ndarray, y_kept: np.ndarray) -> np.ndarray:
        """Drop the rows past their window, append the day's kept rows.

        Returns:
            Which of the reservoir's earlier rows stayed (for what a subclass keeps beside).
        """
        alive = self.reservoir_day_ > self.days_seen_ - self.window_days
        fraud_days = self.fraud_window_days
        if fraud_days is not None and fraud_days > self.window_days:
            alive |= (self.reservoir_y_ == 1) & (self.reservoir_day_ > self.days_seen_ - fraud_days)
        self.reservoir_X_ = np.concatenate([self.reservoir_X_[alive], X_kept.astype(np.float32)])
        self.reservoir_y_ = np.concatenate([self.reservoir_y_[alive], y_kept.astype(np.int8)])
        self.reservoir_day_ = np.concatenate([self.reservoir_day_[alive],
                                              np.full(len(y_kept), self.days_seen_,
                                                      dtype=np.int32)])
        return alive

    def _refit(self, weight: np.ndarray | None = None) -> None:
        """Fit the day's booster on the reservoir (rows weighted by `weight` if given)."""
        data = lightgbm.Dataset(self.reservoir_X_.astype(np.float64), self.reservoir_y_,
                                weight=weight, params={"verbose": -1}, free_raw_data=True)
        self._set_booster(lightgbm.train(self._params(), data, num_boost_round=self.n_trees))
        self.days_seen_ += 1


class ContinuedBoostingClassifier(_BoosterText):
    """New trees on each day on top of yesterday's booster, up to `max_trees`.

    Args:
        trees_per_day: trees added per day while under `max_trees`.
        max_trees: size bound; after it, each day refits the leaf values only.
        decay_rate: weight of the old leaf values in `Booster.refit` (LightGBM's).
        learning_rate, num_leaves, min_data_in_leaf, feature_fraction, l2: LightGBM's.
        fraud_weight: LightGBM `scale_pos_weight`.
        random_state: LightGBM's seed.
    """

    def __init__(self, trees_per_day: int = 10, max_trees: int = 300, decay_rate: float = 0.9,
                 learning_rate: float = 0.05, num_leaves: int = 15, min_data_in_leaf: int = 20,
                 feature_fraction: float = 0.8, l2: float = 1.0, fraud_weight: float = 1.0,
                 random_state: int = 0):
        self.trees_per_day = trees_per_day
        self.max_trees = max_trees
        self.decay_rate = decay_rate
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.feature_fraction = feature_fraction
        self.l2 = l2
        self.fraud_weight = fraud_weight
        self.random_state = random_state

    def partial_fit(self, X, y):
        """Grow the booster on the day, or refit its leaves once it is full."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        previous = None if self._start(X) else self._booster()
        if previous is not None and previous.num_trees() >= self.max_trees:
            booster = previous.refit(X, y, decay_rate=self.decay_rate,
                                     num_threads=PREDICT_THREADS)
        else:
            data = lightgbm.Dataset(X, y, params={"verbose": -1}, free_raw_data=True)
            booster = lightgbm.train(self._params(), data, num_boost_round=self.trees_per_day,
                                init_model=previous, keep_training_booster=False)
        self._set_booster(booster)
        self.days_seen_ += 1
        return self
