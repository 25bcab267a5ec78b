"""The bounded members (trainer/learners/bounded.py) and `lgbm_mlp_profiles_bounded`.

Below their caps they must be their parents to the bit (so the quality figures measured on
default-size days are theirs); above them they must read at most the caps, weighted so a
day's total weight per class is kept, and stay deterministic and checkpointable.
"""

from __future__ import annotations

import numpy as np
import pytest

from trainer.learners.boosting import WindowBoostingClassifier
from trainer.learners.bounded import BoundedPassesClassifier, BoundedWindowBoostingClassifier
from trainer.learners.registry import TRUSTED_TYPES, make_learner
from trainer.model import fraud_scores
from trainer.share.checkpoints import dump_model, load_checkpoint
from trainer.share.files import sha256_bytes


def _day(seed: int, rows: int = 3_000, width: int = 26, fraud_share: float = 0.02):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, width))
    y = (rng.random(rows) < fraud_share).astype(int)
    X[y == 1, 0] += 2.0
    return X, y


def _train(model, days):
    for X, y in days:
        model.partial_fit(X, y)
    return model


def test_below_its_caps_the_bounded_learner_is_lgbm_mlp_profiles_to_the_bit():
    # GIVEN days under every cap (3,000 rows: ~300 genuines and ~60 frauds kept a day)
    days = [_day(seed) for seed in range(4)]
    bounded = _train(make_learner("lgbm_mlp_profiles_bounded"), days)
    plain = _train(make_learner("lgbm_mlp_profiles"), days)
    # THEN the booster text, the MLP's weights and the scores are the same bits
    assert bounded.members_[0].model_text_ == plain.members_[0].model_text_
    for ours, theirs in zip(bounded.members_[1].classifier_.coefs_,
                            plain.members_[1].classifier_.coefs_, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    X, _ = _day(99, rows=1_000)
    np.testing.assert_array_equal(fraud_scores(bounded, X), fraud_scores(plain, X))
    # and no row of the reservoir carries a weight
    assert np.all(bounded.members_[0].reservoir_weight_ == 1.0)


def test_the_booster_keeps_at_most_its_caps_a_day_weighted_to_the_days_totals():
    model = BoundedWindowBoostingClassifier(n_trees=5, max_genuines_per_day=100,
                                            max_frauds_per_day=20)
    days = [_day(seed, rows=5_000, fraud_share=0.02) for seed in range(3)]
    _train(model, days)
    for index, (_, y) in enumerate(days):
        mine = model.reservoir_day_ == index
        genuine, fraud = mine & (model.reservoir_y_ == 0), mine & (model.reservoir_y_ == 1)
        # at most the caps were kept ...
        assert genuine.sum() == 100 and fraud.sum() == 20
        # ... and their weights add up to what they stand for: every fraud of the day,
        # and the day's genuine_fraction sample of its genuines (~10% of ~4,900)
        assert model.reservoir_weight_[fraud].sum() == pytest.approx(int(y.sum()))
        assert 400 < model.reservoir_weight_[genuine].sum() < 600
    # the refit used the weights: another booster than the unweighted one on the same rows
    unweighted = WindowBoostingClassifier(n_trees=5)
    assert model.model_text_.split("end of trees")[0] != _train(
        unweighted, days).model_text_.split("end of trees")[0]


def test_each_mlp_pass_reads_at_most_its_caps():
    # DailyMLPClassifier counts the rows it learned from in t_
    model = make_learner("lgbm_mlp_profiles_bounded").members[1]
    model.set_params(max_genuines_per_pass=500, max_frauds_per_pass=30)
    X, y = _day(3, rows=4_000, fraud_share=0.02)
    assert (y == 0).sum() > 500 and y.sum() > 30
    model.partial_fit(X, y)
    assert model.classifier_.t_ == model.passes * (500 + 30)
    # a day under the caps is read whole, every pass
    small_X, small_y = _day(4, rows=400, fraud_share=0.02)
    before = model.classifier_.t_
    model.partial_fit(small_X, small_y)
    assert model.classifier_.t_ - before == model.passes * 400


def test_capped_days_give_the_same_bytes_twice_and_survive_a_checkpoint(tmp_path):
    def trained():
        model = make_learner("lgbm_mlp_profiles_bounded")
        model.members[0].set_params(max_genuines_per_day=100, max_frauds_per_day=20)
        model.members[1].set_params(max_genuines_per_pass=500, max_frauds_per_pass=30)
        return _train(model, [_day(seed, rows=4_000) for seed in range(3)])

    first, second = dump_model(trained()), dump_model(trained())
    assert first == second
    path = tmp_path / "model.skops"
    path.write_bytes(first)
    loaded = load_checkpoint(path, sha256_bytes(first))
    X, _ = _day(99, rows=500)
    np.testing.assert_array_equal(fraud_scores(loaded, X), fraud_scores(trained(), X))
    for cls in (BoundedWindowBoostingClassifier, BoundedPassesClassifier):
        assert f"{cls.__module__}.{cls.__qualname__}" in TRUSTED_TYPES


@pytest.mark.parametrize(("model", "message"), [
    (BoundedWindowBoostingClassifier(max_genuines_per_day=0), "max_genuines_per_day"),
    (BoundedPassesClassifier(make_learner("mlp").classifier, max_frauds_per_pass=0),
     "max_frauds_per_pass"),
])
def test_a_cap_below_one_is_refused_by_name(model, message):
    X, y = _day(0, rows=200)
    with pytest.raises(ValueError, match=message):
        model.partial_fit(X, y)
