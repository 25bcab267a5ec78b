"""The candidate inputs `bench.quality_derived` derives for validation experiments."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from bench.quality_derived import (
    NO_KNOWN_FRAUD_DAYS,
    calendar_days_since,
    with_card_amounts,
    with_fraud_amounts,
    with_terminal_after_fraud,
)
from trainer.features.profiles import LOOKBACK_DAYS

NS_PER_SECOND = 10**9


def _ns(text: str) -> int:
    return int(pd.Timestamp(text).value)


def test_calendar_days_count_midnights_not_elapsed_days():
    # 23:00 on day 0 to 01:00 on day 28 is 27.08 elapsed days but 28 calendar days
    later = np.array([_ns("2018-05-29 01:00"), _ns("2018-05-29 23:00"), _ns("2018-05-29 12:00")])
    earlier = np.array([_ns("2018-05-01 23:00"), _ns("2018-05-01 01:00"), _ns("2018-05-29 11:00")])
    elapsed_days = (later - earlier) / (86_400 * NS_PER_SECOND)
    assert elapsed_days[0] < 27.1 and elapsed_days[1] > 28.9
    np.testing.assert_array_equal(calendar_days_since(later, elapsed_days), [28, 28, 0])
    # no known fraud (the profile input's cap of 37) stays apart from every real value
    assert calendar_days_since(later[:1], np.array([37.0]))[0] == NO_KNOWN_FRAUD_DAYS


def test_fraud_amounts_average_the_terminals_delayed_window_only():
    day = dt.date(2018, 5, 20)
    rows = pd.DataFrame({
        "TX_DATETIME": pd.to_datetime(["2018-05-01 10:00", "2018-05-10 10:00",
                                       "2018-05-12 10:00", "2018-05-15 10:00",
                                       "2018-05-20 10:00", "2018-05-20 11:00"]),
        "TERMINAL_ID": [1, 1, 1, 1, 1, 2],
        "TX_AMOUNT": [500.0, 40.0, 60.0, 900.0, 10.0, 10.0],
        "TX_FRAUD": [1, 1, 1, 1, 0, 0],
    })
    out = with_fraud_amounts({day: rows})[day]
    # the row of 05-20 10:00 at terminal 1: 7-day window (05-06 10:00, 05-13 10:00] holds
    # the frauds of 40 and 60; the 30-day window adds 500 (05-01); 900 (05-15) is not yet known
    assert out["TERMINAL_ID_AVG_FRAUD_AMOUNT_7DAY_WINDOW"].iloc[4] == 50.0
    assert out["TERMINAL_ID_AVG_FRAUD_AMOUNT_30DAY_WINDOW"].iloc[4] == 200.0
    # a terminal without known frauds gets 0
    assert out["TERMINAL_ID_AVG_FRAUD_AMOUNT_30DAY_WINDOW"].iloc[5] == 0.0


def _by_day(rows: pd.DataFrame) -> dict:
    days = rows["TX_DATETIME"].dt.date
    return {d: rows[days == d].reset_index(drop=True) for d in sorted(set(days))}


def test_card_amounts_compare_with_the_cards_known_genuine_rows_only():
    rows = pd.DataFrame({
        "TX_DATETIME": pd.to_datetime(["2018-04-13 10:00", "2018-05-01 10:00",
                                       "2018-05-05 10:00", "2018-05-08 10:00",
                                       "2018-05-13 10:00", "2018-05-15 10:00",
                                       "2018-05-20 10:00", "2018-05-20 11:00"]),
        "CUSTOMER_ID": [1, 1, 1, 1, 1, 1, 1, 2],
        "TX_AMOUNT": [60.0, 20.0, 40.0, 150.0, 30.0, 1000.0, 90.0, 10.0],
        "TX_FRAUD": [0, 0, 0, 1, 0, 0, 0, 0],
    })
    out = with_card_amounts(_by_day(rows))
    row = out[dt.date(2018, 5, 20)].iloc[0]  # card 1, 05-20 10:00, amount 90
    # 30-day delayed window (04-13 10:00, 05-13 10:00]: genuine 20, 40, 30 (05-13 10:00 is
    # on its closed end, 04-13 10:00 just outside); the x5 fraud of 150 is left out, and
    # 1000 (05-15) is not yet known
    clean = np.array([20.0, 40.0, 30.0])
    assert row["CUSTOMER_ID_CLEAN_AMOUNT_RATIO_30DAY_WINDOW"] == pytest.approx(90 / 30)
    assert row["CUSTOMER_ID_CLEAN_AMOUNT_ZSCORE_30DAY_WINDOW"] == pytest.approx(
        (90 - 30) / clean.std())
    # with the fraud in the baseline the ratio would be 90 / 70
    assert row["CUSTOMER_ID_CLEAN_AMOUNT_RATIO_30DAY_WINDOW"] != pytest.approx(90 / 70)
    # 60-day delayed window adds 60 (04-13 10:00)
    longer = np.array([60.0, 20.0, 40.0, 30.0])
    assert row["CUSTOMER_ID_CLEAN_AMOUNT_RATIO_60DAY_WINDOW"] == pytest.approx(90 / 37.5)
    assert row["CUSTOMER_ID_CLEAN_AMOUNT_ZSCORE_60DAY_WINDOW"] == pytest.approx(
        (90 - 37.5) / longer.std())
    # the card's known fraud: amount over its mean (150), and 12 days since it
    assert row["CUSTOMER_ID_AMOUNT_OVER_FRAUD_AMOUNT_30DAY_WINDOW"] == pytest.approx(0.6)
    assert row["CUSTOMER_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"] == pytest.approx(12.0)
    # a card with no earlier rows: neutral profile, no known fraud
    other = out[dt.date(2018, 5, 20)].iloc[1]
    assert other["CUSTOMER_ID_CLEAN_AMOUNT_RATIO_30DAY_WINDOW"] == 1.0
    assert other["CUSTOMER_ID_CLEAN_AMOUNT_ZSCORE_30DAY_WINDOW"] == 0.0
    assert other["CUSTOMER_ID_AMOUNT_OVER_FRAUD_AMOUNT_30DAY_WINDOW"] == 0.0
    assert other["CUSTOMER_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"] == LOOKBACK_DAYS
    # the fraud of 05-08 10:00 is not yet known 5 days later, known exactly 7 days later
    since = "CUSTOMER_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"
    assert out[dt.date(2018, 5, 13)].iloc[0][since] == LOOKBACK_DAYS
    assert out[dt.date(2018, 5, 15)].iloc[0][since] == pytest.approx(7.0)


def test_high_amounts_count_the_cards_recent_rows_far_above_its_genuine_mean():
    times = [f"2018-04-{d:02d} 12:00" for d in range(1, 21)] + [
        "2018-05-18 12:00", "2018-05-19 12:00", "2018-05-20 12:00", "2018-06-05 12:00"]
    rows = pd.DataFrame({
        "TX_DATETIME": pd.to_datetime(times),
        "CUSTOMER_ID": 3,
        # twenty genuine 10.00s, then 50.00 (5 times the card's mean: high), 29.00 (not)
        "TX_AMOUNT": [10.0] * 20 + [50.0, 29.0, 11.0, 12.0],
        "TX_FRAUD": 0,
    })
    out = with_card_amounts(_by_day(rows))
    assert out[dt.date(2018, 5, 18)].iloc[0]["CUSTOMER_ID_CLEAN_AMOUNT_RATIO_60DAY_WINDOW"] == 5.0
    today = out[dt.date(2018, 5, 20)].iloc[0]
    # earlier rows in (05-06 12:00, 05-20 12:00): 50.00 (high) and 29.00 (2.9 times, not)
    assert today["CUSTOMER_ID_NB_HIGH_AMOUNT_14DAY_WINDOW"] == 1
    assert today["CUSTOMER_ID_HIGH_AMOUNT_SHARE_14DAY_WINDOW"] == 0.5
    # the row itself is not counted, and 14 days on the high row has left the window
    assert out[dt.date(2018, 5, 18)].iloc[0]["CUSTOMER_ID_NB_HIGH_AMOUNT_14DAY_WINDOW"] == 0
    later = out[dt.date(2018, 6, 5)].iloc[0]
    assert later["CUSTOMER_ID_NB_HIGH_AMOUNT_14DAY_WINDOW"] == 0
    assert later["CUSTOMER_ID_HIGH_AMOUNT_SHARE_14DAY_WINDOW"] == 0.0


def test_calendar_day_high_amounts_count_whole_days_and_earlier_rows_today():
    genuine = [f"2018-04-{d:02d} 12:00" for d in range(1, 21)]
    rows = pd.DataFrame({
        "TX_DATETIME": pd.to_datetime([
            *genuine, "2018-04-10 13:00", "2018-03-20 12:00",
            "2018-05-06 20:00", "2018-05-07 01:00", "2018-05-15 12:00",
            "2018-05-20 09:00", "2018-05-20 12:00", "2018-05-20 15:00", "2018-05-20 16:00"]),
        "CUSTOMER_ID": [4] * 28 + [5],
        # twenty genuine 10.00s, a known fraud of 1000.00 and a genuine 400.00 older than
        # every 30-day window below, then 50.00 on D-14, 40.00 on D-13 (both x4-5 frauds),
        # 20.00 (genuine), and on D = 05-20: 60.00, the row looked at (10.00), a later
        # 70.00; card 5 has no history
        "TX_AMOUNT": [10.0] * 20 + [1000.0, 400.0, 50.0, 40.0, 20.0, 60.0, 10.0, 70.0, 10.0],
        "TX_FRAUD": [0] * 20 + [1, 0, 1, 1, 0, 1, 0, 1, 0],
    })
    out = with_card_amounts(_by_day(rows))
    nb, share = ("CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS",
                 "CUSTOMER_ID_HIGH_AMOUNT_SHARE_14CALENDAR_DAYS")
    recent = "CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS"
    # the 40.00 of D-13 is high against its clean 30-day mean of 10.00: the known fraud of
    # 1000.00 is left out (with it the mean would be 57.14 and 40.00 not high), and so is
    # the 400.00 of 03-20, in the 60-day window only (there the mean would be 28.57)
    assert out[dt.date(2018, 5, 7)].iloc[0]["CUSTOMER_ID_CLEAN_AMOUNT_RATIO_30DAY_WINDOW"] == 4.0
    today = out[dt.date(2018, 5, 20)]
    looked_at = today.iloc[1]  # 05-20 12:00
    # span: D-13 (05-07 01:00, outside the elapsed 13 days), 05-15, and 05-20 09:00; not
    # D-14 (05-06 20:00, inside the elapsed 14 days), not the row itself, not 15:00
    assert looked_at[nb] == 2
    assert looked_at[share] == pytest.approx(2 / 3)
    # their mean (40 + 20 + 60) / 3 over the clean mean 10.00 of (04-13 12:00, 05-13 12:00]:
    # the frauds of 05-06 and 05-07 are in that window and left out
    assert looked_at[recent] == pytest.approx(4.0)
    # the 15:00 row adds the earlier rows of today, the 12:00 row (not high) among them
    assert today.iloc[2][nb] == 2
    assert today.iloc[2][share] == pytest.approx(2 / 4)
    assert today.iloc[2][recent] == pytest.approx(130 / 4 / 10)
    # the first row of 05-20 sees D-13 and 05-15 only
    assert today.iloc[0][nb] == 1 and today.iloc[0][share] == pytest.approx(1 / 2)
    # a card with no history: nothing counted, a neutral ratio
    assert today.iloc[3][nb] == 0 and today.iloc[3][share] == 0.0
    assert today.iloc[3][recent] == 1.0
    # the elapsed 14 days with the same 30-day flag also count D-14's 20:00 row (high)
    assert looked_at["CUSTOMER_ID_NB_HIGH_AMOUNT_30CLEAN_14DAY_WINDOW"] == 3
    assert looked_at["CUSTOMER_ID_HIGH_AMOUNT_30CLEAN_SHARE_14DAY_WINDOW"] == pytest.approx(3 / 4)


def test_genuine_rows_after_a_terminals_known_frauds_tell_a_one_off_from_a_spell():
    # GIVEN terminal 1 met one fraud on 06-01 and went on with genuine rows on 06-02 and
    # 06-03; terminal 2 was defrauded on 06-01 and 06-02 (a spell); terminal 3 never
    day = pd.Timestamp("2018-06-01")
    rows = pd.DataFrame([
        (day + pd.Timedelta(hours=10), 1, 1), (day + pd.Timedelta(days=1), 1, 0),
        (day + pd.Timedelta(days=2), 1, 0), (day + pd.Timedelta(hours=11), 2, 1),
        (day + pd.Timedelta(days=1, hours=1), 2, 1),
        *[(day + pd.Timedelta(days=9, hours=12), terminal, 0) for terminal in (1, 2, 3)],
    ], columns=["TX_DATETIME", "TERMINAL_ID", "TX_FRAUD"])
    frames = {d: g.reset_index(drop=True) for d, g in rows.groupby(rows["TX_DATETIME"].dt.date)}
    # WHEN
    out = with_terminal_after_fraud(frames)
    # THEN on 06-10 12:00 (labels known up to 06-03 12:00) terminal 1 shows 2 genuine rows
    # after its fraud, terminal 2 none, terminal 3 no known fraud at all (-1)
    last = out[dt.date(2018, 6, 10)]
    assert last["TERMINAL_ID_NB_GENUINE_AFTER_LAST_KNOWN_FRAUD"].tolist() == [2.0, 0.0, -1.0]
    assert last["TERMINAL_ID_NB_GENUINE_AFTER_FIRST_KNOWN_FRAUD"].tolist() == [2.0, 0.0, -1.0]
    # and before any label is known every row is -1
    assert (out[dt.date(2018, 6, 1)]["TERMINAL_ID_NB_GENUINE_AFTER_LAST_KNOWN_FRAUD"] == -1).all()
