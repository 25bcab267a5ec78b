"""The card inputs from the prepared history equal their raw reference bit for bit.

`trainer.features.prepared` computes the 3 card inputs of `trainer.features.cards` (the
path of `fraudpipe serve` and of arrival scoring) from the history prepared once, each
history row of the span flagged when its part is prepared, plus each target's card rows
of the day. They must be `card_features`' values over the raw rows, on days built to be
awkward: rows on equal instants (an earlier row of the same instant is not in the span),
a card with no history, a card whose every row is a known fraud (no clean mean), amounts
five times the card's usual; whether the day comes at once, card by card or up to the
target, and the history in one part or two.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from test_prepared_features import DAY, awkward_days, columns, split

from trainer.features.cards import (
    CARD_FEATURE_COLUMNS,
    CARD_HISTORY_DAYS,
    CARD_INPUT_COLUMNS,
    SPAN_DAYS,
    card_features,
)
from trainer.features.from_history import features_of_transactions
from trainer.features.prepared import (
    PreparedParts,
    day_features,
    day_rows,
    features_of_day_frame,
    prepare_history,
)

START = pd.Timestamp(DAY).value
SPAN_NS = START - SPAN_DAYS * 86_400 * 10**9
NEW_CARD, FRAUD_CARD = 99, 0


def card_days(seed: int, text: bool = False) -> pd.DataFrame:
    """`awkward_days` over the cards' 50-day history, with high amounts, a card all frauds
    and a card first seen on DAY."""
    frame = awkward_days(seed, days=CARD_HISTORY_DAYS + 4, customers=10)
    rng = np.random.default_rng(seed + 100)
    high = rng.random(len(frame)) < 0.1
    frame.loc[high, "TX_AMOUNT"] = np.round(frame.loc[high, "TX_AMOUNT"] * 5 + 300, 2)
    frame.loc[frame["CUSTOMER_ID"] == FRAUD_CARD, "TX_FRAUD"] = 1
    on_day = (frame["TX_DATETIME"] >= pd.Timestamp(DAY)) & (
        frame["TX_DATETIME"] < pd.Timestamp(DAY) + pd.Timedelta(days=1))
    frame.loc[on_day & (np.arange(len(frame)) % 7 == 0), "CUSTOMER_ID"] = NEW_CARD
    if text:
        frame["TRANSACTION_ID"] = "tx-" + frame["TRANSACTION_ID"].astype(str)
        frame["CUSTOMER_ID"] = "card-" + frame["CUSTOMER_ID"].astype(str)
    return frame


def reference(transactions: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """`card_features` of `day`'s rows from the raw rows, by TRANSACTION_ID."""
    target = split(transactions, day)[1].index
    mask = transactions.index.isin(target)
    values = card_features({n: transactions[n].to_numpy() for n in CARD_INPUT_COLUMNS}, mask)
    return pd.DataFrame(values, index=transactions["TRANSACTION_ID"].to_numpy()[mask])


def assert_bit_equal(expected: pd.DataFrame, ids, got: dict[str, np.ndarray]) -> None:
    for name in CARD_FEATURE_COLUMNS:
        np.testing.assert_array_equal(got[name], expected.loc[ids, name].to_numpy(),
                                      err_msg=name, strict=True)


def prepared(history: pd.DataFrame):
    return prepare_history(columns(history), START, cards_from_ns=SPAN_NS)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("text", [False, True])
def test_a_whole_day_at_once_equals_the_raw_card_features(seed, text):
    transactions = card_days(seed, text)
    history, day = split(transactions, DAY)
    got = day_features(prepared(history), day_rows(columns(day)), np.arange(len(day)),
                       profiles=True, cards=True)
    expected = reference(transactions, DAY)
    assert_bit_equal(expected, day["TRANSACTION_ID"], got)
    # the awkward cases are there: high rows in spans, instants shared by a card's rows,
    # a card without history (no clean mean: ratio 1), a card of frauds only
    assert (expected[CARD_FEATURE_COLUMNS[0]] > 0).sum() > 10
    cards = day["CUSTOMER_ID"].astype(str).str.removeprefix("card-").astype(int).to_numpy()
    assert (got[CARD_FEATURE_COLUMNS[2]][cards == NEW_CARD] == 1).all()
    assert (cards == FRAUD_CARD).any() and (cards == NEW_CARD).any()
    assert day.duplicated(["CUSTOMER_ID", "TX_DATETIME"]).sum() >= 3


@pytest.mark.parametrize("text", [False, True])
def test_each_card_alone_and_the_day_so_far_give_the_same_card_features(text):
    transactions = card_days(7, text)
    history, day = split(transactions, DAY)
    day = day.sort_values(["TX_DATETIME", "TRANSACTION_ID"], ignore_index=True)
    parts = prepared(history)
    expected = reference(transactions, DAY)
    for i in range(len(day)):
        card = day.iloc[: i + 1]
        card = card[card["CUSTOMER_ID"] == day["CUSTOMER_ID"].iloc[i]]
        one = day_features(parts, day_rows(columns(card), one_card=True),
                           np.array([len(card) - 1]), profiles=True, cards=True)
        so_far = day_features(parts, day_rows(columns(day.iloc[: i + 1])), np.array([i]),
                              profiles=True, cards=True)
        assert_bit_equal(expected, day["TRANSACTION_ID"].iloc[[i]], one)
        assert_bit_equal(expected, day["TRANSACTION_ID"].iloc[[i]], so_far)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("cut_days", [1, 2, 13, 40])
def test_a_card_history_in_two_parts_equals_it_prepared_whole(seed, cut_days):
    # GIVEN the history cut at a midnight, the later part flagged from the earlier one
    transactions = card_days(seed, text=bool(seed))
    history, day = split(transactions, DAY)
    cut = DAY - dt.timedelta(days=cut_days)
    carried, last = split(history, cut)[0], history[history["TX_DATETIME"] >= pd.Timestamp(cut)]
    first = prepare_history(columns(carried), pd.Timestamp(cut).value, cards_from_ns=SPAN_NS)
    parts = PreparedParts((first, prepare_history(columns(last), START, cards_from_ns=SPAN_NS,
                                                  earlier=(first,))))
    # WHEN the day's card inputs read the two parts, THEN they are the raw reference's
    got = day_features(parts, day_rows(columns(day)), np.arange(len(day)), profiles=True,
                       cards=True)
    assert_bit_equal(reference(transactions, DAY), day["TRANSACTION_ID"], got)


def test_a_last_part_without_rows_adds_nothing():
    # a day with no transaction (none served, no file) as the part prepared at the roll
    transactions = card_days(3)
    times = transactions["TX_DATETIME"]
    cut = DAY - dt.timedelta(days=1)
    transactions = transactions[(times < pd.Timestamp(cut)) | (times >= pd.Timestamp(DAY))]
    history, day = split(transactions, DAY)
    first = prepare_history(columns(history), pd.Timestamp(cut).value, cards_from_ns=SPAN_NS)
    empty = prepare_history(columns(history.iloc[:0]), START, cards_from_ns=SPAN_NS,
                            earlier=(first,))
    got = day_features(PreparedParts((first, empty)), day_rows(columns(day)),
                       np.arange(len(day)), profiles=True, cards=True)
    assert_bit_equal(reference(transactions, DAY), day["TRANSACTION_ID"], got)


def test_a_day_frame_with_the_cards_equals_the_raw_history_frame():
    transactions = card_days(2, text=True)
    pd.testing.assert_frame_equal(
        features_of_day_frame(transactions, DAY, profiles=True, cards=True),
        features_of_transactions(transactions, DAY, profiles=True, cards=True))


def test_the_card_inputs_need_a_history_prepared_for_them():
    history, day = split(card_days(1), DAY)
    plain = prepare_history(columns(history), START)
    with pytest.raises(ValueError, match="prepared for them"):
        day_features(plain, day_rows(columns(day)), np.arange(len(day)), profiles=True,
                     cards=True)
    late = prepare_history(columns(history), START, cards_from_ns=START)
    with pytest.raises(ValueError, match="prepared for the span from"):
        day_features(late, day_rows(columns(day)), np.arange(len(day)), profiles=True,
                     cards=True)
