"""Every registered learner continues from a checkpoint exactly, and stays bounded."""


import numpy as np
import pytest
import skops.io as sio

from tests.shares import save_checkpoint
from trainer.features.cards import CARD_FEATURE_COLUMNS
from trainer.features.compute import FEATURE_COLUMNS
from trainer.features.profiles import EXTRA_FEATURE_COLUMNS
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.boosting import ContinuedBoostingClassifier, WindowBoostingClassifier
from trainer.learners.registry import (
    LEARNERS,
    TRUSTED_TYPES,
    learner_inputs,
    make_learner,
    uses_cards,
    uses_profiles,
)
from trainer.model import fraud_scores
from trainer.share.checkpoints import dump_model, load_checkpoint


def _day(seed: int, rows: int = 3_000, width: int = 15):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, width))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=rows) > 2.2).astype(int)
    return X, y


def _learner_day(name: str, seed: int):
    """A day of as many columns as learner `name` reads."""
    return _day(seed, width=len(learner_inputs(name)))


def _small(name: str):
    """The registered learner, shrunk where its size would make the test slow."""
    model = make_learner(name)
    if isinstance(model, WindowBoostingClassifier | ContinuedBoostingClassifier):
        model.set_params(**({"n_trees": 20} if isinstance(model, WindowBoostingClassifier)
                            else {"trees_per_day": 5, "max_trees": 10}))
    return model


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_checkpoint_then_train_equals_train_in_memory(name, tmp_path):
    # GIVEN a learner trained on two days and checkpointed
    model = _small(name)
    for seed in (1, 2):
        model.partial_fit(*_learner_day(name, seed))
    path = tmp_path / "model_cpt.skops"
    sha = save_checkpoint(path, model)
    # WHEN the checkpoint is loaded and both copies train on a third day
    loaded = load_checkpoint(path, sha)
    X, y = _learner_day(name, 3)
    np.testing.assert_allclose(fraud_scores(loaded, X), fraud_scores(model, X))
    model.partial_fit(X, y)
    loaded.partial_fit(X, y)
    # THEN they are the same model, byte for byte
    assert dump_model(loaded) == dump_model(model)
    # AND the checkpoint holds only skops' default types and our own classes
    assert set(sio.get_untrusted_types(data=path.read_bytes())) <= set(TRUSTED_TYPES)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_learner_ranks_the_signal(name):
    model = _small(name)
    for seed in range(4):
        model.partial_fit(*_learner_day(name, seed))
    X, y = _learner_day(name, 99)
    scores = fraud_scores(model, X)
    assert scores.shape == (len(y),) and np.isfinite(scores).all()
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, scores) > 0.9


def test_window_reservoir_keeps_only_the_last_days_and_every_fraud():
    model = WindowBoostingClassifier(window_days=3, genuine_fraction=0.1, n_trees=5)
    frauds_per_day = []
    for seed in range(6):
        X, y = _day(seed)
        model.partial_fit(X, y)
        frauds_per_day.append(int(y.sum()))
    assert set(model.reservoir_day_.tolist()) == {3, 4, 5}
    assert int(model.reservoir_y_.sum()) == sum(frauds_per_day[-3:])
    genuine = int((model.reservoir_y_ == 0).sum())
    assert 0.05 * 3 * 3_000 < genuine < 0.15 * 3 * 3_000


def test_window_reservoir_remembers_frauds_longer_when_asked():
    model = WindowBoostingClassifier(window_days=3, fraud_window_days=5, n_trees=5)
    frauds_per_day = []
    for seed in range(7):
        X, y = _day(seed)
        model.partial_fit(X, y)
        frauds_per_day.append(int(y.sum()))
    genuine_days = set(model.reservoir_day_[model.reservoir_y_ == 0].tolist())
    fraud_days = set(model.reservoir_day_[model.reservoir_y_ == 1].tolist())
    assert genuine_days == {4, 5, 6}
    assert fraud_days == {2, 3, 4, 5, 6}
    assert int(model.reservoir_y_.sum()) == sum(frauds_per_day[-5:])


def test_window_booster_saved_before_fraud_window_existed_keeps_training():
    model = WindowBoostingClassifier(n_trees=5).partial_fit(*_day(0))
    del model.__dict__["fraud_window_days"]  # as in a checkpoint from before the setting
    reloaded = sio.loads(dump_model(model), trusted=TRUSTED_TYPES)
    reloaded.partial_fit(*_day(1))
    assert reloaded.fraud_window_days is None and reloaded.days_seen_ == 2


def test_continued_booster_stops_growing_at_max_trees():
    model = ContinuedBoostingClassifier(trees_per_day=4, max_trees=8)
    sizes = []
    for seed in range(4):
        model.partial_fit(*_day(seed))
        sizes.append(model._booster().num_trees())
    assert sizes == [4, 8, 8, 8]
    before = model.model_text_
    model.partial_fit(*_day(9))
    assert model.model_text_ != before  # leaves refitted, structure kept
    assert model._booster().num_trees() == 8


def test_mlp_optimizer_state_survives_the_checkpoint():
    model = make_learner("mlp")
    model.partial_fit(*_day(0))
    loaded = sio.loads(dump_model(model), trusted=TRUSTED_TYPES)
    assert loaded.classifier_._optimizer.t == model.classifier_._optimizer.t > 0
    for ours, theirs in zip(loaded.classifier_._optimizer.ms, model.classifier_._optimizer.ms,
                            strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert not hasattr(model.classifier_, "adam_state_")  # dumping left the live model alone


def test_mlp_update_leaves_no_subnormal_weights_or_moments():
    # WHY: the weights and moments of units that stopped firing decay into subnormal floats
    # after months of days, and every update touching them ran ~2x slower (0.13 s against
    # 0.07 s a day at day 180).
    model = make_learner("mlp")
    model.partial_fit(*_day(0))
    inner, tiny = model.classifier_, np.finfo(np.float64).tiny
    # Hidden unit 0 never fires: zero incoming weights, a very negative bias. Only the L2
    # penalty moves its weights, so its moments decay and stay subnormal on their own.
    inner.coefs_[0][:, 0] = 0.0
    inner.intercepts_[0][0] = -1e6
    inner._optimizer.ms[0][:, 0] = tiny / 16
    inner._optimizer.vs[0][:, 0] = tiny / 16
    model.partial_fit(*_day(2))
    for values in (*inner.coefs_, *inner.intercepts_, *inner._optimizer.ms,
                   *inner._optimizer.vs):
        assert not ((values != 0) & (np.abs(values) < tiny)).any()


def test_unknown_learner_names_the_choices():
    with pytest.raises(ValueError, match="expected one of: .*lgbm_window"):
        make_learner("nope")


def test_default_is_registered():
    assert DEFAULT_LEARNER in LEARNERS


def test_every_learner_before_the_profiles_keeps_the_handbooks_15_inputs():
    # WHY: a chain's checkpoints were fitted on its learner's inputs; changing them for an
    # existing name would break every chain trained on it.
    for name in set(LEARNERS) - {"lgbm_mlp_profiles", "lgbm_mlp_profiles_sampled",
                                 "lgbm_mlp_profiles_binned", "lgbm_mlp_profiles_bounded",
                                 "lgbm_mlp_cards_bounded"}:
        assert learner_inputs(name) == FEATURE_COLUMNS and len(FEATURE_COLUMNS) == 15
        assert not uses_profiles(name)


def test_the_profiles_learner_reads_the_15_then_the_11_profiles():
    assert learner_inputs("lgbm_mlp_profiles") == FEATURE_COLUMNS + EXTRA_FEATURE_COLUMNS
    assert len(learner_inputs("lgbm_mlp_profiles")) == 26
    assert uses_profiles("lgbm_mlp_profiles")
    learner_inputs("lgbm_mlp_profiles").append("x")  # a copy: the registry is unchanged
    assert len(learner_inputs("lgbm_mlp_profiles")) == 26


def test_new_chains_get_the_bounded_profiles_learner():
    assert DEFAULT_LEARNER == "lgbm_mlp_profiles_bounded"
    assert len(learner_inputs(DEFAULT_LEARNER)) == 26


def test_inputs_of_an_unknown_learner_name_the_choices():
    with pytest.raises(ValueError, match=r"unknown learner 'nope'; expected one of: .*"
                                         r"lgbm_mlp, lgbm_mlp_cards_bounded, "
                                         r"lgbm_mlp_profiles"):
        learner_inputs("nope")
    with pytest.raises(ValueError, match="unknown learner 'nope'"):
        uses_profiles("nope")


@pytest.mark.parametrize(("name", "configuration", "weight"), [
    ("lgbm_mlp_profiles", "all_spell+booster:fraud_window_days=84", 0.7),
    ("lgbm_mlp_cards_bounded",
     "all_spell_cardhighdays_cardrecent+booster:fraud_window_days=84", 0.8),
])
def test_a_chosen_learner_is_the_configuration_chosen_in_bench_quality(name, configuration,
                                                                       weight):
    # WHY: bench/QUALITY.md's figures for a configuration at its booster weight are this
    # learner's only if it is that model (below its caps, for a bounded one): the bench's
    # members, trained apart on the same inputs and mixed w / 1 - w.
    from bench.quality_features import _config, columns_of, make_member

    config = _config(configuration)
    assert learner_inputs(name) == columns_of(config)
    ours = make_learner(name)
    # lgbm_mlp_profiles writes 0.3 for 1 - 0.7 (a bit apart); the later learners 1 - w
    assert ours.weights == pytest.approx([weight, 1 - weight], rel=1e-15)
    small = {"n_trees": 20}  # fewer trees keep the test fast; the same on both sides
    ours.members[0].set_params(**small)
    booster = make_member("booster", {**config["booster"], **small})
    mlp = make_member("mlp", config["mlp"])
    if name == "lgbm_mlp_profiles":
        assert ours.members[0].get_params() == booster.get_params()
        assert repr(ours.members[1]) == repr(mlp)
    for seed in range(3):
        X, y = _learner_day(name, seed)
        for model in (ours, booster, mlp):
            model.partial_fit(X, y)
    X, _ = _learner_day(name, 99)
    bench = weight * fraud_scores(booster, X) + (1 - weight) * fraud_scores(mlp, X)
    np.testing.assert_allclose(fraud_scores(ours, X), bench, rtol=1e-15, atol=1e-17)


@pytest.mark.parametrize("name", ["sgd", "mlp"])
def test_scoring_a_day_block_by_block_gives_the_whole_days_values_to_the_bit(name):
    # WHY: WarmStartClassifier scores a large day a block of rows at a time to stay in the
    # CPU's cache; the scores (and so the scores file, the alerts and the metrics) must be
    # those of scaling and predicting the whole day at once, whatever the day's length.
    from trainer.model import PREDICT_BLOCK_ROWS

    model = make_learner(name)
    model.partial_fit(*_day(1, rows=4_000))
    X = _day(2, rows=3 * PREDICT_BLOCK_ROWS + 40)[0]
    for rows in (1, 3, 1_001, PREDICT_BLOCK_ROWS - 1, PREDICT_BLOCK_ROWS,
                 PREDICT_BLOCK_ROWS + 1, 2 * PREDICT_BLOCK_ROWS + 5, len(X)):
        for day in (X[:rows], np.asfortranarray(X[:rows])):  # the step's X: column-major
            whole = model.classifier_.predict_proba(model.scaler_.transform(day))
            blocks = model.predict_proba(day)
            assert blocks.flags.f_contiguous == whole.flags.f_contiguous
            assert np.array_equal(blocks, whole), rows


def test_the_cards_learner_reads_the_profiles_then_the_3_card_inputs():
    assert learner_inputs("lgbm_mlp_cards_bounded") == (
        FEATURE_COLUMNS + EXTRA_FEATURE_COLUMNS + CARD_FEATURE_COLUMNS)
    assert uses_profiles("lgbm_mlp_cards_bounded") and uses_cards("lgbm_mlp_cards_bounded")
    assert not any(uses_cards(name) for name in LEARNERS if name != "lgbm_mlp_cards_bounded")
