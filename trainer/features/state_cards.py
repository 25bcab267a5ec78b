"""The 3 card inputs (`trainer.features.cards`) from the carried state.

What the card inputs' chains carry beyond the profiles (`state.kinds(True)`):

- the delayed customers (kind ``D``) also sum their genuine rows' amounts
  (``GENUINE_AMOUNT``), rolled like their fraud count; a row's clean mean is that sum over
  its window's rows minus its frauds, both totalled as the profiles' fraud share is;
- per customer, kind ``R``: its rows and amount over the whole days D-13 .. D-1. Day D-1
  enters and D-14 leaves, days a step reads anyway; there is no partial day, the rows of
  day D before ``t`` come from day D itself;
- `HighRows`: per customer and day of D-13 .. D-1, its high rows. Each day's flags are
  computed by the step of that day (its rows' clean means are its own features' inputs)
  and kept while the day is in a later span. A rebuild computes the span's flags from the
  raw days back to ``D - CARD_HISTORY_DAYS`` instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np

from trainer.features.cards import (
    CARD_HISTORY_DAYS,
    CARD_INPUT_COLUMNS,
    SPAN_DAYS,
    card_columns,
    clean_means,
    high,
)
from trainer.features.compute import NS_PER_DAY
from trainer.features.exact_sums import dd_add, range_sums, rounded
from trainer.features.profiles import share
from trainer.features.state import RECENT_CUSTOMERS, DayColumns, EntitySums, HighRows
from trainer.features.state_sums import entity_codes
from trainer.features.state_windows import DayIndex, Totals, in_row_order

#: The double-double sums the card inputs add to the delayed customers' totals.
CARD_FLOATS = ("GENUINE_AMOUNT",)


def epoch_day(day: dt.date) -> int:
    """`day` in days since 1970-01-01 (`HighRows.days`)."""
    return (day - dt.date(1970, 1, 1)).days


def card_inputs(delayed: Totals, recent: EntitySums, recent_codes: np.ndarray,
                previous: HighRows, day: dt.date,
                target: DayColumns) -> tuple[dict[str, np.ndarray], HighRows]:
    """The card inputs of `day`'s rows, and the high rows of D-12 .. D for the next state.

    Args:
        delayed: each target row's delayed 30-day totals, with `CARD_FLOATS`.
        recent: the ``R`` sums aligned to `day` (whole days D-13 .. D-1).
        recent_codes: each target row's customer code in `recent`'s numbering.
        previous: the high rows of D-13 .. D-1 (older pairs are ignored).
        day: the day of the target rows.
        target: the day's columns.
    """
    t, a = target["TX_DATETIME"], target["TX_AMOUNT"]
    clean_count = delayed.count - delayed.ints["NB_FRAUD"]
    clean_mean = share(rounded(*delayed.floats["GENUINE_AMOUNT"]), clean_count)
    flags = high(a, clean_mean)
    k = len(recent.ids)
    # Day D's rows strictly before each row, by time (rows of one instant do not count).
    # Each row is computed in the index's (card, time) order and put back in row order at
    # the end: the state's sums and the prefix sums are then read at ascending positions,
    # where in row order nearly every read misses the cache. The operations on each row
    # are the same either way, so are its inputs' bits.
    today = DayIndex(recent_codes, k, t, {"AMOUNT": a, "HIGH": flags}, ("AMOUNT",))
    order = today.row_of
    by_card = recent_codes[order]
    start, end = today.block_start[by_card], today.own_time_starts(t)
    n = RECENT_CUSTOMERS.windows[0]
    rows = recent.counts[n][by_card] + (end - start)
    hi, lo = recent.floats["AMOUNT", n]
    today_hi, today_lo = today.prefix["AMOUNT"]
    spent = rounded(*dd_add(hi[by_card], lo[by_card], *range_sums(today_hi, today_lo, start, end)))
    first = epoch_day(day) - SPAN_DAYS
    span = previous.days >= first
    # The span's cards in `recent`'s numbering (which the day's rows have already): every
    # card with a high row on D-13 .. D-1 has rows there. A card it lacks gets a code past
    # `recent`'s, which no row of the day reads.
    (_, span_codes), uniques = entity_codes([recent.ids, previous.ids[span]])
    earlier = np.bincount(span_codes, weights=previous.counts[span],
                          minlength=len(uniques)).astype(np.int64)
    high_rows = earlier[by_card] + today.prefix["HIGH"][end] - today.prefix["HIGH"][start]
    columns = {name: in_row_order(order, values) for name, values in card_columns(
        clean_mean[order], rows, high_rows, spent).items()}
    todays = np.bincount(recent_codes[flags], minlength=k).astype(np.int64, copy=False)
    found = np.flatnonzero(todays)
    kept = previous.days > first
    return columns, HighRows(
        ids=np.concatenate([previous.ids[kept], recent.ids[found]]),
        days=np.concatenate([previous.days[kept], np.full(len(found), epoch_day(day))]),
        counts=np.concatenate([previous.counts[kept], todays[found]]))


def rebuilt_high_rows(days: Mapping[dt.date, DayColumns], day: dt.date) -> HighRows:
    """The high rows of D-13 .. D-1 from the raw days before `day` (those in `days`)."""
    back = [day - dt.timedelta(days=b) for b in range(CARD_HISTORY_DAYS, 0, -1)]
    present = [days[d] for d in back if d in days]
    if not present:
        return empty_high_rows()
    columns = {name: np.concatenate([c[name] for c in present]) for name in CARD_INPUT_COLUMNS}
    offset = epoch_day(day) - SPAN_DAYS
    row_days = columns["TX_DATETIME"] // NS_PER_DAY
    span = np.flatnonzero(row_days >= offset)  # only the span's rows need their flags
    flags = span[high(columns["TX_AMOUNT"][span], clean_means(columns, row_days >= offset))]
    (codes,), ids = entity_codes([columns["CUSTOMER_ID"][flags]])
    keys = codes * SPAN_DAYS + (row_days[flags] - offset)
    counts = np.bincount(keys, minlength=len(ids) * SPAN_DAYS)
    found = np.flatnonzero(counts)
    return HighRows(ids=ids[found // SPAN_DAYS], days=found % SPAN_DAYS + offset,
                    counts=counts[found].astype(np.int64))


def empty_high_rows() -> HighRows:
    """No high rows."""
    return HighRows(np.array([], np.int64), np.array([], np.int64), np.array([], np.int64))
