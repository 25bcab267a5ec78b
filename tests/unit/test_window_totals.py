"""Window totals to the bit: each row's sums as if totalled alone, in any row order.

`window_totals` totals the rows in (entity, time) order and moves the results back to
row order. Each row's double-double must still be the exact sequence of additions of its
own window (the target day's range, the edge day's range, then the carried full days),
so the features and the state's bytes cannot change with the order it works in. The
reference here finds every row's ranges by a scan of the day's index and adds them in
row order; the data has entities with a single row, ties on window edges and target days
given in random row order.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from test_feature_state import START, day_columns, random_days, read

from trainer.features import state_advance
from trainer.features.compute import NS_PER_DAY
from trainer.features.exact_sums import dd_add, range_sums
from trainer.features.state_advance import advance
from trainer.features.state_windows import DayIndex, searchsorted_ascending


def _ranges(index: DayIndex, codes: np.ndarray, bounds: np.ndarray,
            upto: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row, by a scan of `index`: its entity's rows up to its bound, or after it."""
    code_at = index.keys // index.rows
    time_at = index.times[index.keys % index.rows]
    start, end = np.empty(len(codes), np.int64), np.empty(len(codes), np.int64)
    for row, (code, bound) in enumerate(zip(codes, bounds, strict=True)):
        mine = np.flatnonzero(code_at == code)
        block = (index.block_start[code], index.block_start[code + 1])
        assert not len(mine) or (mine[0], mine[-1] + 1) == block
        inside = mine[time_at[mine] <= bound] if upto else mine[time_at[mine] > bound]
        start[row] = block[0] if upto else (inside[0] if len(inside) else block[1])
        end[row] = block[0] + len(inside) if upto else block[1]
    return start, end


def _reference(kind, sums, day, days, codes, k, target_codes, t, ranks, floats, *_):
    """Each row's totals per window (its ranges found alone, added in row order), and the
    ranges per day back."""

    def index(d: dt.date, times: np.ndarray, day_codes: np.ndarray) -> DayIndex:
        values = {name: v for name, v in kind.row_values(days[d]).items()
                  if name in floats + kind.ints}
        return DayIndex(day_codes, k, times, values, floats)

    own_day = day - dt.timedelta(days=kind.delay_days)
    if kind.delay_days == 0:
        today = index(day, ranks, target_codes)
        own = _ranges(today, target_codes, ranks, upto=True)
    elif own_day in days:
        today = index(own_day, days[own_day]["TX_DATETIME"], codes[own_day])
        own = _ranges(today, target_codes, t - kind.delay_days * NS_PER_DAY, upto=True)
    else:
        today = None
    ranges = {kind.delay_days: own} if today is not None else {}
    out = {}
    for n in kind.windows:
        parts = [(today, own)] if today is not None else []
        edge_day = day - dt.timedelta(days=kind.delay_days + n)
        if edge_day in days:
            edge = index(edge_day, days[edge_day]["TX_DATETIME"], codes[edge_day])
            bounds = t - (kind.delay_days + n) * NS_PER_DAY
            ranges[kind.delay_days + n] = _ranges(edge, target_codes, bounds, upto=False)
            parts.append((edge, ranges[kind.delay_days + n]))
        count = np.zeros(len(t), np.int64)
        ints = {name: np.zeros(len(t), np.int64) for name in kind.ints}
        dd = {name: (np.zeros(len(t)), np.zeros(len(t))) for name in floats}
        for part, (start, end) in parts:
            count += end - start
            for name in kind.ints:
                ints[name] += part.prefix[name][end] - part.prefix[name][start]
            for name in floats:
                hi, lo = part.prefix[name]
                dd[name] = dd_add(*dd[name], *range_sums(hi, lo, start, end))
        if n in kind.carried:
            count += sums.counts[n][target_codes]
            for name in kind.ints:
                ints[name] += sums.ints[name, n][target_codes]
            for name in floats:
                hi, lo = sums.floats[name, n]
                dd[name] = dd_add(*dd[name], hi[target_codes], lo[target_codes])
        out[n] = (count, ints, dd)
    return out, ranges


@pytest.mark.parametrize("shuffle", [False, True])
def test_window_totals_equal_each_rows_own_sums_to_the_bit(shuffle):
    # GIVEN 45 days with ties on window edges and many entities of one or two rows
    frame = random_days(11, 45, 40, customers=400, terminals=300)
    columns = day_columns(frame, shuffle=shuffle)
    last = START + dt.timedelta(days=44)
    state = advance(None, last - dt.timedelta(days=1),
                    read(columns, None, last - dt.timedelta(days=1)), profiles=True).state
    calls = []
    real = state_advance.window_totals

    def record(*args):
        windows = real(*args)
        calls.append((args, windows))
        return windows

    # WHEN the last day's windows are totalled from the carried state
    state_advance.window_totals = record
    try:
        advance(state, last, read(columns, state, last), profiles=True)
    finally:
        state_advance.window_totals = real
    # THEN every row's count, integer sums and double-doubles are its own, to the bit
    assert len(calls) == 3
    one_row = 0
    for args, windows in calls:
        target_codes = args[6]
        one_row += int((np.bincount(target_codes) == 1).sum())
        totals, ranges = _reference(*args)
        for n, (count, ints, dd) in totals.items():
            got = windows.totals[n]
            np.testing.assert_array_equal(got.count, count)
            for name, values in ints.items():
                np.testing.assert_array_equal(got.ints[name], values)
            for name, (hi, lo) in dd.items():
                assert got.floats[name][0].tobytes() == hi.tobytes(), (n, name)
                assert got.floats[name][1].tobytes() == lo.tobytes(), (n, name)
        for back, (_, (start, end)) in windows.spans.items():  # the profiles' rows
            np.testing.assert_array_equal(start, ranges[back][0], err_msg=str(back))
            np.testing.assert_array_equal(end, ranges[back][1], err_msg=str(back))
    assert one_row > 10  # entities with a single row today were among them


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("sort_queries", [True, False])
def test_searchsorted_by_merging_is_numpy_s_binary_search(side, sort_queries):
    # ties within and between both arrays, queries before, among and after the entries
    rng = np.random.default_rng(3)
    entries = np.sort(rng.integers(0, 50, 300))
    queries = rng.integers(-5, 55, 400)
    if sort_queries:
        queries = np.sort(queries)
    for a, v in ((entries, queries), (entries[:0], queries), (entries, queries[:1]),
                 (entries, queries[:0])):
        np.testing.assert_array_equal(searchsorted_ascending(a, v, side),
                                      np.searchsorted(a, v, side=side))


@pytest.mark.parametrize("in_time_order", [True, False])
def test_a_day_s_own_rows_before_their_time_by_runs_equal_the_search(in_time_order):
    # GIVEN a day of rows with many ties in time, within an entity and across entities
    # (entities 20 and 21 only at instant 30: one's last time is the next one's first),
    # entities with one row, and entities with none (first, inside and last codes)
    rng = np.random.default_rng(5)
    k = 40
    times = np.sort(rng.integers(0, 60, 500)) * 1_000
    codes = rng.choice(np.setdiff1d(np.arange(2, k - 3), [5, 20, 21]), size=len(times))
    codes[times == 30_000] = rng.choice([20, 21], size=int(np.sum(times == 30_000)))
    codes[100] = 5
    if not in_time_order:
        rows = rng.permutation(len(times))
        times, codes = times[rows], codes[rows]
    for day_codes, day_times in ((codes, times), (codes[:1], times[:1]), (codes[:0], times[:0])):
        index = DayIndex(day_codes, k, day_times, {}, ())
        # THEN each row's entity's rows strictly before its time are those the search finds
        expected = index.upto(day_codes, index.not_after(day_times - 1))
        np.testing.assert_array_equal(index.block_start[day_codes], expected[0])
        np.testing.assert_array_equal(index.own_time_starts(day_times),
                                      expected[1][index.row_of])
