"""The service's probabilities without scikit-learn's checks equal ``predict_proba`` bit for bit.

Every learner is trained for two days on a small simulated share's features, then its
``predict_proba`` and `trainer.serving.fast_model.probabilities` are compared on a day's
rows, and on the 4-row blocks the service scores one transaction in.
"""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data.simulator import SimulationConfig, simulate_config
from trainer.features.from_history import features_of_transactions
from trainer.learners import LEARNER_NAMES
from trainer.learners.registry import learner_inputs, make_learner
from trainer.serving.fast_model import probabilities


@pytest.fixture(scope="module")
def days():
    import datetime as dt

    import pandas as pd

    config = SimulationConfig(start=dt.date(2018, 4, 1), days=4, customers=400,
                              terminals=800, seed=5)
    frames = dict(simulate_config(config))
    everything = pd.concat(frames.values(), ignore_index=True)
    return [features_of_transactions(everything, day, profiles=True, cards=True)
            for day in frames][1:]


@pytest.mark.parametrize("learner", LEARNER_NAMES)
def test_probabilities_equal_predict_proba_bit_for_bit(days, learner):
    inputs = learner_inputs(learner)
    model = make_learner(learner)
    for frame in days[:2]:
        model.partial_fit(frame[inputs].to_numpy(), frame["TX_FRAUD"].to_numpy())
    X = days[2][inputs].to_numpy()
    fast = probabilities(model)
    np.testing.assert_array_equal(fast(X), model.predict_proba(X))
    for start in range(0, 40, 4):
        block = np.ascontiguousarray(X[start:start + 4])
        np.testing.assert_array_equal(fast(block), model.predict_proba(block))
    # one transaction padded to a block by repeating it, as the service scores it
    for start in range(0, 12, 3):
        padded = np.ascontiguousarray(np.concatenate([X[start:start + 2],
                                                      np.repeat(X[start + 2:start + 3], 2,
                                                                axis=0)]))
        np.testing.assert_array_equal(fast(padded), model.predict_proba(padded))


@pytest.mark.parametrize("learner", [name for name in LEARNER_NAMES if "lgbm" in name])
def test_single_row_contributions_equal_the_boosters_pred_contrib(days, learner):
    from trainer.evaluation.reasons import booster_member
    from trainer.serving.fast_model import SingleRowBooster

    inputs = learner_inputs(learner)
    model = make_learner(learner)
    for frame in days[:2]:
        model.partial_fit(frame[inputs].to_numpy(), frame["TX_FRAUD"].to_numpy())
    booster = booster_member(model)[0]._booster()
    contributions = SingleRowBooster(booster, len(inputs), contributions=True)
    X = np.ascontiguousarray(days[2][inputs].to_numpy()[:40])
    for start in range(0, 40, 4):
        block = X[start:start + 4]
        np.testing.assert_array_equal(contributions(block),
                                      booster.predict(block, pred_contrib=True))
    np.testing.assert_array_equal(contributions(X), booster.predict(X, pred_contrib=True))
