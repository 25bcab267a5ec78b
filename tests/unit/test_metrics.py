"""Metrics: AUC and AP against scikit-learn, Card Precision@k on hand-made days.

CP@k follows the handbook's `card_precision_top_k` (docs/facts.md#features-and-evaluation).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from trainer.evaluation.metrics import (
    average_precision,
    card_precision_at_k,
    ranking_metrics,
    roc_auc,
)


@pytest.mark.parametrize("seed", range(8))
def test_auc_and_ap_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = (rng.random(n) < 0.2).astype(int)
    y[0], y[1] = 0, 1
    # Rounded scores make many ties, the case where implementations differ.
    score = np.round(rng.random(n) + 0.3 * y, int(rng.integers(1, 3)))
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert average_precision(y, score) == pytest.approx(
        average_precision_score(y, score), abs=1e-12
    )


def test_known_values():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx((1 + 2 / 3) / 2)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


def test_one_class_gives_nan_without_error():
    assert math.isnan(roc_auc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(average_precision([1, 1], [0.1, 0.2]))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="equal length"):
        roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="0 or 1"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="position 1"):
        average_precision([0, 1], [0.1, float("nan")])


def scored(rows: list[tuple]) -> pd.DataFrame:
    """(day, customer, fraud, score) -> a scored frame with TX_DATETIME."""
    frame = pd.DataFrame(rows, columns=["day", "CUSTOMER_ID", "TX_FRAUD", "score"])
    frame["TX_DATETIME"] = pd.to_datetime(frame["day"]) + pd.Timedelta(hours=12)
    return frame.drop(columns="day")


def test_card_precision_uses_each_customers_best_score_and_divides_by_k():
    frame = scored(
        [
            ("2018-08-08", 1, 0, 0.9),
            ("2018-08-08", 1, 1, 0.1),  # customer 1 compromised that day, via a low-score tx
            ("2018-08-08", 2, 0, 0.8),
            ("2018-08-08", 3, 1, 0.7),
            ("2018-08-08", 4, 1, 0.2),  # compromised but outside the top 2
        ]
    )
    result = card_precision_at_k(frame, k=2)
    assert result.per_day.tolist() == [0.5]  # top 2 = customers 1 (compromised) and 2
    assert card_precision_at_k(frame, k=10).mean == pytest.approx(3 / 10)  # divided by k


def test_card_precision_removes_cards_detected_on_earlier_days():
    frame = scored(
        [
            ("2018-08-08", 1, 1, 0.9),  # detected on day 1
            ("2018-08-08", 2, 0, 0.8),
            ("2018-08-08", 3, 1, 0.1),  # compromised, not in the top 2: stays in play
            ("2018-08-09", 1, 1, 0.99),  # removed: already detected
            ("2018-08-09", 3, 1, 0.5),
            ("2018-08-09", 4, 0, 0.4),
            ("2018-08-09", 5, 0, 0.3),
        ]
    )
    result = card_precision_at_k(frame, k=2)
    assert result.per_day.index.tolist() == [dt.date(2018, 8, 8), dt.date(2018, 8, 9)]
    # Day 2 without removal would be customers 1 and 3: 1.0; with removal 3 and 4: 0.5.
    assert result.per_day.tolist() == [0.5, 0.5]
    assert result.mean == pytest.approx(0.5)


def test_card_precision_ties_break_by_customer_and_day_column_option():
    frame = pd.DataFrame(
        {
            "DAY": [0, 0, 0],
            "CUSTOMER_ID": [9, 3, 5],
            "TX_FRAUD": [0, 1, 0],
            "score": [0.5, 0.5, 0.5],
        }
    )
    assert card_precision_at_k(frame, k=1, day_column="DAY").mean == 1.0  # customer 3 first
    with pytest.raises(ValueError, match="TX_DATETIME"):
        card_precision_at_k(frame, k=1)


def _by_argsort(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """AUC from scipy's average ranks, AP with the labels carried through a stable argsort."""
    from scipy.stats import rankdata

    positive = y == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    auc = (rankdata(score)[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    order = np.argsort(-score, kind="stable")
    last = np.append(np.flatnonzero(np.diff(score[order]) != 0), len(score) - 1)
    true_positives = np.cumsum(positive[order])[last]
    recall = true_positives / n_pos
    precision = true_positives / (last + 1)
    return float(auc), float(np.sum(np.diff(recall, prepend=0.0) * precision))


@pytest.mark.parametrize("seed", range(12))
def test_auc_and_ap_are_the_rank_and_argsort_definitions_to_the_bit(seed):
    # WHY: a day's AUC and AP come from one sort of its scores; they must be the values of
    # the plain definitions exactly, not just close, so a day's metrics do not move.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 20_000))
    y = (rng.random(n) < rng.choice([0.01, 0.05, 0.5])).astype(int)
    y[0], y[1] = 0, 1
    score = np.round(rng.random(n) + 0.2 * y, int(rng.integers(0, 6)))  # ties, 0 and 1 too
    if seed % 3 == 0:
        score[rng.random(n) < 0.1] = -0.0  # equal to 0.0
    both = ranking_metrics(y, score)
    assert (both.auc_roc, both.average_precision) == _by_argsort(y, score)
    assert (roc_auc(y, score), average_precision(y, score)) == _by_argsort(y, score)
