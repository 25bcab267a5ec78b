"""The learner registry: learners by name, their inputs, and the classes of checkpoints.

A learner is chosen by name (`make_learner`, the names in `trainer.learners`); the name is
stored in the lineage so a chain never switches learner half-way. The name also fixes the
model's inputs (`learner_inputs`): the columns of the features frame, in the order the
model sees them. A checkpoint is fitted on exactly those, so a learner's inputs never
change; other inputs make another learner name. `TRUSTED_TYPES`, the classes skops may
load from a checkpoint, is derived from `LEARNER_CLASSES`, so a new learner class is
trusted once it is listed there. `bench/QUALITY.md` compares the learners.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import BaseEstimator
from sklearn.linear_model import SGDClassifier

from trainer.features.cards import CARD_FEATURE_COLUMNS
from trainer.features.compute import FEATURE_COLUMNS
from trainer.features.profiles import EXTRA_FEATURE_COLUMNS
from trainer.learners import DEFAULT_LEARNER, LEARNER_NAMES
from trainer.learners.binned_boosting import BinnedWindowBoostingClassifier
from trainer.learners.boosting import ContinuedBoostingClassifier, WindowBoostingClassifier
from trainer.learners.bounded import BoundedPassesClassifier, BoundedWindowBoostingClassifier
from trainer.learners.ensemble import AveragedClassifier
from trainer.learners.mlp import DailyMLPClassifier
from trainer.learners.sampled import GenuineSampledClassifier
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


def _network(hidden: tuple[int, ...] = (32, 16),
             learning_rate: float = 1e-3) -> DailyMLPClassifier:
    """The MLP network of every MLP learner: ReLU layers, Adam, minibatches of 256."""
    return DailyMLPClassifier(hidden_layer_sizes=hidden, alpha=1e-4,
                              learning_rate_init=learning_rate, batch_size=256,
                              random_state=0)


def _mlp(hidden: tuple[int, ...] = (32, 16), passes: int = 3, fraud_weight: float = 5.0,
         learning_rate: float = 1e-3, genuine_rate: float = 1.0) -> WarmStartClassifier:
    """A small MLP continued with `partial_fit` (Adam keeps its moments across days).

    With `genuine_rate` < 1 each pass reads every fraud and that share of the genuines,
    weighted back (`GenuineSampledClassifier`); at 1.0 every row, as the MLP always has.
    """
    network = _network(hidden, learning_rate)
    if genuine_rate < 1.0:
        return GenuineSampledClassifier(network, fraud_weight=fraud_weight, passes=passes,
                                        genuine_rate=genuine_rate)
    return WarmStartClassifier(network, fraud_weight=fraud_weight, passes=passes)


def _lgbm_window(**overrides) -> BaseEstimator:
    return WindowBoostingClassifier(**overrides)


def _lgbm_continued(**overrides) -> BaseEstimator:
    return ContinuedBoostingClassifier(**overrides)


def _lgbm_mlp(weights: tuple[float, float] = (0.5, 0.5)) -> BaseEstimator:
    """The window booster and the MLP, probabilities averaged."""
    return AveragedClassifier([_lgbm_window(), _mlp()], weights=list(weights))


def _lgbm_mlp_profiles() -> BaseEstimator:
    """`lgbm_mlp` on ``PROFILE_INPUTS``, frauds kept 84 days, the booster weighted 0.7.

    The configuration ``all_spell+booster:fraud_window_days=84`` at booster weight 0.7
    chosen on the validation weeks in bench/QUALITY.md ("Extra features and learner
    settings"), built as `bench.quality_features` builds it so that its
    figures are this learner's: the members are its
    ``make_member("booster", {"fraud_window_days": 84})`` and ``make_member("mlp", {})``,
    the inputs its ``columns_of`` of that configuration, and the score
    ``0.7 * booster + 0.3 * MLP`` (the bench writes ``1 - 0.7`` for 0.3, which can differ
    in the last bit; a test checks the two agree).
    """
    return AveragedClassifier([_lgbm_window(fraud_window_days=84), _mlp()],
                              weights=[0.7, 0.3])


#: Share of the genuines each MLP pass of `lgbm_mlp_profiles_sampled` reads. On the
#: validation weeks every rate tried (0.05-0.25) scored a little below the full update
#: (bench/QUALITY.md, "A cheaper update: the MLP on sampled genuines"), so this learner is
#: an option for large days, not the default; 0.1 is the rate bench/RESULTS.md measures.
SAMPLED_GENUINE_RATE = 0.1


def _lgbm_mlp_profiles_sampled() -> BaseEstimator:
    """`lgbm_mlp_profiles` whose MLP passes read every fraud and a weighted genuine sample.

    The same ensemble, inputs and settings; only the MLP's daily update reads
    `SAMPLED_GENUINE_RATE` of the genuines, weighted back (`GenuineSampledClassifier`).
    The booster already trains on a genuine sample (its reservoir). About a third less
    CPU per step on 100,000-transaction days, at a small validation cost in ROC AUC and
    average precision (bench/QUALITY.md): chosen with `--learner`, never by default.
    """
    return AveragedClassifier([_lgbm_window(fraud_window_days=84),
                               _mlp(genuine_rate=SAMPLED_GENUINE_RATE)],
                              weights=[0.7, 0.3])


#: Histogram bins per input of `lgbm_mlp_profiles_binned`'s booster, and the booster's
#: weight in its average: chosen on the validation weeks (bench/QUALITY.md, "Where average
#: precision is lost", configuration ``all_spell+booster:fraud_window_days=84,max_bin=1023``).
BINNED_MAX_BIN = 1023
BINNED_BOOSTER_WEIGHT = 0.8


def _lgbm_mlp_profiles_binned() -> BaseEstimator:
    """`lgbm_mlp_profiles` whose booster cuts each input into `BINNED_MAX_BIN` bins.

    The same inputs, reservoir and MLP; LightGBM's histograms have 1023 bins instead of
    255, and the booster weighs `BINNED_BOOSTER_WEIGHT` in the average. Built as
    `bench.quality_features` builds that configuration, so its figures are this learner's.
    """
    return AveragedClassifier(
        [BinnedWindowBoostingClassifier(fraud_window_days=84, max_bin=BINNED_MAX_BIN), _mlp()],
        weights=[BINNED_BOOSTER_WEIGHT, 1 - BINNED_BOOSTER_WEIGHT])


def _bounded_members() -> list[BaseEstimator]:
    """The bounded learners' booster (frauds kept 84 days) and MLP (3 passes, frauds x5)."""
    return [BoundedWindowBoostingClassifier(fraud_window_days=84),
            BoundedPassesClassifier(_network(), fraud_weight=5.0, passes=3)]


def _lgbm_mlp_profiles_bounded() -> BaseEstimator:
    """`lgbm_mlp_profiles` reading at most a fixed number of rows a day, at any day size.

    The same ensemble, inputs, settings and weights, on the members of
    `trainer.learners.bounded`: the booster keeps at most 1,500 genuines and 200 frauds of
    a day, each MLP pass reads at most 15,000 genuines and 2,000 frauds, the excess
    sampled and weighted back. On days of the default size (~10,000 transactions) no cap
    is reached and it is `lgbm_mlp_profiles` to the bit (same scores, so the same
    validation and report figures in bench/QUALITY.md); on larger days its step costs
    about what a default-size day's does instead of growing with the day
    (bench/RESULTS.md).
    """
    return AveragedClassifier(_bounded_members(), weights=[0.7, 0.3])


#: The booster's weight in `lgbm_mlp_cards_bounded`'s average, chosen with its inputs on
#: the validation weeks (bench/QUALITY.md, configuration
#: ``all_spell_cardhighdays_cardrecent+booster:fraud_window_days=84`` at weight 0.8).
CARDS_BOOSTER_WEIGHT = 0.8


def _lgbm_mlp_cards_bounded() -> BaseEstimator:
    """`lgbm_mlp_profiles_bounded` on ``CARD_INPUTS``, the booster weighted 0.8.

    The same bounded members and settings (frauds kept 84 days, the same row caps), reading
    the profile inputs and then the 3 card inputs of `trainer.features.cards` (a card's
    high amounts and recent spending over whole calendar days). On the validation weeks
    (seeds 0-4) that configuration at booster weight 0.8 gained average precision over the
    default (bench/QUALITY.md). The weights are written as `bench.quality_features` writes
    them, ``[w, 1 - w]``, so its figures are this learner's. Its chains carry the card
    inputs' state too (`trainer.features.state_cards`); `fraudpipe serve` reads 50 days
    of history for it.
    """
    return AveragedClassifier(_bounded_members(),
                              weights=[CARDS_BOOSTER_WEIGHT, 1 - CARDS_BOOSTER_WEIGHT])


#: Learner name -> factory of a fresh, unfitted learner.
LEARNERS: dict[str, Callable[[], BaseEstimator]] = {
    "sgd": _sgd,
    "sgd_tuned": _sgd_tuned,
    "mlp": _mlp,
    "lgbm_window": _lgbm_window,
    "lgbm_continued": _lgbm_continued,
    "lgbm_mlp": _lgbm_mlp,
    "lgbm_mlp_profiles": _lgbm_mlp_profiles,
    "lgbm_mlp_profiles_sampled": _lgbm_mlp_profiles_sampled,
    "lgbm_mlp_profiles_binned": _lgbm_mlp_profiles_binned,
    "lgbm_mlp_profiles_bounded": _lgbm_mlp_profiles_bounded,
    "lgbm_mlp_cards_bounded": _lgbm_mlp_cards_bounded,
}

#: The handbook's 15 customer and terminal window features (`trainer.features.compute`).
HANDBOOK_INPUTS: list[str] = FEATURE_COLUMNS
#: The handbook's 15, then the 11 behaviour profiles of `trainer.features.profiles`.
PROFILE_INPUTS: list[str] = FEATURE_COLUMNS + EXTRA_FEATURE_COLUMNS
#: The profile inputs, then the 3 card inputs of `trainer.features.cards`.
CARD_INPUTS: list[str] = PROFILE_INPUTS + CARD_FEATURE_COLUMNS

#: Learner name -> its model inputs. Never change an entry: the chains of that learner
#: hold checkpoints fitted on those columns (every learner before the profile inputs reads the 15).
LEARNER_INPUTS: dict[str, list[str]] = {
    "sgd": HANDBOOK_INPUTS,
    "sgd_tuned": HANDBOOK_INPUTS,
    "mlp": HANDBOOK_INPUTS,
    "lgbm_window": HANDBOOK_INPUTS,
    "lgbm_continued": HANDBOOK_INPUTS,
    "lgbm_mlp": HANDBOOK_INPUTS,
    "lgbm_mlp_profiles": PROFILE_INPUTS,
    "lgbm_mlp_profiles_sampled": PROFILE_INPUTS,
    "lgbm_mlp_profiles_binned": PROFILE_INPUTS,
    "lgbm_mlp_profiles_bounded": PROFILE_INPUTS,
    "lgbm_mlp_cards_bounded": CARD_INPUTS,
}

#: Our own classes a checkpoint may contain; skops refuses any other custom type.
LEARNER_CLASSES: tuple[type[BaseEstimator], ...] = (
    WarmStartClassifier,
    WindowBoostingClassifier,
    ContinuedBoostingClassifier,
    DailyMLPClassifier,
    AveragedClassifier,
    GenuineSampledClassifier,
    BinnedWindowBoostingClassifier,
    BoundedWindowBoostingClassifier,
    BoundedPassesClassifier,
)

#: The skops type names of `LEARNER_CLASSES` ("module.Class").
TRUSTED_TYPES: list[str] = [f"{cls.__module__}.{cls.__qualname__}" for cls in LEARNER_CLASSES]


if tuple(LEARNERS) != LEARNER_NAMES or tuple(LEARNER_INPUTS) != LEARNER_NAMES:
    raise RuntimeError("trainer.learners.LEARNER_NAMES must list the registry's learners in order")


def _known(name: str) -> str:
    if name not in LEARNERS:
        known = ", ".join(sorted(LEARNERS))
        raise ValueError(f"unknown learner {name!r}; expected one of: {known}")
    return name


def make_learner(name: str | None = None) -> BaseEstimator:
    """A fresh learner by name (the default when `name` is None)."""
    return LEARNERS[_known(name or DEFAULT_LEARNER)]()


def learner_inputs(name: str) -> list[str]:
    """The columns of a features frame that learner `name` reads, in order (a copy)."""
    return list(LEARNER_INPUTS[_known(name)])


def uses_profiles(name: str) -> bool:
    """Whether learner `name` reads profile columns, so its features must include them.

    Every features path computes the profiles only when asked (``profiles=True``): a
    chain on the handbook's 15 does not pay for inputs it never reads.
    """
    return any(column in EXTRA_FEATURE_COLUMNS for column in learner_inputs(name))


def uses_cards(name: str) -> bool:
    """Whether learner `name` reads the card inputs (`trainer.features.cards`).

    Such a learner reads the profiles too; its features paths are asked ``cards=True``,
    and its chain's feature state carries the card sums.
    """
    return any(column in CARD_FEATURE_COLUMNS for column in learner_inputs(name))


