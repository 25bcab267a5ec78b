"""Which frauds the quality ceiling counts as knowable from the inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.quality_ceiling import knowable_frauds
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
