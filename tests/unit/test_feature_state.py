"""The carried feature state against the raw-history path (the reference), on random data.

Counts must be equal, means and risks equal to 1e-12 relative, on data with ties at window
edges (rows exactly n days apart), several rows in one second, missing days, a chain's
first 37 days, gaps, and the state saved and loaded between every step. The same holds for
the 11 profile inputs against `trainer.features.profiles`' raw reference: counts, times and
shares equal, amount ratios, z-scores and means to 1e-12 relative.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from trainer.features.compute import FEATURE_COLUMNS, NS_PER_DAY, compute_features
from trainer.features.exact_sums import prefix_sums, range_sums, rounded
from trainer.features.profiles import EXTRA_FEATURE_COLUMNS, extra_features_of_day
from trainer.features.state import (
    NO_TIME,
    FeatureState,
    boundary_days,
    columns_to_read,
    days_to_read,
    held_days,
)
from trainer.features.state_advance import advance
from trainer.features.state_file import from_parquet, to_parquet

START = dt.date(2018, 4, 1)
COUNT_COLUMNS = [c for c in FEATURE_COLUMNS if "_NB_TX_" in c]
RATIO_COLUMNS = [c for c in FEATURE_COLUMNS[1:] if c not in COUNT_COLUMNS]
#: Profile inputs computed from sums (equal to 1e-12); the others from counts and times.
PROFILE_SUM_COLUMNS = [c for c in EXTRA_FEATURE_COLUMNS if "_AMOUNT_" in c]
PROFILE_EXACT_COLUMNS = [c for c in EXTRA_FEATURE_COLUMNS if c not in PROFILE_SUM_COLUMNS]


def random_days(seed: int, days: int, per_day: int, customers: int, terminals: int, *,
                missing: tuple[int, ...] = (), id_type: str = "int") -> pd.DataFrame:
    """Random transactions over `days` days from START, many of them on shared instants.

    Half the rows sit on a 6-hour grid, so rows of one entity are exactly n days apart
    (window edges) and several share one second; day numbers in `missing` have no rows.
    """
    rng = np.random.default_rng(seed)
    n = days * per_day
    day_of_row = rng.integers(0, days, n)
    day_of_row = day_of_row[~np.isin(day_of_row, missing)]
    n = len(day_of_row)
    seconds = rng.integers(0, 86_400, n)
    snap = rng.random(n) < 0.5
    seconds[snap] = (seconds[snap] // 21_600) * 21_600
    start = pd.Timestamp(START).value
    times = start + day_of_row * NS_PER_DAY + seconds * 10**9
    customer = rng.integers(0, customers, n)
    terminal = rng.integers(0, terminals, n)
    frame = pd.DataFrame({
        "TRANSACTION_ID": rng.permutation(n).astype("int64"),
        "TX_DATETIME": pd.to_datetime(times).astype("datetime64[ns]"),
        "CUSTOMER_ID": customer.astype("int64"),
        "TERMINAL_ID": terminal.astype("int64"),
        "TX_AMOUNT": np.round(rng.lognormal(3.5, 1.2, n), 2),
        "TX_FRAUD": (rng.random(n) < 0.1).astype("int64"),
    })
    if id_type == "sparse":  # hashed-looking ids: the hash table, not the lookup table
        frame["CUSTOMER_ID"] = frame["CUSTOMER_ID"] * 7_919_000_003 + 11
        frame["TERMINAL_ID"] = -frame["TERMINAL_ID"] * 104_729_000_001
    if id_type == "str":  # a bank's ids: text, the transactions' sorting as their numbers
        frame["CUSTOMER_ID"] = "c" + frame["CUSTOMER_ID"].astype(str)
        frame["TERMINAL_ID"] = "t" + frame["TERMINAL_ID"].astype(str)
        frame["TRANSACTION_ID"] = frame["TRANSACTION_ID"].map("tx-{:010d}".format)
    return frame.sort_values(["TX_DATETIME", "TRANSACTION_ID"], ignore_index=True)


def day_columns(frame: pd.DataFrame, *,
                shuffle: bool = False) -> dict[dt.date, dict[str, np.ndarray]]:
    """Each day's rows as the arrays `advance` reads (in random order with `shuffle`)."""
    out = {}
    for day, rows in frame.groupby(frame["TX_DATETIME"].dt.date):
        if shuffle:
            rows = rows.sample(frac=1.0, random_state=day.toordinal())
        out[day] = {
            "TRANSACTION_ID": rows["TRANSACTION_ID"].to_numpy(),
            "TX_DATETIME": rows["TX_DATETIME"].to_numpy().view(np.int64),
            "CUSTOMER_ID": rows["CUSTOMER_ID"].to_numpy(dtype=object)
            if rows["CUSTOMER_ID"].dtype != np.int64 else rows["CUSTOMER_ID"].to_numpy(),
            "TERMINAL_ID": rows["TERMINAL_ID"].to_numpy(dtype=object)
            if rows["TERMINAL_ID"].dtype != np.int64 else rows["TERMINAL_ID"].to_numpy(),
            "TX_AMOUNT": rows["TX_AMOUNT"].to_numpy(),
            "TX_FRAUD": rows["TX_FRAUD"].to_numpy(),
        }
    return out


def raw_features(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The reference: ``compute_features`` and the profiles on the 38 days the raw path reads."""
    times = frame["TX_DATETIME"]
    first = pd.Timestamp(day - dt.timedelta(days=37))
    history = frame[(times >= first) & (times < pd.Timestamp(day + dt.timedelta(days=1)))]
    base = compute_features(history, day)
    profiles = extra_features_of_day(history, day)
    assert (base["TRANSACTION_ID"].to_numpy() == profiles["TRANSACTION_ID"].to_numpy()).all()
    return pd.concat([base, profiles.drop(columns="TRANSACTION_ID")], axis=1)


def assert_same_features(from_state: pd.DataFrame, raw: pd.DataFrame) -> None:
    assert len(from_state) == len(raw)
    assert (from_state["TRANSACTION_ID"].to_numpy() == raw["TRANSACTION_ID"].to_numpy()).all()
    for name in COUNT_COLUMNS + ["TX_DURING_WEEKEND", "TX_DURING_NIGHT"]:
        np.testing.assert_array_equal(from_state[name].to_numpy(), raw[name].to_numpy(),
                                      err_msg=name)
    for name in RATIO_COLUMNS:
        np.testing.assert_allclose(from_state[name].to_numpy(), raw[name].to_numpy(),
                                   rtol=1e-12, atol=0, err_msg=name)
    assert list(from_state.columns) == list(raw.columns)  # the profiles, in their order
    for name in PROFILE_EXACT_COLUMNS:
        np.testing.assert_array_equal(from_state[name].to_numpy(), raw[name].to_numpy(),
                                      err_msg=name)
    for name in PROFILE_SUM_COLUMNS:
        np.testing.assert_allclose(from_state[name].to_numpy(), raw[name].to_numpy(),
                                   rtol=1e-12, atol=1e-12, err_msg=name)


def read(columns: dict, state: FeatureState | None, day: dt.date) -> dict:
    """What the share reader gives `advance`: only the columns it asks for, of each day."""
    return {d: None if d not in columns else {name: columns[d][name] for name in names}
            for d, names in columns_to_read(state, day).items()}


def walk_chain(frame: pd.DataFrame, trained: list[dt.date], *, round_trip: bool = True,
               shuffle: bool = False):
    """Advance a state through `trained` days; yield (day, result) for each."""
    columns = day_columns(frame, shuffle=shuffle)
    state: FeatureState | None = None
    for day in trained:
        result = advance(state, day, read(columns, state, day), profiles=True)
        state = from_parquet(to_parquet(result.state), "test") if round_trip else result.state
        yield day, result


@pytest.mark.parametrize("seed", [0])
def test_state_path_equals_raw_path_from_the_first_day_with_ties_and_missing_days(seed):
    # GIVEN 50 days of random data with ties on window edges and three missing days
    days = 50
    frame = random_days(seed, days, 40, customers=12, terminals=8, missing=(5, 20, 44))
    trained = [START + dt.timedelta(days=i) for i in range(days) if i not in (5, 20, 44)]
    # WHEN a chain carries the state from its first day (saved and loaded at every step)
    for day, result in walk_chain(frame, trained):
        # THEN every day's features equal the raw path's, the first 37 days included
        assert_same_features(result.features, raw_features(frame, day))


@pytest.mark.parametrize("id_type", ["str", "sparse"])
def test_string_and_sparse_entity_ids_give_the_same_features(id_type):
    frame = random_days(3, 45, 30, customers=10, terminals=6, id_type=id_type)
    trained = [START + dt.timedelta(days=i) for i in range(45)]
    for day, result in walk_chain(frame, trained):
        if day.day % 9 == 0 or day == trained[-1]:
            raw = raw_features(frame, day)
            assert_same_features(result.features, raw)
            assert list(result.features["CUSTOMER_ID"]) == list(raw["CUSTOMER_ID"])


def test_gaps_roll_or_rebuild_and_match_the_raw_path():
    # GIVEN a chain that skips days (gaps of 1, 3 and 40 days between trained days), each
    # day's rows in no particular order
    frame = random_days(4, 120, 25, customers=10, terminals=6)
    offsets = [0, 1, 2, 4, 8, 9, 49, 50, 51, 52, 55, 95, 96]
    trained = [START + dt.timedelta(days=i) for i in offsets]
    for day, result in walk_chain(frame, trained, shuffle=True):
        assert_same_features(result.features, raw_features(frame, day))


def test_a_step_reads_seven_days_whatever_the_windows():
    state = None
    for i in range(45):
        day = START + dt.timedelta(days=i)
        needed = days_to_read(state, day)
        if i > 0:
            assert set(needed) == set(boundary_days(day))
            assert len(needed) == 7
        state = FeatureState(day, {})  # only .day is read by days_to_read


def test_a_day_skipped_then_back_filled_through_replay_matches_the_raw_path():
    # GIVEN days 0..44, day 30 arrives late: the chain first trains without it
    full = random_days(5, 45, 30, customers=10, terminals=6)
    late = START + dt.timedelta(days=30)
    without = full[full["TX_DATETIME"].dt.date != late]
    trained = [START + dt.timedelta(days=i) for i in range(45) if i != 30]
    states = {}
    for day, result in walk_chain(without, trained):
        states[day] = result.state
    # WHEN the replay restores day 29's state and trains 30..44 with the late day
    columns = day_columns(full)
    state = from_parquet(to_parquet(states[late - dt.timedelta(days=1)]), "replay point")
    for i in range(30, 45):
        day = START + dt.timedelta(days=i)
        result = advance(state, day, read(columns, state, day), profiles=True)
        state = result.state
        # THEN each replayed day's features equal the raw path on the completed history
        assert_same_features(result.features, raw_features(full, day))


def brute_window(frame: pd.DataFrame, row: pd.Series, column: str, start_days: int,
                 end_days: int, *, own_row: bool) -> pd.DataFrame:
    """Rows of `row`'s entity in (t - start_days, t - end_days] (up to `row` when own_row)."""
    t = row["TX_DATETIME"]
    mine = frame[frame[column] == row[column]]
    window = mine[(mine["TX_DATETIME"] > t - pd.Timedelta(days=start_days))
                  & (mine["TX_DATETIME"] <= t - pd.Timedelta(days=end_days))]
    if own_row:
        window = window[(window["TX_DATETIME"] < t) | (
            window["TRANSACTION_ID"] <= row["TRANSACTION_ID"])]
    return window


@pytest.mark.parametrize("seed", [8, 9])
def test_rare_entities_find_their_previous_row_and_frauds_on_the_edge_days(seed):
    # GIVEN entities that transact every few weeks: a customer's previous row is often on
    # day D-30 after t - 30 days, a terminal's first or last known fraud on D-37 or D-7
    frame = random_days(seed, 90, 20, customers=250, terminals=150)
    trained = [START + dt.timedelta(days=i) for i in range(90)]
    # WHEN the state is carried; THEN the profiles equal the raw reference's
    edge_cases = 0
    for day, result in walk_chain(frame, trained):
        if day >= START + dt.timedelta(days=37):
            raw = raw_features(frame, day)
            assert_same_features(result.features, raw)
            gap = raw["CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"]
            edge_cases += int(((gap > 29 * 86_400) & (gap < 30 * 86_400)).sum())
    assert edge_cases > 0  # the data did reach the D-30 edge


def test_carried_last_times_are_those_of_the_full_days():
    # GIVEN 40 days; WHEN the state reaches the last day
    frame = random_days(6, 40, 30, customers=8, terminals=5)
    trained = [START + dt.timedelta(days=i) for i in range(40)]
    *_, (day, result) = walk_chain(frame, trained)
    # THEN the last times are those of the 30-day windows' full days
    state = result.state
    for kind, column, first_back, last_back, frauds_only, sums in (
            ("customers", "CUSTOMER_ID", 29, 1, False, state.customers),
            ("terminals", "TERMINAL_ID", 36, 8, True, state.terminals)):
        first = pd.Timestamp(day - dt.timedelta(days=first_back))
        end = pd.Timestamp(day - dt.timedelta(days=last_back - 1))
        held = frame[(frame["TX_DATETIME"] >= first) & (frame["TX_DATETIME"] < end)]
        if frauds_only:
            held_frauds = held[held["TX_FRAUD"] == 1]
        else:
            held_frauds = held
        expected = held_frauds.groupby(column)["TX_DATETIME"].max()
        for entity, last in zip(sums.ids, sums.last_time, strict=True):
            if entity in expected.index:
                assert last == expected[entity].value, (kind, entity)
            else:
                assert last == NO_TIME, (kind, entity)
        assert set(sums.ids) == set(held[column]), kind  # bounded: active entities only


def test_held_days_cover_the_longest_windows():
    day = dt.date(2018, 6, 1)
    held = held_days(day)
    assert held[0] == day - dt.timedelta(days=36) and held[-1] == day - dt.timedelta(days=1)


def test_compensated_prefix_sums_are_exact_to_the_last_bits():
    rng = np.random.default_rng(0)
    values = rng.lognormal(3.5, 1.5, 200_000)
    hi, lo = prefix_sums(values)
    np.testing.assert_array_equal(hi[1:], np.cumsum(values))  # numpy adds sequentially
    for start, end in ((0, 200_000), (150_000, 150_003), (199_999, 200_000), (12, 99_999)):
        got = rounded(*range_sums(hi, lo, np.array([start]), np.array([end])))[0]
        assert got == math.fsum(values[start:end])


def test_no_drift_after_two_hundred_days():
    # GIVEN 230 days with large and small amounts mixed (cancellation-prone)
    frame = random_days(7, 200, 12, customers=5, terminals=3)
    frame["TX_AMOUNT"] = frame["TX_AMOUNT"] * np.where(
        np.arange(len(frame)) % 5 == 0, 1e6, 1e-3)
    trained = [START + dt.timedelta(days=i) for i in range(200)]
    for day, result in walk_chain(frame, trained, round_trip=False):
        if day >= START + dt.timedelta(days=180) and day.day % 4 == 0:
            # THEN day 180+ still equals the raw path (which sums only 38 days)
            assert_same_features(result.features, raw_features(frame, day))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 16))
def test_state_path_equals_raw_path_long(seed):
    rng = np.random.default_rng(seed)
    days = 90
    missing = tuple(int(x) for x in rng.choice(days, 6, replace=False) if x != 0)
    frame = random_days(seed, days, 200, customers=60, terminals=30, missing=missing)
    trained = [START + dt.timedelta(days=i) for i in range(days) if i not in missing]
    for day, result in walk_chain(frame, trained):
        assert_same_features(result.features, raw_features(frame, day))
