"""Each target row's window totals: the carried state plus the partial boundary days.

A boundary day is indexed once by (entity, time) with prefix sums (`DayIndex`), so the
part of it inside each row's window is a range; `window_totals` adds those ranges to the
state's full days, and `window_features` turns the totals into the handbook's features.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trainer.features.compute import (
    NS_PER_DAY,
    entity_order,
)
from trainer.features.exact_sums import dd_add_into, prefix_sums, rounded
from trainer.features.profiles import (
    share,
)
from trainer.features.state import (
    CUSTOMERS,
    NO_FIRST,
    NO_TIME,
    DayColumns,
    EntitySums,
    Kind,
)


def searchsorted_ascending(a: np.ndarray, v: np.ndarray,
                           side: Literal["left", "right"]) -> np.ndarray:
    """``np.searchsorted(a, v, side)``, by merging when `v` is sorted too.

    numpy's stable sort is a timsort: it finds the two sorted runs of ``a`` and ``v`` joined
    and merges them in one pass, where the binary search costs a few dozen comparisons per
    value (a third of the time at 100k values). A value's position in the merge, less the
    values of `v` before it, counts the entries of `a` before it. Unsorted `v` (rows not in
    time order) takes the binary search.
    """
    if len(v) < 2 or np.any(v[1:] < v[:-1]):
        return np.searchsorted(a, v, side=side)
    # Equal keys keep their order in a stable sort: `v` first puts each value before a's
    # equal entries ("left"), `a` first after them ("right").
    if side == "left":
        from_v = np.argsort(np.concatenate((v, a)), kind="stable") < len(v)
    else:
        from_v = np.argsort(np.concatenate((a, v)), kind="stable") >= len(a)
    return np.flatnonzero(from_v) - np.arange(len(v))


class DayIndex:
    """One day's rows of one entity kind, sorted by (entity, time), with prefix sums.

    ``times`` may be any int64 order key: nanoseconds for a boundary day, the rank in
    (time, transaction id) order for the day being computed.
    """

    def __init__(self, codes: np.ndarray, k: int, times: np.ndarray,
                 values: Mapping[str, np.ndarray], floats: Iterable[str]):
        by_time = None
        if len(times) > 1 and np.any(times[1:] < times[:-1]):  # ingest writes days in order
            by_time = np.argsort(times, kind="stable")
        self.times = times if by_time is None else times[by_time]
        sorted_codes = codes if by_time is None else codes[by_time]
        order, self.keys = entity_order(sorted_codes, k)
        rows = order if by_time is None else by_time[order]
        #: The day's row at each position.
        self.row_of = rows
        self.rows = max(len(times), 1)
        # Each entity's rows are block_start[code]:block_start[code + 1] of the sorted rows.
        self.block_start = np.zeros(k + 1, np.int64)
        np.cumsum(np.bincount(sorted_codes, minlength=k), out=self.block_start[1:])
        self.prefix: dict[str, Any] = {}
        for name, column in values.items():
            ordered = column[rows]
            if name in floats:
                self.prefix[name] = prefix_sums(ordered.astype(np.float64, copy=False))
            else:
                self.prefix[name] = np.concatenate(([0], np.cumsum(ordered, dtype=np.int64)))

    def not_after(self, bounds: np.ndarray) -> np.ndarray:
        """Per bound, the number of the day's rows with a time at most the bound.

        Asked in the target rows' order (a day is written in time order, so its bounds are
        sorted and the search is a merge, `searchsorted_ascending`).
        """
        return searchsorted_ascending(self.times, bounds, side="right")

    def after(self, codes: np.ndarray,
              not_after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query, the positions of the entity's first row after its bound and past its last.

        The queries come sorted by (code, bound), `not_after` from `not_after` on the bounds:
        the search is then a merge, and the gathers are in order.
        """
        first = searchsorted_ascending(self.keys, codes * self.rows + not_after, side="left")
        return first, self.block_start[codes + 1]

    def upto(self, codes: np.ndarray,
             not_after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query, the positions of the entity's first row and of its first row after."""
        first_after, _ = self.after(codes, not_after)
        return self.block_start[codes], first_after

    def own_time_starts(self, times: np.ndarray) -> np.ndarray:
        """Per position (`row_of`), its entity's first position at its time, for the own day.

        That is `upto` the row's time less one, when `times` are the ones indexed. Found
        by a scan of the sorted rows for the starts of each run of one (entity, time),
        where a search per row reads them in random order.
        """
        n = len(self.row_of)
        run_starts = np.ones(n, bool)
        ordered = times[self.row_of]
        np.not_equal(ordered[1:], ordered[:-1], out=run_starts[1:])
        block_starts = self.block_start[:-1]
        run_starts[block_starts[block_starts < n]] = True
        return np.maximum.accumulate(np.where(run_starts, np.arange(n), 0))

    def time_at(self, columns: DayColumns, positions: np.ndarray, valid: np.ndarray,
                missing: int) -> np.ndarray:
        """TX_DATETIME of the rows at `positions` where `valid`, `missing` elsewhere."""
        times = np.full(len(positions), missing, np.int64)
        times[valid] = columns["TX_DATETIME"][self.row_of[positions[valid]]]
        return times

    def fraud_times(self, columns: DayColumns,
                    span: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per query, the times of the first and last fraud in its span (NO_FIRST/NO_TIME)."""
        start, end = span
        n = len(self.row_of)
        if not n:
            return np.full(len(start), NO_FIRST), np.full(len(start), NO_TIME)
        fraud = columns["TX_FRAUD"][self.row_of] > 0
        at = np.arange(n)
        last_upto = np.maximum.accumulate(np.where(fraud, at, -1))
        next_from = np.concatenate((np.minimum.accumulate(np.where(fraud, at, n)[::-1])[::-1],
                                    [n]))
        first = next_from[start]
        last = last_upto[np.maximum(end - 1, 0)]
        return (self.time_at(columns, first, first < end, NO_FIRST),
                self.time_at(columns, last, (end > start) & (last >= start), NO_TIME))


class Totals:
    """Window totals per target row: counts, integer sums and double-double sums."""

    def __init__(self, kind: Kind, rows: int, floats: tuple[str, ...]):
        self.count = np.zeros(rows, np.int64)
        self.ints = {name: np.zeros(rows, np.int64) for name in kind.ints}
        self.floats = {name: (np.zeros(rows), np.zeros(rows)) for name in floats}
        self.kind = kind

    def add_range(self, index: DayIndex | None, span: tuple[np.ndarray, np.ndarray]) -> None:
        """Add each row's range `span` of a boundary day's rows (nothing for a missing day)."""
        if index is None:
            return
        start, end = span
        self.count += end - start
        for name in self.kind.ints:
            prefix = index.prefix[name]
            self.ints[name] += prefix[end] - prefix[start]
        for name in self.floats:
            hi, lo = index.prefix[name]
            # range_sums(hi, lo, start, end) added, in the gathered arrays: few new arrays.
            range_hi, range_lo = hi[end], lo[end]
            start_hi, start_lo = hi[start], lo[start]
            dd_add_into((range_hi, range_lo), np.negative(start_hi, out=start_hi),
                        np.negative(start_lo, out=start_lo))
            dd_add_into(self.floats[name], range_hi, range_lo)

    def copy(self) -> Totals:
        """Independent totals with the same values (the own day's part, shared by windows)."""
        out = Totals(self.kind, 0, ())
        out.count = self.count.copy()
        out.ints = {name: v.copy() for name, v in self.ints.items()}
        out.floats = {name: (hi.copy(), lo.copy()) for name, (hi, lo) in self.floats.items()}
        return out

    def add_state(self, sums: EntitySums, codes: np.ndarray, n: int) -> None:
        """Add the carried sums of the n-day window's full days of each row's entity."""
        self.count += sums.counts[n][codes]
        for name in self.kind.ints:
            self.ints[name] += sums.ints[name, n][codes]
        for name in self.floats:
            hi, lo = sums.floats[name, n]
            dd_add_into(self.floats[name], hi[codes], lo[codes])

    def in_row_order(self, order: np.ndarray) -> Totals:
        """These totals, computed for the rows ``order``, moved to row order."""
        self.count = in_row_order(order, self.count)
        self.ints = {name: in_row_order(order, v) for name, v in self.ints.items()}
        self.floats = {name: (in_row_order(order, hi), in_row_order(order, lo))
                       for name, (hi, lo) in self.floats.items()}
        return self


def _entity_time_order(codes: np.ndarray, k: int, ranks: np.ndarray) -> np.ndarray:
    """The rows sorted by (code, rank).

    `ranks` is a permutation, so this is a radix sort by code of the rows in rank order:
    O(n), where a comparison sort of 1M keys costs ~0.1 s.
    """
    by_rank = np.empty_like(ranks)
    by_rank[ranks] = np.arange(len(ranks))
    return by_rank[entity_order(codes[by_rank], k)[0]]


def in_row_order(order: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` of the rows ``order``, moved to row order (``result[order] == values``)."""
    result = np.empty_like(values)
    result[order] = values
    return result


@dataclass
class KindWindows:
    """One entity kind's windows for the target rows: totals, and the partial days' rows."""

    totals: dict[int, Totals]
    """Per window length, each target row's totals over its whole window."""
    spans: dict[int, tuple[DayIndex, tuple[np.ndarray, np.ndarray]]]
    """Per day back from the target day (the own day: the kind's delay), that boundary
    day's index and each target row's span of rows inside the window."""
    sums: EntitySums
    """The state in the numbering of `codes` (entities with empty windows kept)."""
    codes: np.ndarray
    """Each target row's entity code."""


def window_totals(kind: Kind, sums: EntitySums, day: dt.date,
                   days: Mapping[dt.date, DayColumns], codes: Mapping[dt.date, np.ndarray],
                   k: int, target_codes: np.ndarray, t: np.ndarray, ranks: np.ndarray,
                   floats: tuple[str, ...], keep_spans: Iterable[int] = ()) -> KindWindows:
    """Per window length, each target row's totals over its whole window.

    Only the double-double sums named in `floats` are totalled (the others are carried in
    the state for the profiles, and cost a third of the work here). The spans of the
    boundary days `keep_spans` (days back from `day`) are kept for the profiles; the other
    days' indexes are dropped as soon as their window is totalled (at 1M rows each holds
    ~60 MB).
    """

    def values(columns: DayColumns) -> dict[str, np.ndarray]:
        wanted = floats + kind.ints
        return {name: v for name, v in kind.row_values(columns).items() if name in wanted}

    def index(back: int) -> DayIndex | None:  # every boundary day serves one window
        d = day - dt.timedelta(days=back)
        columns = days.get(d)
        return None if columns is None else DayIndex(
            codes[d], k, columns["TX_DATETIME"], values(columns), floats)

    totals = {}
    spans = {}
    rows = len(t)
    # Every row is totalled in (entity, time) order and put back in row order once at the
    # end: in that order each boundary day's prefix sums and the state's sums are read at
    # ascending positions, where in row order (random by entity) nearly every read misses
    # the cache. Each row's additions are the same either way, so are its totals' bits.
    order: np.ndarray

    def not_after(index: DayIndex, bounds: np.ndarray) -> np.ndarray:
        return index.not_after(bounds)[order]  # bounds searched in row (time) order

    today: DayIndex | None
    own: tuple[np.ndarray, np.ndarray] | None
    if kind.delay_days == 0:
        # The target day indexed by (entity, rank) is that order already, and each row's
        # own range runs from its entity's first row to itself (its position, inclusive).
        today = DayIndex(target_codes, k, ranks, values(days[day]), floats)
        order = today.row_of
        by_entity = target_codes[order]
        own = today.block_start[by_entity], np.arange(1, rows + 1)
    else:
        order = _entity_time_order(target_codes, k, ranks)
        by_entity = target_codes[order]
        delayed = index(kind.delay_days)
        shift = kind.delay_days * NS_PER_DAY
        own = (delayed.upto(by_entity, not_after(delayed, t - shift)) if delayed is not None
               else None)
        today = delayed
    if today is not None and own is not None and kind.delay_days in keep_spans:
        spans[kind.delay_days] = (today, own)
    # Every window starts with the same own-day range: total it once, and give each window
    # a copy (the same additions, so the same bits, for a third of the work).
    own_part = Totals(kind, rows, floats)
    own_part.add_range(today, own if own is not None else (np.zeros(rows, np.int64),) * 2)
    for n in kind.windows:
        # The last window takes the own-day part itself, the others a copy.
        window = own_part if n == kind.windows[-1] else own_part.copy()
        back = kind.delay_days + n
        edge = index(back)
        if edge is not None:
            span = edge.after(by_entity, not_after(edge, t - back * NS_PER_DAY))
            window.add_range(edge, span)
            if back in keep_spans:
                spans[back] = (edge, span)
        if n in kind.carried:
            window.add_state(sums, by_entity, n)
        totals[n] = window.in_row_order(order)
    for kept, _ in spans.values():
        kept.prefix.clear()  # the profiles read the kept days' rows, not their sums
    spans = {back: (kept, (in_row_order(order, span[0]), in_row_order(order, span[1])))
             for back, (kept, span) in spans.items()}
    return KindWindows(totals, spans, sums, target_codes)


def window_features(kind: Kind, totals: dict[int, Totals], out: dict[str, np.ndarray]) -> None:
    """The handbook's window features of one entity kind."""
    for n, window in totals.items():
        count = window.count
        if kind is CUSTOMERS:
            out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count.astype(float)
            out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = rounded(
                *window.floats["AMOUNT"]) / count
        else:
            out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count.astype(float)
            out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = share(
                window.ints["NB_FRAUD"].astype(float), count)
