"""Which frauds the quality ceiling counts as knowable from the inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.quality_ceiling import informed_tiers, knowable_frauds, spell_visible, strict_frauds
from trainer.features.profiles import LOOKBACK_DAYS


def test_a_terminals_frauds_are_knowable_only_once_one_of_its_labels_has_arrived():
    # GIVEN one row per case: genuine, scenario 1 (amount), scenario 3 (card), scenario 2
    # with a fraud known at the terminal, scenario 2 without, and scenario 2 above 220
    test = pd.DataFrame({
        "TX_FRAUD": [0, 1, 1, 1, 1, 1],
        "TX_AMOUNT": [500.0, 230.0, 40.0, 40.0, 40.0, 300.0],
        "TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD": [3.0, LOOKBACK_DAYS, LOOKBACK_DAYS, 9.5,
                                               LOOKBACK_DAYS, LOOKBACK_DAYS],
    })
    scenarios = np.array([0, 1, 3, 2, 2, 2])
    # WHEN
    knowable = knowable_frauds(test, scenarios)
    # THEN a genuine row never counts, whatever its inputs; the terminal's fraud without a
    # known label is the only unknowable fraud
    assert knowable.tolist() == [False, True, True, True, False, True]


def test_the_informed_oracle_ranks_a_known_terminals_other_rows_last():
    # GIVEN a knowable fraud, an unknowable one (terminal without a known label), a genuine
    # row at an unknown terminal and a genuine row at a terminal with a known fraud
    test = pd.DataFrame({
        "TX_FRAUD": [1, 1, 0, 0],
        "TX_AMOUNT": [40.0, 40.0, 40.0, 40.0],
        "TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD": [2.0, LOOKBACK_DAYS, LOOKBACK_DAYS, 2.0],
    })
    knowable = knowable_frauds(test, np.array([2, 2, 0, 0]))
    # THEN the last row is below the unknowable fraud, which ties with the unknown genuine
    assert informed_tiers(test, knowable).tolist() == [2.0, 1.0, 1.0, 0.0]


def test_the_strict_oracle_drops_terminal_frauds_whose_own_spell_shows_no_known_fraud():
    # GIVEN terminal 7 compromised on June 1 (frauds on 06-01 and 06-10) and terminal 8
    # whose only earlier fraud is a card's (scenario 3) on 06-01; a test week from 06-10
    day = pd.Timestamp("2018-06-01 10:00")
    every = pd.DataFrame({
        "TX_DATETIME": [day, day + pd.Timedelta(days=9), day,
                        day + pd.Timedelta(days=9, hours=1)],
        "TERMINAL_ID": [7, 7, 8, 8],
        "TX_FRAUD_SCENARIO": [2, 2, 3, 2],
    })
    test = every.iloc[[1, 3]].reset_index(drop=True).assign(
        TX_FRAUD=1, TX_AMOUNT=40.0, TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD=9.0)
    scenarios = np.array([2, 2])
    # WHEN
    visible = spell_visible(test, scenarios, every)
    knowable = knowable_frauds(test, scenarios)
    # THEN both count as knowable (each terminal has a known fraud), but only terminal 7's
    # own spell shows: terminal 8's known fraud says nothing of the spell that began since
    assert knowable.tolist() == [True, True]
    assert visible.tolist() == [True, False]
    assert strict_frauds(test, scenarios, knowable, visible).tolist() == [True, False]


def test_a_spell_older_than_28_calendar_days_does_not_make_a_new_one_visible():
    # GIVEN terminal 7 defrauded on 05-01 (one spell) and again on 06-05 (a new spell)
    first = pd.Timestamp("2018-05-01 23:00")
    every = pd.DataFrame({"TX_DATETIME": [first, first + pd.Timedelta(days=35)],
                          "TERMINAL_ID": [7, 7], "TX_FRAUD_SCENARIO": [2, 2]})
    test = every.iloc[[1]].reset_index(drop=True)
    # THEN the May fraud is known (35 days old) but belongs to an ended spell
    assert spell_visible(test, np.array([2]), every).tolist() == [False]
