"""The warm-start model: learners that continue from their previous state day by day.

Every learner is a scikit-learn estimator with `partial_fit(X, y)` that keeps its own
state across calls, so a day's step is: load yesterday's checkpoint, `partial_fit` on
today, save. Learners are chosen by name (`LEARNERS`); the name is stored in the lineage
so a chain never switches learner half-way.

Class imbalance is handled explicitly: frauds are about 0.8% of transactions, and
`partial_fit` refuses `class_weight="balanced"`, so each learner weights frauds by
`fraud_weight` through `sample_weight` (the boosters use LightGBM's `scale_pos_weight`).

The linear and MLP learners live here; the LightGBM learners (bounded window refit,
continued booster) are in `trainer.learners.boosting`, the average of learners in
`trainer.learners.ensemble`. `bench/QUALITY.md` compares them all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

CLASSES = np.array([0, 1])


class WarmStartClassifier(ClassifierMixin, BaseEstimator):
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
        if not hasattr(self, "classifier_"):
            if self.classifier is None:
                raise ValueError("classifier is required")
            from sklearn.base import clone

            self.classifier_ = clone(self.classifier)
            self.scaler_ = StandardScaler()
            self.days_seen_ = 0
            self.classes_ = CLASSES
        self.scaler_.partial_fit(X)
        Xs = self.scaler_.transform(X)
        weights = np.where(y == 1, self.fraud_weight, 1.0)
        rng = np.random.default_rng([self.random_state, self.days_seen_])
        for _ in range(self.passes):
            order = rng.permutation(len(y))
            self.classifier_.partial_fit(Xs[order], y[order], classes=CLASSES,
                                         sample_weight=weights[order])
        self.days_seen_ += 1
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X):
        """Fraud probability in column 1, as scikit-learn classifiers do."""
        Xs = self.scaler_.transform(np.asarray(X, dtype=np.float64))
        return self.classifier_.predict_proba(Xs)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _sgd() -> WarmStartClassifier:
    """The first baseline: one pass a day, the 'optimal' schedule, frauds weighted 10."""
    return WarmStartClassifier(
        SGDClassifier(loss="log_loss", alpha=1e-4, learning_rate="optimal", random_state=0),
        fraud_weight=10.0,
        passes=1,
    )


def _sgd_tuned(alpha: float = 1e-4, passes: int = 3, fraud_weight: float = 10.0,
               schedule: str = "optimal", eta0: float = 0.01,
               average: bool = False) -> WarmStartClassifier:
    """The linear baseline with the settings that won on the validation weeks.

    Tried on weeks 07-11 and 07-18 (bench.quality_tune, seeds 0 and 1): 1 or 3 passes,
    'optimal' or 'adaptive' schedule, averaging, fraud weight 3/5/10, alpha 1e-4/1e-5.
    """
    return WarmStartClassifier(
        SGDClassifier(loss="log_loss", alpha=alpha, learning_rate=schedule, eta0=eta0,
                      average=average, random_state=0),
        fraud_weight=fraud_weight,
        passes=passes,
    )


def _mlp(hidden: tuple[int, ...] = (32, 16), passes: int = 3, fraud_weight: float = 5.0,
         learning_rate: float = 1e-3) -> WarmStartClassifier:
    """A small MLP continued with `partial_fit` (Adam keeps its moments across days)."""
    from trainer.learners.mlp import DailyMLPClassifier

    return WarmStartClassifier(
        DailyMLPClassifier(hidden_layer_sizes=hidden, alpha=1e-4, learning_rate_init=learning_rate,
                      batch_size=256, random_state=0),
        fraud_weight=fraud_weight,
        passes=passes,
    )


def _lgbm_window(**overrides) -> BaseEstimator:
    from trainer.learners.boosting import WindowBoostingClassifier

    return WindowBoostingClassifier(**overrides)


def _lgbm_continued(**overrides) -> BaseEstimator:
    from trainer.learners.boosting import ContinuedBoostingClassifier

    return ContinuedBoostingClassifier(**overrides)


def _lgbm_mlp(weights: tuple[float, float] = (0.5, 0.5)) -> BaseEstimator:
    """The window booster and the MLP, probabilities averaged."""
    from trainer.learners.ensemble import AveragedClassifier

    return AveragedClassifier([_lgbm_window(), _mlp()], weights=list(weights))


#: Learner name -> factory of a fresh, unfitted learner.
LEARNERS: dict[str, Callable[[], BaseEstimator]] = {
    "sgd": _sgd,
    "sgd_tuned": _sgd_tuned,
    "mlp": _mlp,
    "lgbm_window": _lgbm_window,
    "lgbm_continued": _lgbm_continued,
    "lgbm_mlp": _lgbm_mlp,
}

#: Best average precision on the validation weeks 07-11/07-18; test figures in
#: bench/QUALITY.md. Needs lightgbm; "mlp" is the best scikit-learn-only learner.
DEFAULT_LEARNER = "lgbm_mlp"

#: Our own classes that checkpoints may contain; skops refuses any other custom type.
TRUSTED_TYPES = [
    "trainer.model.WarmStartClassifier",
    "trainer.learners.boosting.WindowBoostingClassifier",
    "trainer.learners.boosting.ContinuedBoostingClassifier",
    "trainer.learners.mlp.DailyMLPClassifier",
    "trainer.learners.ensemble.AveragedClassifier",
]


def make_learner(name: str | None = None) -> BaseEstimator:
    """A fresh learner by name (the default when `name` is None)."""
    name = name or DEFAULT_LEARNER
    try:
        return LEARNERS[name]()
    except KeyError:
        known = ", ".join(sorted(LEARNERS))
        raise ValueError(f"unknown learner {name!r}; expected one of: {known}") from None


def fraud_scores(model, X) -> np.ndarray:
    """Fraud probability for each row of `X`."""
    return np.asarray(model.predict_proba(X))[:, 1]
