"""The cheaper MLP update: every fraud and a weighted sample of the genuines each pass.

`GenuineSampledClassifier` (trainer/learners/sampled.py) must read what it says it reads,
weight the genuines back so a pass's loss is the whole day's in expectation, give the same
checkpoint on a replay, and be, in `lgbm_mlp_profiles_sampled`, the very configuration
whose validation figures bench/QUALITY.md reports. Chains of the learners that read every
row keep their name, inputs and bytes (tests/unit/test_golden_checkpoints.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from trainer.learners.registry import (
    SAMPLED_GENUINE_RATE,
    learner_inputs,
    make_learner,
)
from trainer.learners.sampled import GenuineSampledClassifier
from trainer.model import WarmStartClassifier, fraud_scores
from trainer.share.checkpoints import dump_model


class RecordingSGD(SGDClassifier):
    """An SGD classifier that keeps what each `partial_fit` call was given."""

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        calls = self.__dict__.setdefault("calls_", [])
        calls.append((np.array(X), np.array(y), np.array(sample_weight)))
        return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)


def _day(seed: int, rows: int = 20_000, width: int = 26, fraud_share: float = 0.01):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, width))
    y = (rng.random(rows) < fraud_share).astype(int)
    X[y == 1, 0] += 2.0
    X[:, -1] = np.arange(rows)  # a row id, to see which rows a pass read
    return X, y


@pytest.mark.parametrize("rate", [0.05, 0.3])
def test_each_pass_reads_every_fraud_and_a_fresh_weighted_genuine_sample(rate):
    X, y = _day(0)
    model = GenuineSampledClassifier(RecordingSGD(loss="log_loss", random_state=0),
                                     fraud_weight=5.0, passes=3, genuine_rate=rate)
    model.partial_fit(X, y)
    calls = model.classifier_.calls_
    assert len(calls) == 3
    genuines = int((y == 0).sum())
    seen = []
    for Xs, ys, weights in calls:
        ids = np.rint(model.scaler_.inverse_transform(Xs)[:, -1]).astype(int)
        assert len(set(ids)) == len(ids)  # no row twice in a pass
        assert set(ids[ys == 1]) == set(np.flatnonzero(y == 1))  # every fraud
        assert (y[ids] == ys).all()
        kept = int((ys == 0).sum())
        # binomial(genuines, rate): within 5 standard deviations
        assert abs(kept - rate * genuines) < 5 * np.sqrt(genuines * rate * (1 - rate))
        assert np.allclose(weights[ys == 1], 5.0)
        assert np.allclose(weights[ys == 0], 1.0 / rate)
        # the genuines' total weight is the day's genuine count, in expectation
        assert abs(weights[ys == 0].sum() - genuines) < 5 * np.sqrt(genuines * (1 - rate) / rate)
        seen.append(frozenset(ids[ys == 0]))
    assert len(set(seen)) == 3  # each pass draws its own sample


def test_a_replay_gives_the_same_checkpoint_bytes():
    days = [_day(seed, rows=5_000) for seed in range(3)]
    dumps = []
    for _ in range(2):
        model = make_learner("lgbm_mlp_profiles_sampled")
        model.members[0].set_params(n_trees=10)  # a smaller booster keeps the test fast
        for X, y in days:
            model.partial_fit(X, y)
        dumps.append(dump_model(model))
    assert dumps[0] == dumps[1]


def test_a_rate_outside_zero_to_one_is_refused():
    X, y = _day(0, rows=500)
    with pytest.raises(ValueError, match=r"genuine_rate must be in \(0, 1\], got 0"):
        GenuineSampledClassifier(SGDClassifier(loss="log_loss"), genuine_rate=0).partial_fit(X, y)


def test_the_sampled_learner_is_the_configuration_chosen_on_validation():
    # WHY: bench/QUALITY.md's figures for
    # `all_spell+booster:fraud_window_days=84+mlp:genuine_rate=<rate>` at booster weight
    # 0.7 are this learner's only if it is that model, member for member.
    from bench.quality_features import _config, columns_of, make_member

    config = _config("all_spell+booster:fraud_window_days=84"
                     f"+mlp:genuine_rate={SAMPLED_GENUINE_RATE}")
    assert learner_inputs("lgbm_mlp_profiles_sampled") == columns_of(config)
    assert learner_inputs("lgbm_mlp_profiles_sampled") == learner_inputs("lgbm_mlp_profiles")
    ours = make_learner("lgbm_mlp_profiles_sampled")
    assert ours.weights == [0.7, 0.3]
    small = {"n_trees": 20}
    ours.members[0].set_params(**small)
    booster = make_member("booster", {**config["booster"], **small})
    mlp = make_member("mlp", config["mlp"])
    assert ours.members[0].get_params() == booster.get_params()
    assert repr(ours.members[1]) == repr(mlp)
    assert isinstance(mlp, GenuineSampledClassifier)
    for seed in range(3):
        X, y = _day(seed, rows=4_000)
        for model in (ours, booster, mlp):
            model.partial_fit(X, y)
    X, _ = _day(99, rows=2_000)
    bench = 0.7 * fraud_scores(booster, X) + (1 - 0.7) * fraud_scores(mlp, X)
    assert np.allclose(fraud_scores(ours, X), bench, rtol=0, atol=1e-12)


def test_the_mlp_that_reads_every_row_is_unchanged():
    # the full-data learners keep their class, so their checkpoints keep their bytes
    full = make_learner("lgbm_mlp_profiles").members[1]
    assert type(full) is WarmStartClassifier
    assert "genuine_rate" not in full.get_params()
