"""The handbook's evaluation protocol (docs/facts.md#features-and-evaluation) on hand-made data."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from trainer.errors import DatasetValidationError
from trainer.evaluation.split import (
    evaluate_on_share,
    evaluate_split,
    filter_known_compromised,
    known_compromised_by_test_day,
)
from trainer.features.compute import FEATURE_COLUMNS
from trainer.share.layout import Share

# The headline split: train 07-25..07-31, delay 08-01..08-07, test 08-08..08-14.
CHECKPOINT = dt.date(2018, 7, 31)
TEST_START = dt.date(2018, 8, 8)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def transactions(rows: list[tuple]) -> pd.DataFrame:
    """(date, customer, fraud[, score]) -> rows at noon with sequential ids."""
    frame = pd.DataFrame(rows, columns=["day", "CUSTOMER_ID", "TX_FRAUD", "score"][: len(rows[0])])
    frame["TX_DATETIME"] = (pd.to_datetime(frame.pop("day")) + pd.Timedelta(hours=12)).astype(
        "datetime64[ns]"
    )
    frame.insert(0, "TRANSACTION_ID", np.arange(len(frame), dtype="int64"))
    return frame


def test_headline_split_filter_reveals_one_delay_day_per_test_day():
    # GIVEN customers whose frauds fall on each kind of day around the headline split
    labelled = transactions(
        [
            ("2018-07-24", 1, 1),  # before the known window: never known
            ("2018-07-25", 2, 1),  # first day of the training week: known from test day 0
            ("2018-07-31", 3, 1),  # the checkpoint's day: known from test day 0
            ("2018-07-31", 9, 0),  # no fraud: never known
            ("2018-08-01", 4, 1),  # delay day 1: known from test day 1
            ("2018-08-03", 5, 1),  # delay day 3: known from test day 3
            ("2018-08-06", 6, 1),  # delay day 6: known on test day 6 only
            ("2018-08-07", 7, 1),  # delay day 7: not revealed within the test week
            ("2018-08-08", 8, 1),  # a test day: frauds on test days are never revealed
        ]
    )
    # WHEN
    excluded = known_compromised_by_test_day(labelled, CHECKPOINT, TEST_START, 7, 7)
    # THEN
    assert [sorted(s) for s in excluded] == [
        [2, 3],
        [2, 3, 4],
        [2, 3, 4],
        [2, 3, 4, 5],
        [2, 3, 4, 5],
        [2, 3, 4, 5],
        [2, 3, 4, 5, 6],
    ]


def test_filter_is_applied_day_by_day():
    excluded = [frozenset({1}), frozenset({1, 2})]
    test_rows = transactions(
        [
            ("2018-08-08", 1, 0),
            ("2018-08-08", 2, 1),
            ("2018-08-08", 3, 0),
            ("2018-08-09", 1, 1),
            ("2018-08-09", 2, 0),
            ("2018-08-09", 3, 1),
            ("2018-08-10", 3, 0),  # outside a two-day test period
        ]
    )
    kept = filter_known_compromised(test_rows, TEST_START, excluded)
    days_and_customers = zip(kept["TX_DATETIME"].dt.day, kept["CUSTOMER_ID"], strict=True)
    assert list(days_and_customers) == [(8, 2), (8, 3), (9, 3)]


def test_known_window_length_is_respected():
    labelled = transactions([("2018-07-29", 1, 1), ("2018-07-30", 2, 1), ("2018-07-31", 3, 1)])
    assert sorted(known_compromised_by_test_day(labelled, CHECKPOINT, TEST_START, 1, 2)[0]) == [
        2,
        3,
    ]
    assert known_compromised_by_test_day(labelled, CHECKPOINT, TEST_START, 1, 0)[0] == frozenset()
    with pytest.raises(ValueError, match="after the checkpoint"):
        known_compromised_by_test_day(labelled, CHECKPOINT, CHECKPOINT, 1, 7)


def test_evaluate_split_metrics_on_the_filtered_set():
    rng = np.random.default_rng(0)
    rows = []
    for day in range(7):
        date = (TEST_START + dt.timedelta(days=day)).isoformat()
        for customer in range(60):
            fraud = int(rng.random() < 0.1)
            rows.append((date, customer, fraud, round(rng.random() * 0.7 + 0.3 * fraud, 3)))
    scored = transactions(rows)
    labelled = transactions([("2018-07-30", 0, 1), ("2018-08-02", 1, 1)])
    result = evaluate_split(scored, labelled, CHECKPOINT, TEST_START)
    json.dumps(result)  # JSON-ready

    # Customer 0 is gone from every day; customer 1 from test day 2 (08-10) on.
    expected = scored[
        (scored["CUSTOMER_ID"] != 0)
        & ~((scored["CUSTOMER_ID"] == 1) & (scored["TX_DATETIME"].dt.day >= 10))
    ]
    assert result["transactions"] == len(expected) == 7 * 59 - 5
    assert result["frauds"] == expected["TX_FRAUD"].sum()
    assert result["auc_roc"] == pytest.approx(
        roc_auc_score(expected["TX_FRAUD"], expected["score"])
    )
    assert result["average_precision"] == pytest.approx(
        average_precision_score(expected["TX_FRAUD"], expected["score"])
    )
    # Fewer than 100 customers a day: every compromised card is in the top 100.
    per_day = [
        g.groupby("CUSTOMER_ID")["TX_FRAUD"].max().sum() / 100
        for _, g in expected.groupby(expected["TX_DATETIME"].dt.date)
    ]
    assert result["card_precision_per_day"]["2018-08-08"] == pytest.approx(per_day[0])
    assert result["excluded_customers"] == [1, 1, 2, 2, 2, 2, 2]
    assert set(result) >= {
        "auc_roc",
        "average_precision",
        "card_precision_at_100",
        "transactions",
        "frauds",
        "test_start",
        "test_days",
    }


def test_no_fraud_left_gives_null_metrics():
    scored = transactions([("2018-08-08", 1, 0, 0.5), ("2018-08-08", 2, 1, 0.9)])
    labelled = transactions([("2018-07-31", 2, 1)])
    result = evaluate_split(scored, labelled, CHECKPOINT, TEST_START, test_days=1)
    assert result["transactions"] == 1 and result["frauds"] == 0
    assert result["auc_roc"] is None and result["average_precision"] is None
    assert result["card_precision_at_100"] == 0.0


def write_day(
    share: Share, day: dt.date, customers: list[int], frauds: list[int], first_id: int
) -> None:
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(first_id, first_id + len(customers), dtype="int64"),
            "TX_DATETIME": pd.Timestamp(day)
            + pd.to_timedelta(np.arange(len(customers)) * 60 + 3600, unit="s"),
            "CUSTOMER_ID": np.array(customers, dtype="int64"),
            "TERMINAL_ID": np.array(customers, dtype="int64") % 3,
            "TX_AMOUNT": np.linspace(5, 50, len(customers)),
            "TX_TIME_SECONDS": np.zeros(len(customers), dtype="int64"),
            "TX_TIME_DAYS": np.zeros(len(customers), dtype="int64"),
            "TX_FRAUD": np.array(frauds, dtype="int64"),
            "TX_FRAUD_SCENARIO": np.array(frauds, dtype="int64"),
        }
    )
    frame["TX_DATETIME"] = frame["TX_DATETIME"].astype("datetime64[ns]")
    share.training_dir.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(share.training_dataset(day), index=False)


def test_evaluate_on_share_scores_features_and_filters(tmp_path):
    share = Share.at(tmp_path)
    checkpoint, test_start = d("2018-04-03"), d("2018-04-05")
    write_day(share, d("2018-04-03"), [1, 2, 3], [1, 0, 0], 0)  # customer 1 known
    write_day(share, d("2018-04-04"), [2, 3, 4], [0, 1, 0], 10)  # customer 3 revealed for day 2
    write_day(share, d("2018-04-05"), [1, 2, 3, 4], [1, 1, 0, 0], 20)
    write_day(share, d("2018-04-06"), [1, 2, 3, 4], [0, 0, 1, 1], 30)
    seen = []

    def score_fn(features: pd.DataFrame) -> np.ndarray:
        seen.append(features)
        return features["TX_FRAUD"].to_numpy() * 0.8 + 0.1  # a perfect model

    result = evaluate_on_share(
        share, score_fn, checkpoint, test_start, test_days=2, known_window_days=3
    )
    assert set(FEATURE_COLUMNS) <= set(seen[0].columns) and len(seen[0]) == 8
    # Day 0 drops customer 1; day 1 drops 1 and 3.
    assert result["transactions"] == 3 + 2
    assert result["frauds"] == 2
    assert result["auc_roc"] == 1.0 and result["average_precision"] == 1.0
    assert result["missing_label_days"] == ["2018-04-01", "2018-04-02"]

    with pytest.raises(DatasetValidationError, match=r"2018-04-07\.parquet"):
        evaluate_on_share(share, score_fn, checkpoint, test_start, test_days=3)
    with pytest.raises(ValueError, match="one finite score per row"):
        evaluate_on_share(share, lambda f: np.zeros(2), checkpoint, test_start, test_days=2)


def test_evaluate_on_share_gives_the_profiles_when_asked(tmp_path):
    # WHY: a checkpoint of a learner reading the profile columns is scored on features
    # computed from the raw history; they must hold those columns, from the same rows.
    from trainer.features.profiles import EXTRA_FEATURE_COLUMNS, extra_features_of_day
    from trainer.features.store import read_transactions

    share = Share.at(tmp_path)
    days = [d("2018-04-03"), d("2018-04-04"), d("2018-04-05"), d("2018-04-06")]
    write_day(share, days[0], [1, 2, 3], [1, 0, 0], 0)
    write_day(share, days[1], [2, 3, 4], [0, 1, 0], 10)
    write_day(share, days[2], [1, 2, 3, 4], [1, 1, 0, 0], 20)
    write_day(share, days[3], [1, 2, 3, 4], [0, 0, 1, 1], 30)
    seen = {}

    def score_fn(features: pd.DataFrame) -> np.ndarray:
        seen[len(seen)] = features
        return features["TX_FRAUD"].to_numpy() * 0.8 + 0.1

    plain = evaluate_on_share(share, score_fn, days[0], days[2], test_days=2,
                              known_window_days=3)
    profiled = evaluate_on_share(share, score_fn, days[0], days[2], test_days=2,
                                 known_window_days=3, profiles=True)
    assert not set(EXTRA_FEATURE_COLUMNS) & set(seen[0].columns)
    assert list(seen[1].columns) == list(seen[0].columns) + EXTRA_FEATURE_COLUMNS
    pd.testing.assert_frame_equal(seen[1][seen[0].columns], seen[0])
    raw = pd.concat([read_transactions(share.training_dataset(day)) for day in days],
                    ignore_index=True)
    expected = pd.concat([extra_features_of_day(raw, day) for day in days[2:]],
                         ignore_index=True)
    pd.testing.assert_frame_equal(seen[1][["TRANSACTION_ID", *EXTRA_FEATURE_COLUMNS]],
                                  expected)
    assert profiled == plain


def test_training_accuracy_is_exact_up_to_its_row_limit_and_a_seeded_sample_above():
    # WHY: above the limit the report's training accuracy is an estimate; it must be the
    # same on a rerun of the step (seeded by the day) and say how many rows it used.
    from sklearn.linear_model import LogisticRegression

    from trainer.evaluation.scoring import training_accuracy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5_000, 3))
    y = (X[:, 0] + rng.normal(scale=1.5, size=5_000) > 1.5).astype(int)
    model = LogisticRegression().fit(X, y)
    exact = float((model.predict(X) == y).mean())
    assert training_accuracy(model, X, y, dt.date(2018, 4, 2)) == (exact, 5_000)
    day = dt.date(2018, 4, 2)
    estimate, rows = training_accuracy(model, X, y, day, max_rows=1_000)
    assert rows == 1_000 and estimate != exact
    assert abs(estimate - exact) < 4 * (exact * (1 - exact) / 1_000) ** 0.5
    assert training_accuracy(model, X, y, day, max_rows=1_000) == (estimate, rows)
    assert training_accuracy(model, X, y, dt.date(2018, 4, 3), max_rows=1_000) != (
        estimate, rows)


def test_the_report_says_when_training_accuracy_was_measured_on_a_sample():
    from trainer.report import entry_text
    from trainer.share.lineage import Entry

    def text(rows: int) -> list[str]:
        metrics = {"transactions": 100_000, "frauds": 800, "train_accuracy": 0.99,
                   "train_accuracy_rows": rows}
        return entry_text(Entry(date="2018-04-02", checkpoint="output/m.skops", sha256="s",
                                parent_sha256=None, dataset_sha256="d", learner="sgd",
                                metrics=metrics)).splitlines()

    assert text(20_000)[4] == "Accuracy on training data: 0.99000"
    assert "Accuracy on training data measured on 20000 sampled rows" in text(20_000)
    assert not any("sampled rows" in line for line in text(100_000))


@pytest.mark.parametrize("seed", range(5))
def test_one_days_card_precision_equals_the_general_definition(seed):
    # WHY: the step computes a day's CP@100 from the alert ranking; it must be the
    # handbook's card_precision_top_k, ties between cards included.
    from trainer.evaluation.metrics import card_precision_at_k
    from trainer.evaluation.scoring import _cp_at_k

    rng = np.random.default_rng(seed)
    n = 3_000
    frame = pd.DataFrame({
        "TX_DATETIME": pd.Timestamp("2018-04-02") + pd.to_timedelta(
            rng.integers(0, 86_400, n), unit="s"),
        "CUSTOMER_ID": rng.integers(0, 400, n),
        "TX_FRAUD": (rng.random(n) < 0.05).astype(int),
    })
    scores = np.round(rng.random(n), 1)  # many ties, between cards too
    expected = card_precision_at_k(frame.assign(score=scores), k=100).mean
    assert _cp_at_k(frame, scores) == expected
    assert 0 < expected < 1


def _card_ranks_by_pandas(frame: pd.DataFrame, scores: np.ndarray, k: int) -> pd.Series:
    """The card ranking spelled out with pandas: each card's maximum, sorted, the first k."""
    best = (pd.DataFrame({"CUSTOMER_ID": frame["CUSTOMER_ID"].to_numpy(), "score": scores})
            .groupby("CUSTOMER_ID")["score"].max().reset_index()
            .sort_values(["score", "CUSTOMER_ID"], ascending=[False, True]).head(k))
    rank = dict(zip(best["CUSTOMER_ID"], range(1, len(best) + 1), strict=True))
    return frame["CUSTOMER_ID"].map(rank).astype("Int64")


@pytest.mark.parametrize("seed", range(40))
def test_card_ranks_equal_the_ranking_of_each_cards_best_score(seed):
    # WHY: card_ranks sorts only the day's highest rows; the ranks written (and the saved
    # list) must be those of every card's best score, ties by card, NaN scores last.
    from trainer.evaluation.scoring import card_ranks

    rng = np.random.default_rng(seed)
    n, cards = int(rng.integers(0, 3_000)), int(rng.integers(1, 400))
    frame = pd.DataFrame({"CUSTOMER_ID": rng.integers(0, cards, n) * 7 + 3},
                         index=pd.RangeIndex(n) + 5 * (seed % 2))
    scores = np.round(rng.random(n), int(rng.integers(1, 4)))  # ties, between cards too
    if seed % 5 == 0:
        scores[rng.random(n) < 0.3] = np.nan
    k = int(rng.integers(1, 150))
    pd.testing.assert_series_equal(card_ranks(frame, scores, k),
                                   _card_ranks_by_pandas(frame, scores, k), check_exact=True)


def test_card_ranks_when_the_highest_rows_hold_few_cards():
    # WHY: a few cards owning all of the day's highest rows must not hide the next cards.
    from trainer.evaluation.scoring import card_ranks

    rng = np.random.default_rng(0)
    heavy = np.repeat(np.arange(10), 500)  # 10 cards with 500 high rows each
    frame = pd.DataFrame({"CUSTOMER_ID": np.concatenate([heavy, 10 + np.arange(2_000)])})
    scores = np.concatenate([0.9 + 0.1 * rng.random(len(heavy)), 0.8 * rng.random(2_000)])
    ranks = card_ranks(frame, scores)
    pd.testing.assert_series_equal(ranks, _card_ranks_by_pandas(frame, scores, 100),
                                   check_exact=True)
    assert ranks.notna().sum() == 10 * 500 + 90
