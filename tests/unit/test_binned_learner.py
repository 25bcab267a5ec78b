"""The booster with finer input histograms, and the learner built on it.

`BinnedWindowBoostingClassifier` (trainer/learners/binned_boosting.py) must hand its
`max_bin` to LightGBM (and be the window booster itself at LightGBM's default of 255),
survive a skops checkpoint, and be, in `lgbm_mlp_profiles_binned`, the very configuration
whose validation figures bench/QUALITY.md reports. The learners before it keep their name,
inputs and bytes (tests/unit/test_golden_checkpoints.py).
"""

from __future__ import annotations

import hashlib

import numpy as np

from trainer.learners.binned_boosting import BinnedWindowBoostingClassifier
from trainer.learners.boosting import WindowBoostingClassifier
from trainer.learners.registry import (
    BINNED_BOOSTER_WEIGHT,
    BINNED_MAX_BIN,
    TRUSTED_TYPES,
    learner_inputs,
    make_learner,
)
from trainer.model import fraud_scores
from trainer.share.checkpoints import dump_model, load_checkpoint


def _day(seed: int, rows: int = 4_000, width: int = 26, fraud_share: float = 0.02):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, width))
    y = (rng.random(rows) < fraud_share).astype(int)
    X[y == 1, 0] += 2.0
    return X, y


def _trees(model_text: str) -> str:
    """The tree part of a LightGBM model text (its parameters section names max_bin)."""
    return model_text.split("end of trees")[0]


def test_max_bin_reaches_lightgbm_and_255_is_the_window_booster():
    days = [_day(seed) for seed in range(2)]
    models = {bins: BinnedWindowBoostingClassifier(max_bin=bins, n_trees=15)
              for bins in (255, BINNED_MAX_BIN)}
    plain = WindowBoostingClassifier(n_trees=15)
    for X, y in days:
        for model in (*models.values(), plain):
            model.partial_fit(X, y)
    # LightGBM records the bins it was given
    for bins, model in models.items():
        assert f"[max_bin: {bins}]" in model.model_text_
    # at LightGBM's default it is the window booster, tree for tree
    assert _trees(models[255].model_text_) == _trees(plain.model_text_)
    # finer bins give other split thresholds, hence other scores
    X, _ = _day(99, rows=1_000)
    assert not np.array_equal(fraud_scores(models[BINNED_MAX_BIN], X), fraud_scores(plain, X))


def test_a_checkpoint_round_trip_scores_the_same(tmp_path):
    model = make_learner("lgbm_mlp_profiles_binned")
    model.members[0].set_params(n_trees=10)  # a smaller booster keeps the test fast
    for seed in range(2):
        model.partial_fit(*_day(seed))
    path = tmp_path / "model.skops"
    path.write_bytes(dump_model(model))
    # load_checkpoint loads trusted types only: the new class must be among them
    assert "trainer.learners.binned_boosting.BinnedWindowBoostingClassifier" in TRUSTED_TYPES
    loaded = load_checkpoint(path, hashlib.sha256(path.read_bytes()).hexdigest())
    X, _ = _day(99, rows=1_000)
    np.testing.assert_array_equal(fraud_scores(loaded, X), fraud_scores(model, X))
    assert loaded.members[0].max_bin == BINNED_MAX_BIN


def test_the_binned_learner_is_the_configuration_chosen_on_validation():
    # WHY: bench/QUALITY.md's figures for
    # `all_spell+booster:fraud_window_days=84,max_bin=<bins>` at the booster weight are
    # this learner's only if it is that model, member for member.
    from bench.quality_features import _config, columns_of, make_member

    config = _config(f"all_spell+booster:fraud_window_days=84,max_bin={BINNED_MAX_BIN}")
    assert learner_inputs("lgbm_mlp_profiles_binned") == columns_of(config)
    assert learner_inputs("lgbm_mlp_profiles_binned") == learner_inputs("lgbm_mlp_profiles")
    ours = make_learner("lgbm_mlp_profiles_binned")
    assert np.allclose(ours.weights, [BINNED_BOOSTER_WEIGHT, 1 - BINNED_BOOSTER_WEIGHT])
    small = {"n_trees": 20}
    ours.members[0].set_params(**small)
    booster = make_member("booster", {**config["booster"], **small})
    mlp = make_member("mlp", config["mlp"])
    assert type(booster) is BinnedWindowBoostingClassifier
    assert ours.members[0].get_params() == booster.get_params()
    assert repr(ours.members[1]) == repr(mlp)
    for seed in range(3):
        X, y = _day(seed)
        for model in (ours, booster, mlp):
            model.partial_fit(X, y)
    X, _ = _day(99, rows=2_000)
    bench = (BINNED_BOOSTER_WEIGHT * fraud_scores(booster, X)
             + (1 - BINNED_BOOSTER_WEIGHT) * fraud_scores(mlp, X))
    assert np.allclose(fraud_scores(ours, X), bench, rtol=0, atol=1e-12)
