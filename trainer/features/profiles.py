"""Behaviour-profile model inputs beyond the handbook's 15, from the same per-entity windows.

The learner ``lgbm_mlp_profiles`` reads these 11 after the handbook's 15; they were chosen
on validation weeks by `bench.quality_features` (bench/QUALITY.md).

Every input here is a function of running aggregates per customer or terminal (counts,
sums, sums of squares, a first and a last time) over the windows `trainer.features.compute`
uses, plus the row itself, so the step computes them from the day's rows and the carried
state (`trainer.features.state`). This module holds their formulas, shared by both paths,
and the raw-history reference: it reads the same columns as ``compute``
(``INPUT_COLUMNS``) and orders ties the same way (time, then TRANSACTION_ID; a row's
customer window ends at the row itself). Window sums are exact double-double sums
(`trainer.features.exact_sums`) in both paths, so the two agree to the last bits.

With ``t`` the row's time, ``a`` its amount and ``DAY`` one day:

- ``CUSTOMER_ID_AMOUNT_RATIO_nDAY_WINDOW`` (n in 7, 30): ``a`` over the mean amount of the
  customer's *earlier* rows in ``(t - n DAY, t]`` (the row itself excluded); 1 when none,
  or when their mean is 0 (amounts of 0.00 occur).
- ``CUSTOMER_ID_AMOUNT_ZSCORE_nDAY_WINDOW``: ``(a - mean) / max(sd, 1)`` over the same
  earlier rows (population sd, from the sum and sum of squares); 0 when none. The floor of
  one currency unit keeps a card with constant amounts from producing huge values.
- ``CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX``: ``t`` minus the time of the customer's
  previous row, capped at 30 days (also when there is none in ``(t - 30 DAY, t]``); a
  carried "last transaction time" gives the same value after the cap.
- ``CUSTOMER_ID_NB_TX_1_OVER_30DAY``: the 1-day count over the 30-day count (both with
  the row), a burst indicator.
- ``CUSTOMER_ID_RISK_30DAY_WINDOW``: the fraud share of the customer's rows in the delayed
  window ``(t - 37 DAY, t - 7 DAY]``, 0 when none (needs customer fraud counts per delayed
  window in the state, as terminals have).
- ``TERMINAL_ID_AVG_AMOUNT_nDAY_WINDOW`` (n in 7, 30): mean amount of the terminal's rows
  in ``(t - (7 + n) DAY, t - 7 DAY]``, 0 when none.
- ``TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD``: ``t`` minus the time of the terminal's last
  fraud in ``(t - 37 DAY, t - 7 DAY]`` (a label is known 7 days after the transaction), in
  days, capped at 37 (also when there is none).
- ``TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD``: ``t`` minus the time of the terminal's
  *first* fraud in the same delayed window, in days, capped at 37. A compromised terminal
  defrauds for a fixed spell (28 days in the simulator) and its delayed risks stay high for
  a week after the spell ends; the age of the spell tells the two apart.

The handbook (Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud
Detection - Practical Handbook*, chapter 3.4 and the simulator's fraud scenarios in
chapter 3.2) motivates them: a compromised card spends five times its usual amount, and
a compromised terminal keeps producing frauds for weeks. `bench/QUALITY.md` says which of
them the default model uses, chosen on validation weeks.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from trainer.features.compute import entity_order, tie_keys, time_order
from trainer.features.exact_sums import prefix_sums, range_sums, rounded

NS_PER_SECOND = 10**9
NS_PER_DAY = 86_400 * NS_PER_SECOND
LABEL_DELAY_DAYS = 7
#: Longest look-back: the 30-day window delayed by the label delay.
LOOKBACK_DAYS = 30 + LABEL_DELAY_DAYS
PREVIOUS_TX_CAP_DAYS = 30
#: Smallest spread a z-score divides by, in currency units.
MIN_AMOUNT_SD = 1.0

CUSTOMER_PROFILE_WINDOWS_DAYS = (7, 30)
TERMINAL_AMOUNT_WINDOWS_DAYS = (7, 30)

#: Every candidate, by name; `bench.quality_features` groups and selects them.
EXTRA_FEATURE_COLUMNS: list[str] = [
    *[f"CUSTOMER_ID_AMOUNT_{kind}_{n}DAY_WINDOW"
      for n in CUSTOMER_PROFILE_WINDOWS_DAYS for kind in ("RATIO", "ZSCORE")],
    "CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX",
    "CUSTOMER_ID_NB_TX_1_OVER_30DAY",
    "CUSTOMER_ID_RISK_30DAY_WINDOW",
    *[f"TERMINAL_ID_AVG_AMOUNT_{n}DAY_WINDOW" for n in TERMINAL_AMOUNT_WINDOWS_DAYS],
    "TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD",
    "TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD",
]

#: Columns read from the transactions (the same as `trainer.features.compute`'s).
INPUT_COLUMNS = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT",
                 "TX_FRAUD"]


class EntityWindows:
    """The rows of one entity kind in (entity, time rank) order, and window bounds in it.

    A row's time rank is its position in (time, transaction id) order. Keys
    ``code * rows + rank`` are unique and sorted here, so a window of an entity is a
    range of positions found by two binary searches.
    """

    def __init__(self, entities: np.ndarray, by_time: np.ndarray, rank: np.ndarray,
                 sorted_times: np.ndarray, targets: np.ndarray):
        codes, uniques = pd.factorize(entities, sort=False)
        codes = codes.astype(np.int64) + 1  # a missing id (-1) is its own entity, 0
        rows = len(rank)
        keys = codes * rows + rank
        # A stable sort of the codes of the rows in time order gives key order; numpy
        # sorts integers of at most 16 bits stably in O(n) (radix sort).
        # entity_order's stable sort is O(n) for any number of entities (a radix sort).
        self.order = by_time[entity_order(codes[by_time], len(uniques) + 1)[0]]
        self._keys = keys[self.order]
        self._rows = rows
        self._sorted_times = sorted_times
        self._target_codes = codes[targets]
        #: Position of each target row itself.
        self.position = np.searchsorted(self._keys, keys[targets])

    def first_after(self, bound_ns: np.ndarray) -> np.ndarray:
        """Position of each target's entity's first row with a time strictly after `bound_ns`."""
        not_after = np.searchsorted(self._sorted_times, bound_ns, side="right")
        return np.searchsorted(self._keys, self._target_codes * self._rows + not_after)

    def prefix_sums(self, values: np.ndarray) -> np.ndarray:
        """Cumulative sums of `values` in this order, with a leading 0."""
        return np.concatenate(([0.0], np.cumsum(values[self.order])))

    def exact_prefix_sums(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``exact_sums.prefix_sums`` of `values` in this order, for `window_sums`."""
        return prefix_sums(values[self.order].astype(np.float64))

    @staticmethod
    def window_sums(sums: tuple[np.ndarray, np.ndarray], start: np.ndarray,
                    end: np.ndarray) -> np.ndarray:
        """Exact sums over the positions ``start:end`` from `exact_prefix_sums`, rounded once.

        One prefix sum serves every window over the same values.
        """
        return rounded(*range_sums(*sums, start, end))


def share(numerator: np.ndarray, count: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """``numerator / count``, `empty` where the count is 0."""
    return np.divide(numerator, count, out=np.full(len(count), empty), where=count > 0)


def amount_profile(amounts: np.ndarray, count: np.ndarray, total: np.ndarray,
                   squares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AMOUNT_RATIO and AMOUNT_ZSCORE of `amounts` against earlier rows' count and sums."""
    mean = share(total, count)
    variance = np.maximum(share(squares, count) - mean**2, 0.0)
    ratio = np.divide(amounts, mean, out=np.ones(len(amounts)), where=mean > 0)
    zscore = np.where(count > 0, (amounts - mean) / np.maximum(np.sqrt(variance),
                                                               MIN_AMOUNT_SD), 0.0)
    return ratio, zscore


def seconds_since(t: np.ndarray, previous: np.ndarray, known: np.ndarray) -> np.ndarray:
    """CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX: capped where the previous row is not `known`."""
    return np.where(known, t - previous, PREVIOUS_TX_CAP_DAYS * NS_PER_DAY) / NS_PER_SECOND


def days_since(t: np.ndarray, when: np.ndarray, known: np.ndarray) -> np.ndarray:
    """TERMINAL_ID_DAYS_SINCE_..._KNOWN_FRAUD: capped at the look-back where not `known`."""
    return np.where(known, t - when, LOOKBACK_DAYS * NS_PER_DAY) / NS_PER_DAY


def extra_features(columns: dict[str, np.ndarray], target: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate of ``EXTRA_FEATURE_COLUMNS`` for the rows selected by `target`.

    Args:
        columns: ``INPUT_COLUMNS`` as arrays of equal length (TX_DATETIME as datetime64 or
            int64 nanoseconds), covering the target rows and at least ``LOOKBACK_DAYS``
            days before them for exact values; transaction ids unique.
        target: Boolean mask of the rows to compute features for.

    Returns:
        Name -> float64 array, aligned with ``np.flatnonzero(target)``.
    """
    times = np.asarray(columns["TX_DATETIME"]).astype("datetime64[ns]").view(np.int64)
    ids = tie_keys(np.asarray(columns["TRANSACTION_ID"]))  # text ids (a bank's) too
    amounts = np.asarray(columns["TX_AMOUNT"], dtype=np.float64)
    frauds = np.asarray(columns["TX_FRAUD"], dtype=np.float64)
    # The share's history is already in (time, id) order: one check instead of a sort.
    by_time = time_order(times, ids)
    if by_time is None:
        by_time = np.arange(len(times))
    rank = np.empty(len(times), dtype=np.int64)
    rank[by_time] = np.arange(len(times))
    sorted_times = times[by_time]
    targets = np.flatnonzero(target)
    t, a = times[targets], amounts[targets]
    out: dict[str, np.ndarray] = {}

    customers = EntityWindows(np.asarray(columns["CUSTOMER_ID"]), by_time, rank, sorted_times,
                         targets)
    end = customers.position  # earlier rows of the customer: [start, end)
    amount_sums = customers.exact_prefix_sums(amounts)
    square_sums = customers.exact_prefix_sums(amounts**2)
    for n in CUSTOMER_PROFILE_WINDOWS_DAYS:
        start = customers.first_after(t - n * NS_PER_DAY)
        ratio, zscore = amount_profile(a, end - start,
                                       customers.window_sums(amount_sums, start, end),
                                       customers.window_sums(square_sums, start, end))
        out[f"CUSTOMER_ID_AMOUNT_RATIO_{n}DAY_WINDOW"] = ratio
        out[f"CUSTOMER_ID_AMOUNT_ZSCORE_{n}DAY_WINDOW"] = zscore
    start_30 = customers.first_after(t - 30 * NS_PER_DAY)
    previous_time = times[customers.order[np.maximum(end - 1, 0)]]
    out["CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"] = seconds_since(t, previous_time,
                                                                 end > start_30)
    start_1 = customers.first_after(t - NS_PER_DAY)
    out["CUSTOMER_ID_NB_TX_1_OVER_30DAY"] = (end - start_1 + 1) / (end - start_30 + 1)
    customer_frauds = customers.prefix_sums(frauds)
    delayed_end = customers.first_after(t - LABEL_DELAY_DAYS * NS_PER_DAY)
    delayed_start = customers.first_after(t - LOOKBACK_DAYS * NS_PER_DAY)
    out["CUSTOMER_ID_RISK_30DAY_WINDOW"] = share(
        customer_frauds[delayed_end] - customer_frauds[delayed_start],
        delayed_end - delayed_start)

    terminals = EntityWindows(np.asarray(columns["TERMINAL_ID"]), by_time, rank, sorted_times,
                         targets)
    delayed_end = terminals.first_after(t - LABEL_DELAY_DAYS * NS_PER_DAY)
    amount_sums = terminals.exact_prefix_sums(amounts)
    for n in TERMINAL_AMOUNT_WINDOWS_DAYS:
        start = terminals.first_after(t - (LABEL_DELAY_DAYS + n) * NS_PER_DAY)
        out[f"TERMINAL_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = share(
            terminals.window_sums(amount_sums, start, delayed_end), delayed_end - start)
    delayed_start = terminals.first_after(t - LOOKBACK_DAYS * NS_PER_DAY)
    # Position of the last fraud at or before each position (-1: none so far).
    fraud_positions = np.where(frauds[terminals.order] > 0, np.arange(len(times)), -1)
    last_fraud = np.concatenate(([-1], np.maximum.accumulate(fraud_positions)))[delayed_end]
    fraud_time = times[terminals.order[np.maximum(last_fraud, 0)]]
    out["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"] = days_since(t, fraud_time,
                                                           last_fraud >= delayed_start)
    # Position of the first fraud at or after each position (len: none from there on).
    ahead = np.where(frauds[terminals.order] > 0, np.arange(len(times)), len(times))
    next_fraud = np.concatenate((np.minimum.accumulate(ahead[::-1])[::-1], [len(times)]))
    first_fraud = next_fraud[delayed_start]
    first_time = times[terminals.order[np.minimum(first_fraud, len(times) - 1)]]
    out["TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"] = days_since(t, first_time,
                                                                 first_fraud < delayed_end)
    return out


def extra_features_of_day(transactions: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """TRANSACTION_ID and every candidate for the rows of `day`, sorted by TRANSACTION_ID.

    The row order of ``trainer.features.compute.compute_features``' result for the same
    `transactions` and `day`, so the two frames can be placed side by side.
    """
    missing = [name for name in INPUT_COLUMNS if name not in transactions.columns]
    if missing:
        raise ValueError(f"transactions for {day.isoformat()}: missing column(s) {missing}; "
                         f"extra features need {INPUT_COLUMNS}")
    columns = {name: transactions[name].to_numpy() for name in INPUT_COLUMNS}
    times = columns["TX_DATETIME"].astype("datetime64[ns]")
    start = np.datetime64(day.isoformat(), "ns")
    target = (times >= start) & (times < start + np.timedelta64(1, "D"))
    frame = pd.DataFrame({"TRANSACTION_ID": columns["TRANSACTION_ID"][target]})
    for name, values in extra_features(columns, target).items():
        frame[name] = values
    return frame.sort_values("TRANSACTION_ID", kind="stable", ignore_index=True)
