"""Per-entity sums of the carried feature state: one day's sums, and rolling them.

Entities of every source (the state's ids, then each day's) get one numbering
(`entity_codes`); a day's rows become per-entity counts, sums and times (`day_sums`); the
sums of the days entering a window are added and those leaving subtracted (`roll_sums`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from trainer.features.exact_sums import dd_add, dd_sub
from trainer.features.state import (
    NO_FIRST,
    NO_TIME,
    DayColumns,
    EntitySums,
    Kind,
    window_moves,
)


def entity_codes(ids_of_sources: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Codes of every source's ids in one numbering, and the unique ids in code order.

    A missing id (None, NaN) is an entity of its own, as in the raw path.
    """
    joined_type = np.result_type(*ids_of_sources) if ids_of_sources else np.dtype(np.int64)
    dense = _dense_int_codes(ids_of_sources) if joined_type == np.int64 else None
    if dense is not None:
        return dense
    lengths = [len(ids) for ids in ids_of_sources]
    joined = np.concatenate(ids_of_sources) if ids_of_sources else np.array([], np.int64)
    codes, uniques = pd.factorize(joined, use_na_sentinel=False)
    codes, uniques = codes.astype(np.int64, copy=False), np.asarray(uniques)
    return np.split(codes, np.cumsum(lengths)[:-1]), uniques


def _dense_int_codes(
        ids_of_sources: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray] | None:
    """``entity_codes`` of int64 ids in a narrow range, by table lookup instead of hashing.

    The state's ids (the first source, unique) keep codes 0..len-1 in order; ids not among
    them get the next codes, in id order. Ids spread wider than a few times their count
    (hashes, say) return None: the hash table is then cheaper than the lookup table. Each
    source is looked up on its own: joining them first cost a copy of every day's ids.
    """
    sources = [ids.astype(np.int64, copy=False) for ids in ids_of_sources]
    filled = [ids for ids in sources if len(ids)]
    if not filled:
        return None
    low = min(int(ids.min()) for ids in filled)
    high = max(int(ids.max()) for ids in filled)
    if high - low > 4 * sum(len(ids) for ids in sources) + 1024:
        return None
    first = sources[0]
    table = np.full(high - low + 1, -1, np.int64)
    table[first - low] = np.arange(len(first))
    codes = [table[ids - low] for ids in sources]
    # Look up again only the ids that were new: most of a day's entities are the state's.
    missing = [np.flatnonzero(day_codes < 0) for day_codes in codes]
    new = np.unique(np.concatenate([np.array([], np.int64)] + [
        ids[rows] for ids, rows in zip(sources, missing, strict=True)]))
    table[new - low] = np.arange(len(first), len(first) + len(new))
    for ids, day_codes, rows in zip(sources, codes, missing, strict=True):
        day_codes[rows] = table[ids[rows] - low]
    return codes, np.concatenate([first, new])


def day_sums(kind: Kind, day: DayColumns, codes: np.ndarray, k: int) -> dict:
    """Per-entity count, sums and last time of one day's rows."""
    values = kind.row_values(day)
    sums: dict = {"count": np.bincount(codes, minlength=k).astype(np.int64, copy=False)}
    for name in kind.floats:
        sums[name] = np.bincount(codes, weights=values[name], minlength=k)
    for name in kind.ints:
        sums[name] = np.bincount(codes, weights=values[name], minlength=k).astype(np.int64)
    times = day["TX_DATETIME"]
    mask = day["TX_FRAUD"] > 0 if kind.last_time_of_frauds else slice(None)
    last = np.full(k, NO_TIME, np.int64)
    np.maximum.at(last, codes[mask], times[mask])
    sums["last_time"] = last
    if kind.first_frauds:
        first = np.full(k, NO_FIRST, np.int64)
        frauds = day["TX_FRAUD"] > 0
        np.minimum.at(first, codes[frauds], times[frauds])
        sums["first_fraud"] = first
    return sums


def roll_sums(kind: Kind, sums: EntitySums, old: dt.date | None, new: dt.date,
          sums_of_days: Mapping[dt.date, dict | None]) -> EntitySums:
    """`sums` (padded to the current numbering) moved from alignment `old` to `new`.

    Entities whose windows are now empty stay, with zero sums: the caller drops them.
    """
    for n in kind.carried:
        entering, leaving = window_moves(kind, n, old, new)
        for days, sign in ((entering, 1), (leaving, -1)):
            for d in days:
                add = sums_of_days.get(d)
                if add is None:
                    continue
                sums.counts[n] += sign * add["count"]
                for name in kind.floats:
                    hi, lo = sums.floats[name, n]
                    step = dd_add if sign > 0 else dd_sub
                    sums.floats[name, n] = step(hi, lo, add[name], np.zeros_like(hi))
                for name in kind.ints:
                    sums.ints[name, n] += sign * add[name]
        empty = sums.counts[n] == 0
        for name in kind.floats:  # no drift: an empty window sums to exactly 0
            hi, lo = sums.floats[name, n]
            hi[empty], lo[empty] = 0.0, 0.0
    longest = kind.carried[-1]
    entering, _ = window_moves(kind, longest, old, new)
    positions, times = [sums.first_frauds[0]], [sums.first_frauds[1]]
    for d in entering:
        add = sums_of_days.get(d)
        if add is not None:
            np.maximum(sums.last_time, add["last_time"], out=sums.last_time)
            if kind.first_frauds:
                found = np.flatnonzero(add["first_fraud"] != NO_FIRST)
                positions.append(found)
                times.append(add["first_fraud"][found])
    start = day_start_ns(kind.full_days(longest, new)[0])
    sums.last_time[sums.last_time < start] = NO_TIME
    if kind.first_frauds:
        position, time = np.concatenate(positions), np.concatenate(times)
        held = time >= start
        order = np.argsort(position[held], kind="stable")
        sums.first_frauds = (position[held][order], time[held][order])
    return sums


def day_start_ns(day: dt.date) -> int:
    """Midnight of `day` in int64 nanoseconds (the TX_DATETIME unit)."""
    return int(pd.Timestamp(day).as_unit("ns").value)
