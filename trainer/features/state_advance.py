"""`advance`: the state aligned to a day and that day's features, from the state before it.

It checks each day's rows, rolls every entity kind's sums, totals the windows of the day's
rows, and builds the features frame (with the profile inputs when asked).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainer.errors import DatasetValidationError
from trainer.features.cards import CARD_FEATURE_COLUMNS
from trainer.features.compute import (
    FEATURE_COLUMNS,
    INPUT_COLUMNS,
    NS_PER_DAY,
    calendar_columns,
    features_frame,
    time_order,
)
from trainer.features.profiles import (
    EXTRA_FEATURE_COLUMNS,
)
from trainer.features.state import (
    DELAYED_CARDS,
    DELAYED_CUSTOMERS,
    FEATURE_FLOATS,
    PROFILE_FLOATS,
    RECENT_CUSTOMERS,
    DayColumns,
    EntitySums,
    FeatureState,
    Kind,
    held_days,
    kinds,
    rolls_from,
    window_moves,
)
from trainer.features.state_cards import CARD_FLOATS, card_inputs, rebuilt_high_rows
from trainer.features.state_profiles import PROFILE_SPANS, PROFILES_OF
from trainer.features.state_sums import day_start_ns, day_sums, entity_codes, roll_sums
from trainer.features.state_windows import (
    Totals,
    window_features,
    window_totals,
)


def _check_day(day: dt.date, columns: DayColumns) -> None:
    """Each day's file must hold that day's rows only: the state is kept per file."""
    times = columns["TX_DATETIME"]
    if not len(times):
        return
    start = day_start_ns(day)
    if times.min() >= start and times.max() < start + NS_PER_DAY:
        return  # the usual case, found without a mask of the day's size
    outside = (times < start) | (times >= start + NS_PER_DAY)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DatasetValidationError(
            f"dataset {day.isoformat()}: row {row}: TX_DATETIME "
            f"{pd.Timestamp(int(times[row]))} is not on {day.isoformat()}; expected every "
            f"row of a day's dataset on that day")


@dataclass
class Advanced:
    """What `advance` returns."""

    state: FeatureState
    features: pd.DataFrame


def advance(state: FeatureState | None, day: dt.date,
            days: Mapping[dt.date, DayColumns | None], *,
            inputs: Mapping[str, str] | None = None, profiles: bool = False,
            cards: bool = False) -> Advanced:
    """The state aligned to `day` and `day`'s features.

    Args:
        state: the state aligned to an earlier day, or None to build from `days` alone.
        day: the day whose features to compute; ``days[day]`` must hold its rows.
        days: the columns of every day of ``days_to_read(state, day)``; None (or absent)
            for a day with no dataset.
        inputs: for the new state's ``inputs`` record, each held day's dataset sha256.
        profiles: also compute the 11 ``EXTRA_FEATURE_COLUMNS`` of
            `trainer.features.profiles`, appended to the frame in that order.
        cards: also carry the card inputs' state (`trainer.features.state_cards`) and
            compute the 3 ``CARD_FEATURE_COLUMNS`` of `trainer.features.cards`, appended
            after the profiles (with `profiles` only); `days` as
            ``columns_to_read(state, day, cards=True)``.

    Returns:
        The new state, and the features frame exactly as ``compute_features`` returns it
        from the same history (counts equal; means and risks within a few ulp), and with
        `profiles` the profile columns as ``profiles.extra_features`` computes them (and
        with `cards` the card columns as ``cards.card_features`` does).
    """
    if cards and not profiles:
        raise ValueError("the card inputs come after the profile inputs: cards=True needs "
                         "profiles=True")
    target = days[day]
    if target is None:
        raise DatasetValidationError(f"no dataset for {day.isoformat()}")
    for d, columns in days.items():
        if columns is not None:
            _check_day(d, columns)
    old = state.day if state is not None and rolls_from(state, day, cards) else None
    found = {d: columns for d, columns in days.items() if columns is not None}
    present = sorted(found)
    new_sums = {}
    result_columns: dict[str, np.ndarray] = {}
    ranks = _ranks(target)
    t = target["TX_DATETIME"]
    recent: tuple[EntitySums, np.ndarray] | None = None
    delayed: Totals | None = None
    for kind in kinds(cards):
        previous = state.of(kind) if old is not None and state is not None else None
        sources = [previous.ids if previous is not None else np.array([], np.int64)]
        present_here = [d for d in present if set(kind.columns) <= found[d].keys()]
        sources += [found[d][kind.id_column] for d in present_here]
        codes_list, uniques = entity_codes(sources)
        k = len(uniques)
        codes = dict(zip(present_here, codes_list[1:], strict=True))
        sums = (previous.padded(kind, uniques) if previous is not None
                else EntitySums.empty(kind, uniques))
        rolling = _moving_days(kind, old, day)
        rolling_sums: dict[dt.date, dict | None] = {
            d: day_sums(kind, found[d], codes[d], k) for d in present_here if d in rolling}
        rolled = roll_sums(kind, sums, old, day, rolling_sums)
        new_sums[kind.prefix] = rolled.select(rolled.counts[kind.carried[-1]] > 0)
        if kind.prefix == DELAYED_CUSTOMERS.prefix and not profiles:
            continue  # carried for the profiles only
        if kind is RECENT_CUSTOMERS:
            recent = (rolled, codes[day])
            continue  # whole days only: the card inputs read its sums
        floats = (PROFILE_FLOATS if profiles else FEATURE_FLOATS)[kind.prefix]
        if kind is DELAYED_CARDS:
            floats += CARD_FLOATS
        windows = window_totals(kind, rolled, day, found, codes, k, codes[day], t, ranks,
                                 floats, PROFILE_SPANS[kind.prefix] if profiles else ())
        if kind is DELAYED_CARDS:
            delayed = windows.totals[30]
        if kind.prefix != DELAYED_CUSTOMERS.prefix:
            window_features(kind, windows.totals, result_columns)
        if profiles:
            result_columns.update(PROFILES_OF[kind.prefix](windows, found, day, target))
        # The windows hold every boundary day's index: a few times the day's size at 1M rows.
        del windows
    high_rows = None
    if cards:
        assert recent is not None and delayed is not None  # kinds(True) has both
        previous_high = (state.high_rows if old is not None and state is not None
                         and state.high_rows is not None else rebuilt_high_rows(found, day))
        card_columns, high_rows = card_inputs(delayed, *recent, previous_high, day, target)
        result_columns.update(card_columns)
    result_columns.update(calendar_columns(t))
    names = (FEATURE_COLUMNS[1:] + (EXTRA_FEATURE_COLUMNS if profiles else [])
             + (CARD_FEATURE_COLUMNS if cards else []))
    held = {d.isoformat() for d in held_days(day, cards)}
    new_state = FeatureState(day, new_sums,
                             {key: value for key, value in (inputs or {}).items()
                              if key in held}, high_rows)
    # The frame's row order (TRANSACTION_ID, unique) in one permutation, each column moved
    # once and its unordered array dropped: at 1M rows every copy of the frame is ~0.3 GB.
    # Rows already in that order (as ingest writes them) move nowhere: the features are
    # this step's own arrays and go in as they are; the day's columns are copied, since
    # they are Arrow's read-only memory.
    by_id = _id_order(target["TRANSACTION_ID"])
    identity = pd.DataFrame({name: _column(target, name)[by_id] if by_id is not None
                             else _column(target, name).copy() for name in INPUT_COLUMNS},
                            copy=False)
    frame = features_frame(identity, {name: result_columns.pop(name)[by_id]
                                      if by_id is not None else result_columns.pop(name)
                                      for name in names}, names)
    return Advanced(new_state, frame)


def _id_order(transaction_ids: np.ndarray) -> np.ndarray | None:
    """The rows sorted by (unique) transaction id, or None if they already are."""
    ids = transaction_ids
    if ids.dtype != object and (len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))):
        return None
    return np.argsort(ids, kind="stable")


def _moving_days(kind: Kind, old: dt.date | None, new: dt.date) -> set[dt.date]:
    """The days entering or leaving `kind`'s windows (``roll_days`` is every kind's)."""
    return {d for n in kind.carried for moved in window_moves(kind, n, old, new) for d in moved}


def _column(target: DayColumns, name: str) -> np.ndarray:
    if name == "TX_DATETIME":
        return target[name].view("datetime64[ns]")
    return target[name]


def _ranks(target: DayColumns) -> np.ndarray:
    """Each row's rank in (time, transaction id) order: the customers' in-day tie order."""
    times = target["TX_DATETIME"]
    order = time_order(times, target["TRANSACTION_ID"])
    if order is None:
        return np.arange(len(times), dtype=np.int64)
    ranks = np.empty(len(times), np.int64)
    ranks[order] = np.arange(len(times))
    return ranks
