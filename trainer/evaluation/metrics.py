"""Fraud-detection metrics: ROC AUC, average precision and Card Precision@k.

The first two agree with scikit-learn's ``roc_auc_score`` and ``average_precision_score``
(ties included) but return NaN instead of raising when only one class is present, which
happens on real days (the first days of a run may have no fraud). Card Precision@k is the
handbook's ``card_precision_top_k`` (Le Borgne et al., chapter 4.2;
docs/facts.md#features-and-evaluation).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import numpy as np
import pandas as pd


def _labels_and_scores(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y)
    scores = np.asarray(score, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-d and of equal length; got shapes "
            f"{labels.shape} and {scores.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        bad = labels[~np.isin(labels, (0, 1))][0]
        raise ValueError(f"labels must be 0 or 1; found {bad!r}")
    if not np.isfinite(scores).all():
        row = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"score at position {row} is {scores[row]}; expected a finite number")
    return labels.astype(bool), scores


class Ranking(NamedTuple):
    """The two ranking metrics of one set of scores (`ranking_metrics`)."""

    auc_roc: float
    average_precision: float


def ranking_metrics(y: np.ndarray, score: np.ndarray) -> Ranking:
    """`roc_auc` and `average_precision` of the same scores, from one sort of them.

    Both are NaN when `y` holds a single class.
    """
    positive, scores = _labels_and_scores(y, score)
    n = len(positive)
    n_pos = int(positive.sum())
    if n_pos == 0 or n_pos == n:
        return Ranking(float("nan"), float("nan"))
    sorted_scores = np.sort(scores)[::-1]  # descending
    # The last index of each group of equal scores is one threshold.
    last_of_threshold = np.flatnonzero(np.diff(sorted_scores) != 0)
    last_of_threshold = np.append(last_of_threshold, n - 1)
    # Each positive's threshold (its score's place among them), then the positives at or
    # above each: the counts carrying the labels through an argsort of the day would give,
    # at less than half its cost (sorting the values alone; the positives are few).
    thresholds = len(last_of_threshold)
    ascending = sorted_scores[last_of_threshold][::-1]
    positives_at = np.bincount(thresholds - 1 - np.searchsorted(ascending, scores[positive]),
                               minlength=thresholds)
    true_positives = np.cumsum(positives_at)

    # Average precision: sum over thresholds of precision x recall increment; tied scores
    # form one threshold, as in scikit-learn.
    predicted = last_of_threshold + 1
    precision = true_positives / predicted
    recall = true_positives / n_pos
    average_precision = float(np.sum(np.diff(recall, prepend=0.0) * precision))

    # ROC AUC as the Mann-Whitney statistic with average ranks, which equals the
    # trapezoidal area scikit-learn computes, ties included. A group of equal scores at
    # descending positions first..last (0-based) holds the ascending ranks n-last..n-first,
    # average n - (first + last) / 2. Every rank is a half-integer and every partial sum of
    # them is exact in float64, so the sum is scipy's `rankdata` sum to the bit.
    first_of_threshold = np.concatenate(([0], last_of_threshold[:-1] + 1))
    average_rank = n - (first_of_threshold + last_of_threshold) / 2
    positive_rank_sum = float(np.dot(average_rank, positives_at))
    n_neg = n - n_pos
    auc = (positive_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return Ranking(float(auc), average_precision)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve; NaN when `y` holds a single class (`ranking_metrics`)."""
    return ranking_metrics(y, score).auc_roc


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision; NaN when `y` holds a single class (`ranking_metrics`)."""
    return ranking_metrics(y, score).average_precision


class CardPrecision(NamedTuple):
    """Card Precision@k over several days."""

    mean: float
    """Mean of the per-day values (NaN when there are no days)."""
    per_day: pd.Series
    """Card Precision@k of each day, indexed by date, oldest first."""


def _days(scored: pd.DataFrame, day_column: str | None) -> pd.Series:
    if day_column is not None:
        return scored[day_column]
    if "TX_DATETIME" not in scored.columns:
        raise ValueError("scored transactions need a TX_DATETIME column or a day_column")
    return scored["TX_DATETIME"].dt.date


def card_precision_at_k(
    scored: pd.DataFrame,
    k: int = 100,
    *,
    score_column: str = "score",
    day_column: str | None = None,
) -> CardPrecision:
    """Card Precision@k: of the k cards an analyst checks each day, the share compromised.

    Per day, each customer gets their highest score and is compromised if they have a
    fraud that day; the k highest-scoring customers are checked and the value is the
    number of compromised ones divided by k (by k even on a day with fewer customers, as
    the handbook does). Customers found compromised in an earlier day's top k are removed
    from the later days. Equal scores are ordered by CUSTOMER_ID so the result is
    deterministic.

    Args:
        scored: Rows with CUSTOMER_ID, TX_FRAUD, the score column, and TX_DATETIME (or
            `day_column`).
        k: Cards checked per day.
        score_column: Column holding the fraud score.
        day_column: Column holding the day, if not derived from TX_DATETIME.

    Returns:
        The mean over days and the per-day values.
    """
    if k <= 0:
        raise ValueError(f"k must be positive; got {k}")
    missing = [c for c in ("CUSTOMER_ID", "TX_FRAUD", score_column) if c not in scored.columns]
    if missing:
        raise ValueError(f"scored transactions lack column(s) {missing}")
    frame = pd.DataFrame(
        {
            "day": _days(scored, day_column).to_numpy(),
            "customer": scored["CUSTOMER_ID"].to_numpy(),
            "fraud": scored["TX_FRAUD"].to_numpy(),
            "score": scored[score_column].to_numpy(dtype=np.float64),
        }
    )
    detected: set = set()
    per_day: dict[dt.date, float] = {}
    for day, rows in frame.groupby("day", sort=True):
        rows = rows[~rows["customer"].isin(detected)]
        cards = rows.groupby("customer", sort=True).agg(
            score=("score", "max"), fraud=("fraud", "max")
        )
        top = cards.sort_values("score", ascending=False, kind="stable").head(k)
        found = top.index[top["fraud"] == 1]
        per_day[day] = len(found) / k
        detected.update(found.tolist())
    values = pd.Series(per_day, dtype=np.float64)
    return CardPrecision(float(values.mean()) if len(values) else float("nan"), values)
