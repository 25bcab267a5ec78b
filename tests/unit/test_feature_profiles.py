"""The candidate extra features against a row-by-row reference written from their definitions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from trainer.features.compute import compute_features
from trainer.features.profiles import (
    EXTRA_FEATURE_COLUMNS,
    MIN_AMOUNT_SD,
    extra_features,
    extra_features_of_day,
)

DAY = dt.date(2018, 5, 20)
SECOND = pd.Timedelta(seconds=1)
DAYS = pd.Timedelta(days=1)


def transactions_with_edges(seed: int, days: int = 40, per_day: int = 40) -> pd.DataFrame:
    """Few entities, many rows on equal instants and exactly whole days apart."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    first = pd.Timestamp(DAY) - (days - 1) * DAYS
    seconds = rng.integers(0, days * 86_400, n)
    snapped = rng.random(n) < 0.5  # onto a 6-hour grid: ties and exact n-day edges
    seconds[snapped] = seconds[snapped] // 21_600 * 21_600
    return pd.DataFrame({
        "TRANSACTION_ID": rng.permutation(n).astype("int64"),
        "TX_DATETIME": (first + pd.to_timedelta(seconds, unit="s")).astype("datetime64[ns]"),
        "CUSTOMER_ID": rng.integers(0, 12, n).astype("int64"),
        "TERMINAL_ID": rng.integers(0, 8, n).astype("int64"),
        # Some amounts of 0.00, as the simulator makes: an earlier mean can be 0.
        "TX_AMOUNT": np.where(rng.random(n) < 0.2, 0.0, np.round(rng.uniform(1, 200, n), 2)),
        "TX_FRAUD": (rng.random(n) < 0.15).astype("int64"),
    })


def reference(transactions: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Each definition of `trainer.features.profiles`, one row at a time."""
    frame = transactions.sort_values(["TX_DATETIME", "TRANSACTION_ID"], ignore_index=True)
    rows = []
    for row in frame.itertuples():
        t = row.TX_DATETIME
        if t.date() != day:
            continue
        mine = frame[frame.CUSTOMER_ID == row.CUSTOMER_ID]
        earlier = mine[(mine.index < row.Index)]
        out = {"TRANSACTION_ID": row.TRANSACTION_ID}
        for n in (7, 30):
            amounts = earlier[earlier.TX_DATETIME > t - n * DAYS].TX_AMOUNT.to_numpy()
            if len(amounts):
                mean, sd = amounts.mean(), amounts.std()
                out[f"CUSTOMER_ID_AMOUNT_RATIO_{n}DAY_WINDOW"] = (
                    row.TX_AMOUNT / mean if mean > 0 else 1.0)
                out[f"CUSTOMER_ID_AMOUNT_ZSCORE_{n}DAY_WINDOW"] = (
                    (row.TX_AMOUNT - mean) / max(sd, MIN_AMOUNT_SD))
            else:
                out[f"CUSTOMER_ID_AMOUNT_RATIO_{n}DAY_WINDOW"] = 1.0
                out[f"CUSTOMER_ID_AMOUNT_ZSCORE_{n}DAY_WINDOW"] = 0.0
        recent = earlier[earlier.TX_DATETIME > t - 30 * DAYS]
        gap = t - recent.TX_DATETIME.iloc[-1] if len(recent) else 30 * DAYS
        out["CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"] = gap / SECOND
        out["CUSTOMER_ID_NB_TX_1_OVER_30DAY"] = (
            (earlier.TX_DATETIME > t - DAYS).sum() + 1) / (len(recent) + 1)
        delayed = mine[(mine.TX_DATETIME > t - 37 * DAYS) & (mine.TX_DATETIME <= t - 7 * DAYS)]
        out["CUSTOMER_ID_RISK_30DAY_WINDOW"] = delayed.TX_FRAUD.mean() if len(delayed) else 0.0
        at_terminal = frame[frame.TERMINAL_ID == row.TERMINAL_ID]
        for n in (7, 30):
            window = at_terminal[(at_terminal.TX_DATETIME > t - (7 + n) * DAYS)
                                 & (at_terminal.TX_DATETIME <= t - 7 * DAYS)]
            out[f"TERMINAL_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = (
                window.TX_AMOUNT.mean() if len(window) else 0.0)
        known = at_terminal[(at_terminal.TX_DATETIME > t - 37 * DAYS)
                            & (at_terminal.TX_DATETIME <= t - 7 * DAYS)
                            & (at_terminal.TX_FRAUD == 1)]
        out["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"] = (
            (t - known.TX_DATETIME.max()) / DAYS if len(known) else 37.0)
        out["TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"] = (
            (t - known.TX_DATETIME.min()) / DAYS if len(known) else 37.0)
        rows.append(out)
    return pd.DataFrame(rows).sort_values("TRANSACTION_ID", ignore_index=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_row_by_row_reference_with_ties_and_edges(seed):
    # GIVEN 40 days of rows, half of them on a 6-hour grid (equal instants, n-day edges)
    transactions = transactions_with_edges(seed)
    # WHEN
    fast = extra_features_of_day(transactions, DAY)
    slow = reference(transactions, DAY)
    # THEN every candidate matches, in compute_features' row order
    assert list(fast.columns) == ["TRANSACTION_ID", *EXTRA_FEATURE_COLUMNS]
    assert len(fast) == len(slow) > 20
    pd.testing.assert_frame_equal(fast, slow[fast.columns], check_exact=False, rtol=1e-9,
                                  atol=1e-9)
    assert fast["TRANSACTION_ID"].tolist() == compute_features(
        transactions, DAY)["TRANSACTION_ID"].tolist()
    # and the edge cases occurred: caps, empty windows and known frauds
    assert (fast["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"] < 37).any()
    assert (fast["TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"]
            > fast["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"]).any()
    assert (fast["CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"] == 0).any()
    assert np.isfinite(fast[EXTRA_FEATURE_COLUMNS].to_numpy()).all()


def test_first_days_of_a_chain_use_the_caps():
    # GIVEN one customer's first two transactions ever, in the same second
    start = pd.Timestamp(DAY)
    transactions = pd.DataFrame({
        "TRANSACTION_ID": [7, 3], "TX_DATETIME": [start, start],
        "CUSTOMER_ID": [1, 1], "TERMINAL_ID": [5, 5], "TX_AMOUNT": [30.0, 90.0],
        "TX_FRAUD": [0, 1]})
    # WHEN
    out = extra_features_of_day(transactions, DAY).set_index("TRANSACTION_ID")
    # THEN id 3 comes first: no history, the caps; id 7 sees id 3 only
    assert out.loc[3, "CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"] == 30 * 86_400
    assert out.loc[3, "CUSTOMER_ID_AMOUNT_RATIO_30DAY_WINDOW"] == 1.0
    assert out.loc[7, "CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"] == 0.0
    assert out.loc[7, "CUSTOMER_ID_AMOUNT_RATIO_30DAY_WINDOW"] == pytest.approx(30 / 90)
    assert out.loc[7, "CUSTOMER_ID_AMOUNT_ZSCORE_30DAY_WINDOW"] == pytest.approx(-60.0)
    # and the fraud of the same day is not known yet
    assert (out["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"] == 37.0).all()


def test_entry_point_aligns_with_the_target_rows():
    transactions = transactions_with_edges(3, days=10, per_day=20)
    columns = {name: transactions[name].to_numpy() for name in transactions.columns}
    target = transactions["TX_DATETIME"].dt.date.to_numpy() == DAY
    computed = extra_features(columns, target)
    by_id = extra_features_of_day(transactions, DAY).set_index("TRANSACTION_ID")
    ids = transactions["TRANSACTION_ID"].to_numpy()[target]
    for name in EXTRA_FEATURE_COLUMNS:
        np.testing.assert_array_equal(computed[name], by_id.loc[ids, name].to_numpy())


def test_an_earlier_mean_of_zero_gives_a_ratio_of_one():
    # GIVEN a card whose only earlier amount is 0.00 (the simulator makes such amounts)
    start = pd.Timestamp(DAY)
    transactions = pd.DataFrame({
        "TRANSACTION_ID": [1, 2], "TX_DATETIME": [start, start + SECOND],
        "CUSTOMER_ID": [1, 1], "TERMINAL_ID": [5, 6], "TX_AMOUNT": [0.0, 40.0],
        "TX_FRAUD": [0, 0]})
    # WHEN
    out = extra_features_of_day(transactions, DAY).set_index("TRANSACTION_ID")
    # THEN the ratio is 1 (no spending profile yet), not infinite; the z-score uses the floor
    assert out.loc[2, "CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW"] == 1.0
    assert out.loc[2, "CUSTOMER_ID_AMOUNT_ZSCORE_7DAY_WINDOW"] == 40.0 / MIN_AMOUNT_SD
