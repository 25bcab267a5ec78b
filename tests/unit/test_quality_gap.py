"""The rule that picks a candidate over the default from paired validation differences."""

from __future__ import annotations

import numpy as np

from bench.quality_features import METRICS, VALIDATION_SEEDS
from bench.quality_gap import chosen


def _entry(config: str, differences: dict[str, list[float]]) -> dict:
    return {"config": config, "weight": 0.8, "seeds": VALIDATION_SEEDS,
            "differences": differences,
            "mean": {m: float(np.mean(v)) for m, v in differences.items()}}


def test_a_mean_difference_that_cancels_exactly_is_no_loss():
    # CP@100 differences (steps of 1/1400) that cancel, as float differences of two seeds'
    # metrics gave them on validation: their numpy mean is -1.1e-17
    cancels = [0.0007142857142857229, 0.0007142857142856673, 0.0014285714285714457,
               -0.0014285714285714457, -0.0014285714285714457]
    assert np.mean(cancels) < 0
    gains = {"auc_roc": [0.002] * 5, "average_precision": [0.01] * 5}
    even = _entry("even", {**gains, "card_precision_at_100": cancels})
    loses = _entry("loses", {**gains, "card_precision_at_100": [*cancels[:4], -3 / 1400]})
    smaller = _entry("smaller", {m: [0.001] * 5 for m in METRICS})
    assert chosen([even, loses, smaller])["config"] == "even"
    assert chosen([loses, smaller])["config"] == "smaller"
    assert chosen([loses]) is None
