"""The learner registry: every learner by name, and the classes a checkpoint may hold.

A learner is chosen by name (`make_learner`); the name is stored in the lineage so a chain
never switches learner half-way. `TRUSTED_TYPES`, the classes skops may load from a
checkpoint, is derived from `LEARNER_CLASSES`, so a new learner class is trusted once it
is listed there. `bench/QUALITY.md` compares the learners.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import BaseEstimator
from sklearn.linear_model import SGDClassifier

from trainer.learners.boosting import ContinuedBoostingClassifier, WindowBoostingClassifier
from trainer.learners.ensemble import AveragedClassifier
from trainer.learners.mlp import DailyMLPClassifier
from trainer.model import WarmStartClassifier


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
    return WarmStartClassifier(
        DailyMLPClassifier(hidden_layer_sizes=hidden, alpha=1e-4, learning_rate_init=learning_rate,
                      batch_size=256, random_state=0),
        fraud_weight=fraud_weight,
        passes=passes,
    )


def _lgbm_window(**overrides) -> BaseEstimator:
    return WindowBoostingClassifier(**overrides)


def _lgbm_continued(**overrides) -> BaseEstimator:
    return ContinuedBoostingClassifier(**overrides)


def _lgbm_mlp(weights: tuple[float, float] = (0.5, 0.5)) -> BaseEstimator:
    """The window booster and the MLP, probabilities averaged."""
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

#: Our own classes a checkpoint may contain; skops refuses any other custom type.
LEARNER_CLASSES: tuple[type[BaseEstimator], ...] = (
    WarmStartClassifier,
    WindowBoostingClassifier,
    ContinuedBoostingClassifier,
    DailyMLPClassifier,
    AveragedClassifier,
)

#: The skops type names of `LEARNER_CLASSES` ("module.Class").
TRUSTED_TYPES: list[str] = [f"{cls.__module__}.{cls.__qualname__}" for cls in LEARNER_CLASSES]


def make_learner(name: str | None = None) -> BaseEstimator:
    """A fresh learner by name (the default when `name` is None)."""
    name = name or DEFAULT_LEARNER
    try:
        return LEARNERS[name]()
    except KeyError:
        known = ", ".join(sorted(LEARNERS))
        raise ValueError(f"unknown learner {name!r}; expected one of: {known}") from None


