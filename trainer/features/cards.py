"""Card inputs over whole calendar days: high amounts and recent spending of a card.

The learner ``lgbm_mlp_cards_bounded`` reads these 3 after the profile inputs of
`trainer.features.profiles`; they were chosen on validation weeks by
`bench.quality_features` (bench/QUALITY.md, configuration
``all_spell_cardhighdays_cardrecent``). This module holds their formulas, shared by the
step's carried state (`trainer.features.state_cards`), the prepared history of
`fraudpipe serve` and arrival scoring (`trainer.features.prepared`) and the raw-history
reference `card_features`.

With ``t`` the row's time on day D, ``a`` its amount and ``DAY`` one day:

- the row's *clean mean* is the mean amount of its card's known-genuine rows in the
  delayed window ``(t - 37 DAY, t - 7 DAY]`` (where every label is known; 0 when none),
  and the row is *high* when ``a >= 3 * clean mean`` (and the mean is above 0). A genuine
  amount, N(mean, mean / 2), is above 3 means about once in 30,000 draws, a compromised
  card's x5 fraud four times in five;
- its *span* is its card's rows on the 13 whole days D-13 .. D-1 and on day D before ``t``
  (a time strictly earlier; labels not yet known).

- ``CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS``: the span's high rows, each flagged
  against its *own* clean mean; ``CUSTOMER_ID_HIGH_AMOUNT_SHARE_14CALENDAR_DAYS`` that
  count over the span's rows (0 when none): a card whose compromise has begun shows it
  before any label arrives.
- ``CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS``: the span's mean amount over the
  row's clean mean, 1 when either is missing.

These are `bench.quality_derived`'s ``HIGH_AMOUNT_DAYS_COLUMNS`` and
``RECENT_CLEAN_COLUMNS`` (a test checks the two agree). A row's flag needs its own delayed
window, so the reference needs ``CARD_HISTORY_DAYS`` days before the target rows (the
flags of D-13 .. D-1 read back to D-50), not the profiles' 37.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainer.features.profiles import (
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    NS_PER_DAY,
    EntityWindows,
    share,
)

#: Whole days before D in a row's span (D-13 .. D-1), and the span's name in days.
SPAN_DAYS = 13
#: An amount this many times the card's clean mean is high.
HIGH_AMOUNT_RATIO = 3.0
#: Days of raw history before a day that its card inputs read: the span's first day's
#: delayed window starts ``LOOKBACK_DAYS`` before it.
CARD_HISTORY_DAYS = SPAN_DAYS + LOOKBACK_DAYS

CARD_FEATURE_COLUMNS: list[str] = [
    "CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS",
    "CUSTOMER_ID_HIGH_AMOUNT_SHARE_14CALENDAR_DAYS",
    "CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS",
]

#: Columns the card inputs read from the transactions.
CARD_INPUT_COLUMNS = ["TX_DATETIME", "CUSTOMER_ID", "TX_AMOUNT", "TX_FRAUD"]


def high(amounts: np.ndarray, clean_mean: np.ndarray) -> np.ndarray:
    """Whether each amount is high against its own clean mean (never with no mean)."""
    return (clean_mean > 0) & (amounts >= HIGH_AMOUNT_RATIO * clean_mean)


def card_columns(clean_mean: np.ndarray, rows: np.ndarray, high_rows: np.ndarray,
                 spent: np.ndarray) -> dict[str, np.ndarray]:
    """The 3 inputs from each row's clean mean and its span's rows, high rows and amount."""
    recent_mean = share(spent, rows)
    return {
        "CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS": high_rows.astype(np.float64),
        "CUSTOMER_ID_HIGH_AMOUNT_SHARE_14CALENDAR_DAYS": share(
            high_rows.astype(np.float64), rows),
        "CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS": np.divide(
            recent_mean, clean_mean, out=np.ones(len(rows)),
            where=(rows > 0) & (clean_mean > 0)),
    }


def _time_windows(columns: dict[str, np.ndarray],
                  rows: np.ndarray) -> tuple[EntityWindows, np.ndarray, np.ndarray]:
    """The customer windows of `rows`, the times as int64 nanoseconds, and the query order.

    The windows' answers come in the query order: `rows` by (customer, time), so that each
    binary search reads the keys near the previous one's (in row order nearly every read
    missed the cache: 4x the CPU over 50 days of 100,000 rows). Both windows are bounded by
    time alone (rows of one instant are all in or all out), so ties need no order.
    """
    times = np.asarray(columns["TX_DATETIME"]).astype("datetime64[ns]").view(np.int64)
    customers = np.asarray(columns["CUSTOMER_ID"])
    by_time = np.argsort(times, kind="stable")
    rank = np.empty(len(times), np.int64)
    rank[by_time] = np.arange(len(times))
    in_time = rows[np.argsort(rank[rows], kind="stable")]
    codes = pd.factorize(customers, sort=False)[0]  # EntityWindows' numbering: its key order
    queries = in_time[np.argsort(codes[in_time], kind="stable")]
    return EntityWindows(customers, by_time, rank, times[by_time], queries), times, queries


def _in_row_order(queries: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` of the `queries`, in the order of `rows` (the same rows)."""
    out = np.empty(np.max(rows, initial=-1) + 1, dtype=values.dtype)
    out[queries] = values
    return out[rows]


def clean_means(columns: dict[str, np.ndarray], target: np.ndarray | None = None) -> np.ndarray:
    """The clean mean of every row, or of the `target` rows (aligned with their positions).

    `columns`: `CARD_INPUT_COLUMNS` as arrays of equal length.
    """
    rows = np.arange(len(columns["TX_DATETIME"])) if target is None else np.flatnonzero(target)
    windows, times, queries = _time_windows(columns, rows)
    return _in_row_order(queries, rows, _clean_means(windows, times[queries], columns))


def _clean_means(windows: EntityWindows, t: np.ndarray,
                 columns: dict[str, np.ndarray]) -> np.ndarray:
    """The clean means of the windows' queries, at their times `t`."""
    genuine = np.asarray(columns["TX_FRAUD"]) == 0
    amounts = np.asarray(columns["TX_AMOUNT"], dtype=np.float64)
    start = windows.first_after(t - LOOKBACK_DAYS * NS_PER_DAY)
    end = windows.first_after(t - LABEL_DELAY_DAYS * NS_PER_DAY)
    count = windows.prefix_sums(genuine.astype(np.float64))
    total = windows.window_sums(windows.exact_prefix_sums(np.where(genuine, amounts, 0.0)),
                                start, end)
    return share(total, (count[end] - count[start]).astype(np.int64))


def card_features(columns: dict[str, np.ndarray], target: np.ndarray) -> dict[str, np.ndarray]:
    """The ``CARD_FEATURE_COLUMNS`` of the rows selected by `target`, from raw history.

    Args:
        columns: `CARD_INPUT_COLUMNS` as arrays of equal length (TX_DATETIME as datetime64
            or int64 nanoseconds), covering the target rows and at least
            ``CARD_HISTORY_DAYS`` days before them for exact values.
        target: Boolean mask of the rows to compute the inputs for.

    Returns:
        Name -> float64 array, aligned with ``np.flatnonzero(target)``.
    """
    every = np.arange(len(target))
    windows, times, queries = _time_windows(columns, every)
    amounts = np.asarray(columns["TX_AMOUNT"], dtype=np.float64)
    t = times[queries]
    mean = _in_row_order(queries, every, _clean_means(windows, t, columns))
    rows = np.flatnonzero(target)
    first_day = t - t % NS_PER_DAY - SPAN_DAYS * NS_PER_DAY
    start = _in_row_order(queries, every, windows.first_after(first_day - 1))[rows]
    end = _in_row_order(queries, every, windows.first_after(t - 1))[rows]
    flags = windows.prefix_sums(high(amounts, mean).astype(np.float64))
    spent = windows.window_sums(windows.exact_prefix_sums(amounts), start, end)
    return card_columns(mean[rows], end - start, (flags[end] - flags[start]).astype(np.int64),
                        spent)
