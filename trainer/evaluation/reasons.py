"""Why a transaction scored high: the model's own per-input contributions, in words.

The reasons come from the LightGBM booster inside the model (the model itself, or the
booster member of an ensemble such as the default ``lgbm_mlp_profiles``): LightGBM's
``predict(..., pred_contrib=True)`` (TreeSHAP) splits the booster's raw log-odds of a row
into one contribution per input plus the expected value, and they sum to it exactly. A
`WindowBoostingClassifier` then shifts the log-odds by ``log(genuine_fraction)`` (its
calibration), the same for every row, so the contributions explain its probability too.

How that maps to the score the analyst sees: the ensemble's score is the weighted mean of
its members' probabilities, ``score = w_booster * p_booster + w_mlp * p_mlp`` (weights
normalised), so `explain` returns both parts; they add up to the score. The reasons
explain the booster's part only: the MLP's part is shown as a number, with no
attribution per input (a network's gradients or a sampling method would be an estimate,
not an exact split). A learner with no booster gives no reasons.

A reason is an input with a positive contribution (it raised the score), the largest
first, described with the row's own values ("amount 5.2x the card's 30-day mean").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.features.cards import HIGH_AMOUNT_RATIO
from trainer.features.profiles import LOOKBACK_DAYS, PREVIOUS_TX_CAP_DAYS
from trainer.learners.boosting import booster_predict

#: Reasons given per transaction.
REASONS_PER_ROW = 3

# The input names `describe` recognises (compiled once: it runs for every ranked row).
_CUSTOMER_COUNT = re.compile(r"CUSTOMER_ID_NB_TX_(\d+)DAY_WINDOW")
_CUSTOMER_MEAN = re.compile(r"CUSTOMER_ID_AVG_AMOUNT_(\d+)DAY_WINDOW")
_CUSTOMER_RATIO = re.compile(r"CUSTOMER_ID_AMOUNT_RATIO_(\d+)DAY_WINDOW")
_CUSTOMER_ZSCORE = re.compile(r"CUSTOMER_ID_AMOUNT_ZSCORE_(\d+)DAY_WINDOW")
_TERMINAL_RISK = re.compile(r"TERMINAL_ID_RISK_(\d+)DAY_WINDOW")
_TERMINAL_COUNT = re.compile(r"TERMINAL_ID_NB_TX_(\d+)DAY_WINDOW")
_TERMINAL_MEAN = re.compile(r"TERMINAL_ID_AVG_AMOUNT_(\d+)DAY_WINDOW")


@dataclass(frozen=True)
class Explanation:
    """The booster's contributions to a set of rows, and how they map to the score."""

    inputs: list[str]
    """The model's input columns, in the order of `contributions`' columns."""
    contributions: np.ndarray
    """(rows, inputs): each input's contribution to the booster's log-odds."""
    base: np.ndarray
    """(rows,): the rest of the booster's log-odds: expected value plus calibration shift."""
    booster_part: np.ndarray
    """(rows,): the booster's share of the score, its weight times its probability."""
    other_part: np.ndarray
    """(rows,): the rest of the score (the MLP's weighted probability in an ensemble)."""
    booster_weight: float
    """The booster's normalised weight in the score (1 for a booster alone)."""


def booster_member(model: Any) -> tuple[Any, float] | None:
    """The LightGBM estimator inside `model` and its normalised weight in the score.

    The model itself when it is a booster (weight 1), else the first booster member of an
    `AveragedClassifier`; None when there is no booster.
    """
    if hasattr(model, "model_text_"):
        return model, 1.0
    members = getattr(model, "members_", None) or []
    weights = getattr(model, "weights", None) or [1.0] * len(members)
    for member, weight in zip(members, weights, strict=True):
        if hasattr(member, "model_text_"):
            return member, float(weight) / float(sum(weights))
    return None


def booster_contributions(estimator: Any, X: np.ndarray) -> np.ndarray:
    """``pred_contrib`` of `estimator`'s booster: (rows, inputs + 1), last the expected value."""
    return booster_predict(estimator._booster(), X, contributions=True)


def explain(model: Any, inputs: list[str], X: np.ndarray,
            scores: np.ndarray | None = None) -> Explanation | None:
    """The booster's contributions to rows `X` (model inputs `inputs`); None without a booster.

    `scores`: `model`'s fraud scores of these rows when the caller has them (the step
    scored the whole day already); otherwise the rows are scored here.
    """
    found = booster_member(model)
    if found is None or len(X) == 0:
        return None
    estimator, weight = found
    X = np.asarray(X, dtype=np.float64)
    contrib = booster_contributions(estimator, X)
    p_booster = np.asarray(estimator.predict_proba(X))[:, 1]
    if scores is not None and len(scores) != len(X):
        raise ValueError(f"{len(scores)} scores for {len(X)} rows")
    score = (np.asarray(model.predict_proba(X))[:, 1] if scores is None
             else np.asarray(scores, dtype=np.float64))
    raw = contrib.sum(axis=1)
    logit = np.log(np.clip(p_booster, 1e-300, None)) - np.log(np.clip(1 - p_booster, 1e-300, None))
    # base = expected value + the calibration's constant shift (logit - raw).
    base = contrib[:, -1] + (logit - raw)
    booster_part = weight * p_booster
    return Explanation(inputs=list(inputs), contributions=contrib[:, :-1], base=base,
                       booster_part=booster_part, other_part=score - booster_part,
                       booster_weight=weight)


def _top_inputs_of_rows(contributions: np.ndarray, count: int) -> list[list[int]]:
    """Per row of `contributions`, the indices of its `count` largest (> 0), largest first.

    A stable sort of each row: among equal contributions, the earlier input first.
    """
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :count]
    positive = np.take_along_axis(contributions, order, axis=1) > 0
    return [[i for i, keep in zip(top, kept, strict=True) if keep]
            for top, kept in zip(order.tolist(), positive.tolist(), strict=True)]


def top_inputs(explanation: Explanation, row: int, count: int = REASONS_PER_ROW) -> list[int]:
    """Indices of the `count` inputs that raised row `row`'s booster log-odds most (> 0)."""
    return _top_inputs_of_rows(explanation.contributions[row:row + 1], count)[0]


def reasons(explanation: Explanation, values: Mapping[str, float] | Any, row: int,
            count: int = REASONS_PER_ROW) -> list[dict]:
    """Row `row`'s reasons: input, contribution (log-odds) and words, largest first.

    Args:
        explanation: `explain` of the rows.
        values: the row's features by column name (a frame row or a dict); the words may
            read columns beyond the model's inputs when present.
        row: the row's index in `explanation`.
        count: reasons at most.
    """
    return [{"input": explanation.inputs[i],
             "contribution": round(float(explanation.contributions[row, i]), 4),
             "words": describe(explanation.inputs[i], values)}
            for i in top_inputs(explanation, row, count)]


class _ColumnValues(dict):
    """A frame's columns as lists of Python values, each made on first read."""

    def __init__(self, frame: Any) -> None:
        super().__init__()
        self.frame = frame

    def __missing__(self, name: str) -> list:
        if name not in self.frame.columns:
            raise KeyError(name)
        # Series.tolist gives the values to_dict("records") gives: Python floats and ints.
        self[name] = values = self.frame[name].tolist()
        return values


class _RowValues:
    """Row `row` of `_ColumnValues`, read by name as `describe` reads a row."""

    __slots__ = ("columns", "row")

    def __init__(self, columns: _ColumnValues, row: int) -> None:
        self.columns, self.row = columns, row

    def __getitem__(self, name: str) -> Any:
        return self.columns[name][self.row]


def reason_texts(explanation: Explanation, frame: Any,
                 count: int = REASONS_PER_ROW) -> tuple[list[str], list[str]]:
    """Every row's reasons as the scores file keeps them: words and input names, joined.

    The same as `reasons` row by row ("; " between the words, ", " between the inputs),
    for all the rows of `explanation` at once; `frame` holds those rows, in order.
    """
    inputs = explanation.inputs
    columns = _ColumnValues(frame)
    words: list[str] = []
    names: list[str] = []
    for row, top in enumerate(_top_inputs_of_rows(explanation.contributions, count)):
        found = [inputs[i] for i in top]
        values = _RowValues(columns, row)
        words.append("; ".join(describe(name, values) for name in found))
        names.append(", ".join(found))
    return words, names


def _span(days: int) -> str:
    return "24 h" if days == 1 else f"{days} days"


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def _get(values: Mapping[str, float] | Any, name: str) -> float | None:
    try:
        value = values[name]
    except (KeyError, IndexError):
        return None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) \
        else float(value)


def describe(name: str, values: Mapping[str, float] | Any) -> str:
    """Input `name` of one transaction in an analyst's words, with the row's values."""
    v = _get(values, name)
    if v is None:
        return name
    usual_30 = _get(values, "CUSTOMER_ID_NB_TX_30DAY_WINDOW")
    if name == "TX_AMOUNT":
        mean = _get(values, "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW")
        if _get(values, "CUSTOMER_ID_AMOUNT_RATIO_30DAY_WINDOW") is not None:
            return f"amount {v:.2f}"  # the ratio is an input of its own, with its reason
        if mean:
            return f"amount {v:.2f}, {v / mean:.1f}x the card's 30-day mean ({mean:.2f})"
        return f"amount {v:.2f}"
    if name == "TX_DURING_NIGHT":
        return "at night (before 07:00)" if v else "in the daytime"
    if name == "TX_DURING_WEEKEND":
        return "on a weekend" if v else "on a weekday"
    if m := _CUSTOMER_COUNT.fullmatch(name):
        n = int(m[1])
        usual = f", usually {usual_30 * n / 30:.1f}" if usual_30 is not None and n < 30 else ""
        return f"{v:.0f} transactions on the card in the last {_span(n)}{usual}"
    if m := _CUSTOMER_MEAN.fullmatch(name):
        mean_30 = _get(values, "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW")
        usual = (f", {mean_30:.2f} over 30 days" if mean_30 is not None and m[1] != "30"
                 else "")
        return f"the card's mean amount over the last {_span(int(m[1]))} is {v:.2f}{usual}"
    if m := _CUSTOMER_RATIO.fullmatch(name):
        return f"amount {v:.1f}x the card's {m[1]}-day mean"
    if m := _CUSTOMER_ZSCORE.fullmatch(name):
        return f"amount {v:+.1f} standard deviations from the card's {m[1]}-day mean"
    if name == "CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX":
        if v >= PREVIOUS_TX_CAP_DAYS * 86_400:
            return f"the card's first transaction in {PREVIOUS_TX_CAP_DAYS} days"
        return f"{_duration(v)} after the card's previous transaction"
    if name == "CUSTOMER_ID_NB_TX_1_OVER_30DAY":
        return f"{v:.0%} of the card's transactions of the last 30 days came in the last 24 h"
    if name == "CUSTOMER_ID_RISK_30DAY_WINDOW":
        return f"{v:.0%} of the card's transactions known as fraud (30 days to a week ago)"
    if m := _TERMINAL_RISK.fullmatch(name):
        count = _get(values, f"TERMINAL_ID_NB_TX_{m[1]}DAY_WINDOW")
        of = f" of {count:.0f}" if count is not None else ""
        return (f"terminal: {v:.0%}{of} transactions known as fraud in the {_span(int(m[1]))} "
                f"up to a week ago")
    if m := _TERMINAL_COUNT.fullmatch(name):
        return f"terminal: {v:.0f} transactions in the {_span(int(m[1]))} up to a week ago"
    if m := _TERMINAL_MEAN.fullmatch(name):
        return f"terminal: mean amount {v:.2f} in the {_span(int(m[1]))} up to a week ago"
    if name in ("TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD", "TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"):
        which = "a known fraud" if name.endswith("_SINCE_KNOWN_FRAUD") else "its first known fraud"
        if v >= LOOKBACK_DAYS:
            return "terminal: no known fraud in the 30 days up to a week ago"
        return f"terminal had {which} {v:.0f} days ago"
    if name == "CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS":
        return (f"{v:.0f} of the card's transactions since 13 days ago were at least "
                f"{HIGH_AMOUNT_RATIO:g}x its known-genuine mean")
    if name == "CUSTOMER_ID_HIGH_AMOUNT_SHARE_14CALENDAR_DAYS":
        return (f"{v:.0%} of the card's transactions since 13 days ago were at least "
                f"{HIGH_AMOUNT_RATIO:g}x its known-genuine mean")
    if name == "CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS":
        return f"the card's mean amount since 13 days ago is {v:.1f}x its known-genuine mean"
    return f"{name} = {v:g}"
