"""The MLP's daily update gives scikit-learn's own results to the bit, at a fraction of its cost.

`DailyMLPClassifier` runs the minibatches of the daily `partial_fit` itself
(`trainer/learners/mlp.py`); scikit-learn's loop is the reference, reached here by a
subclass that always declines the lean path. Every weight, Adam moment, step count and
loss must be equal, not close: a checkpoint's bytes, and every replay test, depend on it.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from trainer.learners.mlp import DailyMLPClassifier
from trainer.learners.registry import make_learner
from trainer.model import WarmStartClassifier
from trainer.share.checkpoints import dump_model


class SklearnLoop(DailyMLPClassifier):
    """The same network, always trained by scikit-learn's `_fit_stochastic`."""

    def _lean_update_applies(self, X, sample_weight, incremental) -> bool:
        return False


def _learner(network_class, **settings) -> WarmStartClassifier:
    """The default learner's MLP member, built on `network_class`."""
    network = network_class(**{"hidden_layer_sizes": (32, 16), "alpha": 1e-4,
                               "learning_rate_init": 1e-3, "batch_size": 256,
                               "random_state": 0, **settings})
    return WarmStartClassifier(network, fraud_weight=5.0, passes=3)


def _day(seed: int, rows: int, width: int = 26) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Column-major, as the step's features frame gives its inputs.
    X = np.asfortranarray(rng.normal(size=(rows, width)))
    y = (rng.random(rows) < 0.02).astype(int)
    X[y == 1, :3] += 1.5
    return X, y


def _state(model: WarmStartClassifier) -> dict:
    return _network_state(model.classifier_)


def _assert_identical(ours: dict, theirs: dict) -> None:
    for key in ("coefs", "intercepts", "ms", "vs"):
        assert len(ours[key]) == len(theirs[key])
        for a, b in zip(ours[key], theirs[key], strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype and a.flags.c_contiguous
            np.testing.assert_array_equal(a, b, strict=True)
            assert a.tobytes() == b.tobytes()  # bits: -0.0 == 0.0 passes the line above
    assert ours["scalars"] == theirs["scalars"]
    assert ours["loss_curve"] == theirs["loss_curve"]


def test_daily_update_equals_scikit_learns_to_the_bit():
    # GIVEN the default learner's MLP and the same network trained by scikit-learn's loop
    lean, reference = _learner(DailyMLPClassifier), _learner(SklearnLoop)
    # WHEN both learn the same days: a first day, days with a last minibatch shorter
    # than the others, and one smaller than a minibatch is not allowed, so 300 rows
    for seed, rows in enumerate((2_000, 5_123, 300, 4_097)):
        X, y = _day(seed, rows)
        lean.partial_fit(X, y)
        reference.partial_fit(X, y)
        # THEN after every day all of their state is equal, and so are their checkpoints
        _assert_identical(_state(lean), _state(reference))
    for network in (reference.classifier, reference.classifier_):  # class names are in the bytes
        network.__class__ = DailyMLPClassifier
    assert dump_model(lean) == dump_model(reference)
    assert lean.classifier_.loss_curve_[-1] < lean.classifier_.loss_curve_[0]  # it learned


def test_default_learner_checkpoint_unchanged_by_the_lean_update():
    # GIVEN the registry's default learner, whose MLP member is a DailyMLPClassifier
    ours, theirs = make_learner(), make_learner()
    theirs.members[1].classifier = SklearnLoop(**theirs.members[1].classifier.get_params())
    X, y = _day(7, 3_000)
    ours.partial_fit(X, y)
    theirs.partial_fit(X, y)
    X, y = _day(8, 3_000)
    ours.partial_fit(X, y)
    theirs.partial_fit(X, y)
    # THEN the two MLP members are the same to the bit and the scores are equal
    _assert_identical(_state(ours.members_[1]), _state(theirs.members_[1]))
    np.testing.assert_array_equal(ours.predict_proba(X), theirs.predict_proba(X))


def _network_state(network: MLPClassifier) -> dict:
    optimizer = network._optimizer
    return {"coefs": network.coefs_, "intercepts": network.intercepts_,
            "ms": optimizer.ms, "vs": optimizer.vs,
            "scalars": (optimizer.t, optimizer.learning_rate, network.t_, network.n_iter_,
                        network.loss_, network.best_loss_, network._no_improvement_count),
            "loss_curve": network.loss_curve_}


def test_network_alone_equals_scikit_learn_on_awkward_days():
    # GIVEN the network without WarmStartClassifier: column-major inputs, weights that are
    # not whole numbers, and a first day smaller than a minibatch (scikit-learn's loop
    # trains it, so the lean pass continues from scikit-learn's own optimiser state)
    settings = {"hidden_layer_sizes": (32, 16), "batch_size": 256, "random_state": 0}
    ours, theirs = DailyMLPClassifier(**settings), SklearnLoop(**settings)
    rng = np.random.default_rng(11)
    # WHEN both learn days of 100 rows, exactly one minibatch, one more row than a
    # minibatch (a last minibatch of one row), two minibatches and a ragged day
    for day, rows in enumerate((100, 256, 257, 512, 1_337)):
        X, y = _day(20 + day, rows)
        assert X.flags.f_contiguous
        weights = rng.uniform(0.1, 7.0, size=rows)
        if day == 2:
            # a hidden unit that never fires and an output weight of exactly 0: the
            # masked and zero products of the backward pass
            for network in (ours, theirs):
                network.coefs_[0][:, 3] = 0.0
                network.intercepts_[0][3] = -1.0
                network.coefs_[2][5, 0] = 0.0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Got `batch_size`", UserWarning)
            ours.partial_fit(X, y, classes=[0, 1], sample_weight=weights)
            theirs.partial_fit(X, y, classes=[0, 1], sample_weight=weights)
        # THEN every weight, moment and loss is the same to the bit after every day
        _assert_identical(_network_state(ours), _network_state(theirs))
    assert ours.coefs_[0][:, 3].any()  # the dead unit's weights moved off 0 (L2 and Adam)


@pytest.mark.parametrize("settings", [{}, {"activation": "tanh"},
                                      {"random_state": np.random.RandomState(3)}])
def test_passes_learn_as_one_partial_fit_per_order(settings):
    # GIVEN two networks, and a day with two orders of its rows (WarmStartClassifier's
    # shuffles); an int seed remakes scikit-learn's own shuffle each call, a RandomState
    # continues it
    X, y = _day(31, 1_000)
    weights = np.where(y == 1, 5.0, 1.0)
    orders = [np.random.default_rng(seed).permutation(len(y)) for seed in (4, 5)]
    given, copied = (DailyMLPClassifier(**{"hidden_layer_sizes": (32, 16), "random_state": 0,
                                           **copy.deepcopy(settings)}) for _ in range(2))
    # WHEN one learns each day's passes in one call, the other one call a pass on copies
    for _ in range(2):
        given.partial_fit(X, y, classes=[0, 1], sample_weight=weights, passes=orders)
        for order in orders:
            copied.partial_fit(X[order], y[order], classes=[0, 1],
                               sample_weight=weights[order])
    # THEN they are the same to the bit (the lean pass for ReLU, scikit-learn's for tanh),
    # and the orders are not kept on the network (they would end up in the checkpoint)
    _assert_identical(_network_state(given), _network_state(copied))
    assert len(given.loss_curve_) == 4
    assert not hasattr(given, "_pass_orders")
    with pytest.raises(ValueError, match="each pass must order all 1000 rows of X; got 999"):
        given.partial_fit(X, y, classes=[0, 1], sample_weight=weights,
                          passes=[orders[0], orders[1][1:]])
    assert not hasattr(given, "_pass_orders")


@pytest.mark.parametrize("settings", [{"activation": "tanh"}, {"activation": "logistic"},
                                      {"batch_size": 10_000}, {"shuffle": False}])
def test_other_configurations_keep_scikit_learns_loop(settings):
    # A configuration the lean update does not compute is trained by scikit-learn itself.
    X, y = _day(3, 2_000)
    ours = DailyMLPClassifier(hidden_layer_sizes=(8,), random_state=0, **settings)
    plain = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, **settings)
    weights = np.where(y == 1, 5.0, 1.0)
    with np.errstate(all="ignore"):
        for _ in range(2):
            ours.partial_fit(X, y, classes=[0, 1], sample_weight=weights)
            plain.partial_fit(X, y, classes=[0, 1], sample_weight=weights)
    for a, b in zip(ours.coefs_ + ours.intercepts_, plain.coefs_ + plain.intercepts_,
                    strict=True):
        np.testing.assert_array_equal(a, b)
