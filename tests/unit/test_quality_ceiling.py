"""Which frauds the quality ceiling counts as knowable from the inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.quality_ceiling import informed_tiers, knowable_frauds
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
