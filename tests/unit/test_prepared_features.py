"""The prepared-history query equals the raw-history features bit for bit.

`trainer.features.prepared` computes a day's features from its history prepared once plus
each target's card rows of the day: the path of `fraudpipe serve` and of arrival scoring.
It must give exactly what `compute_features` and `extra_features_of_day` give over the
raw rows, on days built to be awkward (few entities, many rows on equal instants and
exactly whole days apart, amounts of 0.00, text ids whose order is not the numbers'),
whether the day's rows come all at once, one card at a time, or only up to the target.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from trainer.errors import DatasetValidationError
from trainer.features.compute import FEATURE_COLUMNS, INPUT_COLUMNS, compute_features
from trainer.features.from_history import features_of_transactions
from trainer.features.prepared import (
    PreparedParts,
    day_features,
    day_rows,
    features_of_day_frame,
    prepare_history,
)
from trainer.features.profiles import EXTRA_FEATURE_COLUMNS, extra_features_of_day

DAY = dt.date(2018, 5, 20)
NS_PER_DAY = 86_400 * 10**9
ALL = FEATURE_COLUMNS[1:] + EXTRA_FEATURE_COLUMNS


def awkward_days(seed: int, days: int = 40, per_day: int = 40, text: bool = False,
                 customers: int = 12) -> pd.DataFrame:
    """Rows of `days` days ending on DAY + 1: ties, whole-day gaps, zero amounts."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    first = pd.Timestamp(DAY) - (days - 2) * pd.Timedelta(days=1)
    seconds = rng.integers(0, days * 86_400, n)
    snapped = rng.random(n) < 0.5  # onto a 6-hour grid: ties and exact n-day edges
    seconds[snapped] = seconds[snapped] // 21_600 * 21_600
    frame = pd.DataFrame({
        "TRANSACTION_ID": rng.permutation(n).astype("int64"),
        "TX_DATETIME": (first + pd.to_timedelta(seconds, unit="s")).astype("datetime64[ns]"),
        "CUSTOMER_ID": rng.integers(0, customers, n).astype("int64"),
        "TERMINAL_ID": rng.integers(0, 8, n).astype("int64"),
        "TX_AMOUNT": np.where(rng.random(n) < 0.2, 0.0, np.round(rng.uniform(1, 200, n), 2)),
        "TX_FRAUD": (rng.random(n) < 0.15).astype("int64"),
    })
    if text:  # a bank's ids: text, sorted unlike their numbers
        frame["TRANSACTION_ID"] = "tx-" + frame["TRANSACTION_ID"].astype(str)
        frame["CUSTOMER_ID"] = "card-" + frame["CUSTOMER_ID"].astype(str)
    return frame


def reference(transactions: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The raw-history features of `day`'s rows, by TRANSACTION_ID."""
    features = compute_features(transactions, day).set_index("TRANSACTION_ID")
    extra = extra_features_of_day(transactions, day).set_index("TRANSACTION_ID")
    return pd.concat([features[FEATURE_COLUMNS[1:]], extra[EXTRA_FEATURE_COLUMNS]], axis=1)


def split(transactions: pd.DataFrame, day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every row before `day`, `day`'s rows)."""
    start = pd.Timestamp(day)
    times = transactions["TX_DATETIME"]
    return (transactions[times < start],
            transactions[(times >= start) & (times < start + pd.Timedelta(days=1))])


def columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy() for name in INPUT_COLUMNS}


def assert_bit_equal(expected: pd.DataFrame, ids, got: dict[str, np.ndarray]) -> None:
    for name in ALL:
        np.testing.assert_array_equal(got[name], expected.loc[ids, name].to_numpy(),
                                      err_msg=name, strict=True)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("text", [False, True])
def test_a_whole_day_at_once_equals_the_raw_history_features(seed, text):
    transactions = awkward_days(seed, text=text)
    history, day = split(transactions, DAY)
    prepared = prepare_history(columns(history), pd.Timestamp(DAY).value)
    got = day_features(prepared, day_rows(columns(day)), np.arange(len(day)), profiles=True)
    assert_bit_equal(reference(transactions, DAY), day["TRANSACTION_ID"], got)


@pytest.mark.parametrize("text", [False, True])
def test_each_card_alone_and_the_day_so_far_give_the_same_features(text):
    # GIVEN a day, in (time, id) order as it happens
    transactions = awkward_days(7, text=text)
    history, day = split(transactions, DAY)
    day = day.sort_values(["TX_DATETIME", "TRANSACTION_ID"], ignore_index=True)
    prepared = prepare_history(columns(history), pd.Timestamp(DAY).value)
    expected = reference(transactions, DAY)
    for i in range(0, len(day), 3):
        # WHEN a row is scored with only its card's rows so far (the service's single
        # request) and with every row of the day so far (a batch)
        card = day.iloc[: i + 1]
        card = card[card["CUSTOMER_ID"] == day["CUSTOMER_ID"].iloc[i]]
        one = day_features(prepared, day_rows(columns(card), one_card=True),
                           np.array([len(card) - 1]), profiles=True)
        so_far = day_features(prepared, day_rows(columns(day.iloc[: i + 1])), np.array([i]),
                              profiles=True)
        # THEN both are the raw-history features of that row
        assert_bit_equal(expected, day["TRANSACTION_ID"].iloc[[i]], one)
        assert_bit_equal(expected, day["TRANSACTION_ID"].iloc[[i]], so_far)


def test_the_day_after_a_roll_reads_the_served_day_from_history():
    # the next day's history holds the day just served (unlabelled, as the service saw it)
    transactions = awkward_days(3, text=True)
    following = DAY + dt.timedelta(days=1)
    served = split(transactions, following)[0]
    served.loc[served["TX_DATETIME"] >= pd.Timestamp(DAY), "TX_FRAUD"] = 0
    history, day = split(served.pipe(lambda f: pd.concat([f, split(transactions, following)[1]])),
                         following)
    prepared = prepare_history(columns(history), pd.Timestamp(following).value)
    got = day_features(prepared, day_rows(columns(day)), np.arange(len(day)), profiles=True)
    assert_bit_equal(reference(pd.concat([history, day]), following), day["TRANSACTION_ID"],
                     got)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("text", [False, True])
@pytest.mark.parametrize("cut_days", [1, 2, 8, 30])
def test_a_history_prepared_in_two_parts_equals_it_prepared_whole(seed, text, cut_days):
    # GIVEN the history cut at a midnight: the days carried ahead, then the later days
    # (the service prepares the day it has just served alone, at the roll)
    transactions = awkward_days(seed, text=text, customers=16 + seed)
    history, day = split(transactions, DAY)
    cut = DAY - dt.timedelta(days=cut_days)
    carried, last = split(history, cut)[0], history[history["TX_DATETIME"] >= pd.Timestamp(cut)]
    parts = PreparedParts((prepare_history(columns(carried), pd.Timestamp(cut).value),
                           prepare_history(columns(last), pd.Timestamp(DAY).value)))
    assert parts.rows == len(history) and len(last) > 0
    # WHEN the day's features read the two parts, the whole day at once and card by card
    got = day_features(parts, day_rows(columns(day)), np.arange(len(day)), profiles=True)
    # THEN they are the raw-history features, bit for bit
    expected = reference(transactions, DAY)
    assert_bit_equal(expected, day["TRANSACTION_ID"], got)
    ordered = day.sort_values(["TX_DATETIME", "TRANSACTION_ID"], ignore_index=True)
    for i in range(0, len(ordered), 5):
        card = ordered.iloc[: i + 1]
        card = card[card["CUSTOMER_ID"] == ordered["CUSTOMER_ID"].iloc[i]]
        one = day_features(parts, day_rows(columns(card), one_card=True),
                           np.array([len(card) - 1]), profiles=True)
        assert_bit_equal(expected, ordered["TRANSACTION_ID"].iloc[[i]], one)


def test_history_parts_out_of_time_order_are_refused():
    history, _ = split(awkward_days(1), DAY)
    cut = DAY - dt.timedelta(days=1)
    carried, last = split(history, cut)[0], history[history["TX_DATETIME"] >= pd.Timestamp(cut)]
    whole = prepare_history(columns(carried), pd.Timestamp(DAY).value)
    with pytest.raises(DatasetValidationError, match="expected each part later"):
        PreparedParts((whole, prepare_history(columns(last), pd.Timestamp(DAY).value)))


def test_history_in_any_row_order_and_new_cards_and_terminals():
    transactions = awkward_days(5, customers=30)
    history, day = split(transactions, DAY)
    # cards and terminals that the history never saw
    day = day.assign(CUSTOMER_ID=day["CUSTOMER_ID"] + 1000 * (np.arange(len(day)) % 2),
                     TERMINAL_ID=day["TERMINAL_ID"] + 1000 * (np.arange(len(day)) % 3 == 0))
    shuffled = history.sample(frac=1, random_state=0)
    prepared = prepare_history(columns(shuffled), pd.Timestamp(DAY).value)
    got = day_features(prepared, day_rows(columns(day)), np.arange(len(day)), profiles=True)
    assert_bit_equal(reference(pd.concat([history, day]), DAY), day["TRANSACTION_ID"], got)
    unseen = (day["CUSTOMER_ID"] >= 1000).to_numpy()
    assert (got["CUSTOMER_ID_NB_TX_30DAY_WINDOW"][unseen]
            == 1 + day_rows(columns(day)).rank[unseen]).all()


def test_a_day_frame_equals_the_raw_history_frame():
    transactions = awkward_days(2, text=True)
    for profiles in (False, True):
        pd.testing.assert_frame_equal(
            features_of_day_frame(transactions, DAY, profiles=profiles),
            features_of_transactions(transactions, DAY, profiles=profiles))


def test_rows_outside_the_day_are_refused_with_a_clear_error():
    transactions = awkward_days(1)
    history, day = split(transactions, DAY)
    start = pd.Timestamp(DAY).value
    with pytest.raises(DatasetValidationError, match="history: .* row"):
        prepare_history(columns(pd.concat([history, day])), start)
    prepared = prepare_history(columns(history), start)
    later = split(transactions, DAY + dt.timedelta(days=1))[1]
    with pytest.raises(DatasetValidationError, match="a time outside 2018-05-20"):
        day_features(prepared, day_rows(columns(later)), np.arange(len(later)), profiles=False)
