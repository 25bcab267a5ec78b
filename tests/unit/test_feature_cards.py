"""The card inputs: the carried state against the raw reference, the reference against bench.

The carried path (`advance(..., cards=True)`) must give `trainer.features.cards`'
`card_features` on the same rows over a chain: counts exactly, the amount ratio to 1e-12
relative, through a chain's first days, gaps (a rebuild from the raw history) and a state
saved and loaded between every step; the old kinds' features must not change. The
reference must give `bench.quality_derived`'s definitions (validation's columns).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from bench.quality_derived import (
    HIGH_AMOUNT_DAYS_COLUMNS,
    RECENT_CLEAN_COLUMNS,
    with_card_amounts,
)
from tests.unit.test_feature_state import START, day_columns, random_days
from trainer.features.cards import (
    CARD_FEATURE_COLUMNS,
    CARD_HISTORY_DAYS,
    CARD_INPUT_COLUMNS,
    card_features,
)
from trainer.features.state import (
    FeatureState,
    boundary_days,
    columns_to_read,
    days_to_read,
    held_days,
)
from trainer.features.state_advance import advance
from trainer.features.state_file import from_parquet, to_parquet

COUNT_COLUMNS = CARD_FEATURE_COLUMNS[:2]
RATIO_COLUMNS = CARD_FEATURE_COLUMNS[2:]


def card_frame(seed: int, days: int, *, missing: tuple[int, ...] = (),
               id_type: str = "int") -> pd.DataFrame:
    """Random days where some cards spend x5 for a while, so there are high rows."""
    frame = random_days(seed, days, 40, customers=12, terminals=8, missing=missing,
                        id_type=id_type)
    rng = np.random.default_rng(seed + 100)
    compromised = rng.random(len(frame)) < 0.06
    frame.loc[compromised, "TX_AMOUNT"] = np.round(frame.loc[compromised, "TX_AMOUNT"] * 5, 2)
    return frame


def reference(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """TRANSACTION_ID and the card inputs of `day`'s rows from its raw history."""
    times = frame["TX_DATETIME"]
    first = pd.Timestamp(day - dt.timedelta(days=CARD_HISTORY_DAYS))
    history = frame[(times >= first) & (times < pd.Timestamp(day + dt.timedelta(days=1)))]
    target = (history["TX_DATETIME"].dt.date == day).to_numpy()
    columns = {name: history[name].to_numpy() for name in CARD_INPUT_COLUMNS}
    out = pd.DataFrame({"TRANSACTION_ID": history["TRANSACTION_ID"].to_numpy()[target],
                        **card_features(columns, target)})
    return out.sort_values("TRANSACTION_ID", kind="stable", ignore_index=True)


def walk(frame: pd.DataFrame, trained: list[dt.date], *, cards: bool = True,
         shuffle: bool = False):
    columns = day_columns(frame, shuffle=shuffle)
    state: FeatureState | None = None
    for day in trained:
        days = {d: None if d not in columns else {n: columns[d][n] for n in names}
                for d, names in columns_to_read(state, day, cards).items()}
        result = advance(state, day, days, profiles=True, cards=cards)
        state = from_parquet(to_parquet(result.state), "test")
        yield day, result


def assert_same_cards(features: pd.DataFrame, raw: pd.DataFrame) -> None:
    assert (features["TRANSACTION_ID"].to_numpy() == raw["TRANSACTION_ID"].to_numpy()).all()
    for name in COUNT_COLUMNS:
        np.testing.assert_array_equal(features[name].to_numpy(), raw[name].to_numpy(),
                                      err_msg=name)
    for name in RATIO_COLUMNS:
        np.testing.assert_allclose(features[name].to_numpy(), raw[name].to_numpy(),
                                   rtol=1e-12, atol=0, err_msg=name)


def test_carried_cards_equal_the_reference_through_gaps_and_rebuilds():
    # GIVEN 75 days with x5 spells, two days with no rows, and a chain that skips days
    # (each gap rebuilds the card state from the raw history)
    frame = card_frame(0, 75, missing=(20, 61))
    offsets = [*range(0, 30), 33, 34, *range(35, 58), 62, *range(63, 75)]
    trained = [START + dt.timedelta(days=i) for i in offsets if i not in (20, 61)]
    plain = dict(walk(frame, trained, cards=False))
    high_seen = 0
    for day, result in walk(frame, trained, shuffle=True):
        # THEN every day's card inputs equal the reference, high counts exactly
        assert list(result.features.columns[-3:]) == CARD_FEATURE_COLUMNS
        assert_same_cards(result.features, reference(frame, day))
        high_seen += int(result.features[CARD_FEATURE_COLUMNS[0]].gt(0).sum())
        # AND the other columns are those of a chain without the card inputs
        pd.testing.assert_frame_equal(result.features.iloc[:, :-3], plain[day].features)
    assert high_seen > 100  # the test sees high rows


@pytest.mark.parametrize("id_type", ["str", "sparse"])
def test_string_and_sparse_card_ids(id_type):
    frame = card_frame(3, 60, id_type=id_type)
    trained = [START + dt.timedelta(days=i) for i in range(60)]
    for day, result in walk(frame, trained):
        if day.day % 7 == 0 or day == trained[-1]:
            assert_same_cards(result.features, reference(frame, day))


def test_a_card_step_reads_the_same_seven_days_and_a_rebuild_fifty():
    day = START + dt.timedelta(days=80)
    state = FeatureState(day - dt.timedelta(days=1), {}, high_rows=None)
    assert len(days_to_read(state, day, cards=True)) == CARD_HISTORY_DAYS + 1  # no card sums
    frame = card_frame(4, 62)
    trained = [START + dt.timedelta(days=i) for i in range(60, 62)]
    states = [result.state for _, result in walk(frame, trained)]
    assert set(days_to_read(states[0], trained[1], cards=True)) == set(
        boundary_days(trained[1]))
    assert states[1].inputs.keys() <= {d.isoformat() for d in held_days(trained[1], True)}
    assert len(held_days(trained[1], True)) == CARD_HISTORY_DAYS


def test_old_chains_keep_their_state_bytes():
    # A chain without the card inputs writes what it wrote before them: no card columns
    frame = card_frame(5, 40)
    trained = [START + dt.timedelta(days=i) for i in range(38, 40)]
    for _, result in walk(frame, trained, cards=False):
        data = to_parquet(result.state)
        assert b"GENUINE_AMOUNT" not in data and b'"cards"' not in data
        assert set(result.state.sums) == {"C", "D", "T"}


def test_the_reference_gives_the_bench_definitions():
    # GIVEN the same rows as bench.quality_derived reads them, every day's frame
    frame = card_frame(6, 70)
    frames = {d: rows.reset_index(drop=True)
              for d, rows in frame.groupby(frame["TX_DATETIME"].dt.date)}
    bench = pd.concat([f for _, f in sorted(with_card_amounts(frames).items())],
                      ignore_index=True)
    columns = {name: frame[name].to_numpy() for name in CARD_INPUT_COLUMNS}
    ours = card_features(columns, np.ones(len(frame), dtype=bool))
    assert HIGH_AMOUNT_DAYS_COLUMNS + RECENT_CLEAN_COLUMNS == CARD_FEATURE_COLUMNS
    for name in COUNT_COLUMNS:
        np.testing.assert_array_equal(ours[name], bench[name].to_numpy(), err_msg=name)
    assert (ours[COUNT_COLUMNS[0]] > 0).sum() > 100
    # bench sums amounts in plain float64 prefix sums: equal to its rounding
    np.testing.assert_allclose(ours[RATIO_COLUMNS[0]], bench[RATIO_COLUMNS[0]].to_numpy(),
                               rtol=1e-9)
