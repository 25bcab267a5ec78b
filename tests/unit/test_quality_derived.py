"""The candidate inputs `bench.quality_derived` derives for validation experiments."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from bench.quality_derived import (
    NO_KNOWN_FRAUD_DAYS,
    calendar_days_since,
    with_fraud_amounts,
)

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
