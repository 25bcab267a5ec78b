"""The 11 profile inputs (`trainer.features.profiles`) from the carried state's windows.

One function per entity kind turns its `KindWindows` (totals and the kept boundary days'
rows) into that kind's profile columns; `PROFILE_SPANS` says which boundary days each
kind keeps for them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np

from trainer.features.compute import (
    TERMINAL_DELAY_DAYS,
)
from trainer.features.exact_sums import dd_sub, rounded
from trainer.features.profiles import (
    CUSTOMER_PROFILE_WINDOWS_DAYS,
    LOOKBACK_DAYS,
    TERMINAL_AMOUNT_WINDOWS_DAYS,
    amount_profile,
    days_since,
    seconds_since,
    share,
)
from trainer.features.state import (
    CUSTOMERS,
    DELAYED_CUSTOMERS,
    NO_FIRST,
    NO_TIME,
    TERMINALS,
    DayColumns,
)
from trainer.features.state_windows import (
    KindWindows,
)


def _customer_profiles(customers: KindWindows, days: Mapping[dt.date, DayColumns],
                       day: dt.date, target: DayColumns) -> dict[str, np.ndarray]:
    """The customers' profile inputs of `trainer.features.profiles` from their windows.

    Sums over "earlier rows" are the window totals (which end at the row itself) minus the
    row. The previous row: earlier today, else the state's full days, else day D-30's rows
    after t - 30 days (the row itself is the last of its span today).
    """
    t, a = target["TX_DATETIME"], target["TX_AMOUNT"]
    zeros = np.zeros(len(t))
    out: dict[str, np.ndarray] = {}
    for n in CUSTOMER_PROFILE_WINDOWS_DAYS:
        window = customers.totals[n]
        ratio, zscore = amount_profile(
            a, window.count - 1, rounded(*dd_sub(*window.floats["AMOUNT"], a, zeros)),
            rounded(*dd_sub(*window.floats["AMOUNT_SQ"], a * a, zeros)))
        out[f"CUSTOMER_ID_AMOUNT_RATIO_{n}DAY_WINDOW"] = ratio
        out[f"CUSTOMER_ID_AMOUNT_ZSCORE_{n}DAY_WINDOW"] = zscore
    today, (start, end) = customers.spans[0]
    previous = today.time_at(target, end - 2, end - 2 >= start, NO_TIME)
    missing = previous == NO_TIME
    previous[missing] = customers.sums.last_time[customers.codes[missing]]
    if 30 in customers.spans:
        edge, (first, last) = customers.spans[30]
        older = edge.time_at(days[day - dt.timedelta(days=30)], last - 1, last > first, NO_TIME)
        missing = previous == NO_TIME
        previous[missing] = older[missing]
    out["CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"] = seconds_since(t, previous,
                                                                 previous != NO_TIME)
    out["CUSTOMER_ID_NB_TX_1_OVER_30DAY"] = (customers.totals[1].count
                                             / customers.totals[30].count)
    return out


def _delayed_customer_profiles(delayed: KindWindows, days: Mapping[dt.date, DayColumns],
                               day: dt.date, target: DayColumns) -> dict[str, np.ndarray]:
    """A customer's known fraud share over the delayed 30-day window."""
    window = delayed.totals[30]
    return {"CUSTOMER_ID_RISK_30DAY_WINDOW": share(window.ints["NB_FRAUD"].astype(float),
                                                   window.count)}


def _terminal_profiles(terminals: KindWindows, days: Mapping[dt.date, DayColumns],
                       day: dt.date, target: DayColumns) -> dict[str, np.ndarray]:
    """The terminals' profile inputs: delayed amount means, first and last known fraud.

    Frauds in (t - 37 days, t - 7 days] are on day D-37 after its bound, in the state's
    full days D-36..D-8, or on day D-7 up to its bound: a first fraud is looked for oldest
    part first, a last one newest part first.
    """
    t = target["TX_DATETIME"]
    out: dict[str, np.ndarray] = {}
    for n in TERMINAL_AMOUNT_WINDOWS_DAYS:
        window = terminals.totals[n]
        out[f"TERMINAL_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = share(rounded(*window.floats["AMOUNT"]),
                                                             window.count)
    codes = terminals.codes
    first = terminals.sums.first_fraud_time()[codes]
    last = terminals.sums.last_time[codes].copy()
    for back in (TERMINAL_DELAY_DAYS, LOOKBACK_DAYS):
        if back not in terminals.spans:
            continue
        index, span = terminals.spans[back]
        edge_first, edge_last = index.fraud_times(days[day - dt.timedelta(days=back)], span)
        if back == TERMINAL_DELAY_DAYS:  # the newest part
            first = np.where(first == NO_FIRST, edge_first, first)
            last = np.where(edge_last != NO_TIME, edge_last, last)
        else:  # the oldest part
            first = np.where(edge_first != NO_FIRST, edge_first, first)
            last = np.where(last == NO_TIME, edge_last, last)
    out["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"] = days_since(t, last, last != NO_TIME)
    out["TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"] = days_since(t, first, first != NO_FIRST)
    return out


#: Per kind, the boundary days (days back from D) whose rows its profile inputs read.
PROFILE_SPANS = {CUSTOMERS.prefix: (0, 30), DELAYED_CUSTOMERS.prefix: (),
                 TERMINALS.prefix: (TERMINAL_DELAY_DAYS, LOOKBACK_DAYS)}

#: Per kind, its profile inputs from its windows (`advance(..., profiles=True)`).
PROFILES_OF = {CUSTOMERS.prefix: _customer_profiles,
                DELAYED_CUSTOMERS.prefix: _delayed_customer_profiles,
                TERMINALS.prefix: _terminal_profiles}
