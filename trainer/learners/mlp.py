"""A small MLP whose `partial_fit` state survives a skops checkpoint.

scikit-learn's `MLPClassifier` keeps its Adam optimiser (step count and moment
estimates) in `_optimizer`, an `AdamOptimizer` that skops does not trust by default. We
do not add scikit-learn internals to `TRUSTED_TYPES`; instead this subclass stores the
optimiser's state as plain numbers and arrays and rebuilds the optimiser on load, so a
day's training continues exactly where the previous checkpoint stopped.

Its daily update also costs a fraction of scikit-learn's own: a 100,000-row day is ~400
minibatches of 256 rows a pass, and scikit-learn spends ~0.8 ms of input checks and
array-API dispatch on each (`_safe_indexing`, `safe_sparse_dot`, `get_namespace`) for a
few microseconds of arithmetic. `DailyMLPClassifier` runs the minibatches of the network
it is (ReLU hidden layers, one logistic output, Adam, weighted rows) with the same numpy
and SciPy operations in the same order on the same arrays, so every weight, moment and
loss is the same to the bit (tests/unit/test_mlp_update.py compares the two on every
step); any other configuration keeps scikit-learn's loop.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, xlogy
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer
from sklearn.utils import gen_batches, shuffle

_ADAM_FIELDS = ("learning_rate_init", "learning_rate", "beta_1", "beta_2", "epsilon", "t")

#: `loss_curve_` entries a checkpoint keeps. scikit-learn appends one per pass and reads
#: only the last (no-improvement count); kept whole, it grew by three numpy scalars a day,
#: each a file in the skops archive (577 files at day 180 against 151 at day 38), and
#: every step paid for writing and reading them.
LOSS_CURVE_KEPT = 30


class DailyMLPClassifier(MLPClassifier):
    """`MLPClassifier` (Adam solver) that checkpoints its optimiser as plain data.

    After each `partial_fit`, weights and Adam moments below the smallest normal float are
    set to 0. The L2 penalty and the moment decay shrink the weights of units that no
    longer fire geometrically, and after months they sit among subnormal floats, where
    every operation is ~100x slower: 128 such values of ~1,000 made a default-size day's
    MLP update 0.13 s at day 180 against 0.07 s at day 38. Zeroing them changes no sum
    they enter (each is below the last bit of anything it is added to).
    """

    def partial_fit(self, X, y, *args, **kwargs):
        """scikit-learn's `partial_fit`, then subnormal weights and moments set to 0."""
        super().partial_fit(X, y, *args, **kwargs)
        optimizer = getattr(self, "_optimizer", None)
        for values in (*self.coefs_, *self.intercepts_,
                       *(optimizer.ms if optimizer is not None else ()),
                       *(optimizer.vs if optimizer is not None else ())):
            values[np.abs(values) < np.finfo(values.dtype).tiny] = 0.0
        return self

    def _fit_stochastic(self, X, y, sample_weight, activations, deltas, coef_grads,
                        intercept_grads, layer_units, incremental):
        """One pass of minibatches (`partial_fit`) without scikit-learn's per-batch checks.

        Anything but the daily update's configuration keeps scikit-learn's loop.
        """
        if not self._lean_update_applies(X, sample_weight, incremental):
            return super()._fit_stochastic(X, y, sample_weight, activations, deltas,
                                           coef_grads, intercept_grads, layer_units,
                                           incremental)
        if not hasattr(self, "_optimizer"):
            self._optimizer = AdamOptimizer(self.coefs_ + self.intercepts_,
                                            self.learning_rate_init, self.beta_1,
                                            self.beta_2, self.epsilon)
        n_samples = X.shape[0]
        order = shuffle(np.arange(n_samples, dtype=int), random_state=self._random_state)
        flat = _FlatParameters(self)
        self.n_iter_ = 0
        accumulated_loss = 0.0
        for batch in gen_batches(n_samples, self.batch_size):
            rows = order[batch]
            loss = self._minibatch_gradients(X[rows, ...], y[rows], sample_weight[rows],
                                             flat.coef_grads, flat.intercept_grads)
            accumulated_loss += loss * (batch.stop - batch.start)
            # scikit-learn's own Adam step, on all parameters at once: every operation
            # is elementwise, so one array gives each element what six arrays give it.
            self._optimizer.update_params([flat.params], [flat.grads])
        flat.release(self)
        self.n_iter_ += 1
        self.loss_ = accumulated_loss / n_samples
        self.t_ += n_samples
        self.loss_curve_.append(self.loss_)
        self._update_no_improvement_count(False, None, None, None)
        self._optimizer.iteration_ends(self.t_)
        # Adam always stops here, and `partial_fit` is one pass anyway: nothing to reset.
        if self._no_improvement_count > self.n_iter_no_change:
            self._optimizer.trigger_stopping("", self.verbose)

    def _lean_update_applies(self, X, sample_weight, incremental) -> bool:
        """Whether this is the configuration `_minibatch_gradients` computes exactly."""
        return (incremental and self.solver == "adam" and self.activation == "relu"
                and self.out_activation_ == "logistic" and self.loss == "log_loss"
                and self.n_outputs_ == 1 and self.shuffle and not self.early_stopping
                and not self.verbose and sample_weight is not None
                and isinstance(X, np.ndarray) and isinstance(self.batch_size, int)
                and 1 <= self.batch_size <= X.shape[0]
                and type(getattr(self, "_optimizer", None)) in (AdamOptimizer, type(None)))

    def _minibatch_gradients(self, X, y, sample_weight, coef_grads, intercept_grads):
        """One minibatch's weighted loss, its gradients written into the given arrays.

        As scikit-learn's `_backprop`: forward through the ReLU layers to the logistic
        output, the binary log loss averaged with the weights (numpy's `average`,
        spelled out) plus the L2 term, then the deltas back. Each array operation is the
        one scikit-learn performs, on the same operands, so the results are identical,
        not merely close.
        """
        last = self.n_layers_ - 2
        activations = [X]
        for i in range(last + 1):
            out = activations[i] @ self.coefs_[i]
            out += self.intercepts_[i]
            if i != last:
                np.maximum(out, 0, out=out)
            activations.append(out)
        expit(activations[-1], out=activations[-1])
        probability = activations[-1]
        eps = np.finfo(probability.dtype).eps
        clipped = np.clip(probability, eps, 1 - eps)
        losses = xlogy(y, clipped) + xlogy(1 - y, 1 - clipped)
        weights = sample_weight.reshape(-1, 1)
        average = (np.multiply(losses, weights, dtype=np.float64).sum((0,))
                   / weights.sum(axis=(0,), dtype=np.float64))
        loss = -average.sum()
        penalty = 0
        for coef in self.coefs_:
            flat = coef.ravel()
            penalty += np.dot(flat, flat)
        sw_sum = sample_weight.sum()
        loss += (0.5 * self.alpha) * penalty / sw_sum
        delta = probability - y
        delta *= weights
        for layer in range(last, -1, -1):
            grad = activations[layer].T @ delta
            grad += self.alpha * self.coefs_[layer]
            grad /= sw_sum
            coef_grads[layer][...] = grad
            intercept_grads[layer][...] = np.sum(delta, axis=0) / sw_sum
            if layer:
                delta = delta @ self.coefs_[layer].T
                np.putmask(delta, activations[layer] == 0, 0)
        return loss

    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ returns the live __dict__
        if "loss_curve_" in state:  # Python floats: stored in the schema, not as files
            state["loss_curve_"] = [float(v) for v in state["loss_curve_"][-LOSS_CURVE_KEPT:]]
        optimizer = state.pop("_optimizer", None)
        if optimizer is not None:
            if not isinstance(optimizer, AdamOptimizer):
                raise TypeError(f"only the Adam solver is checkpointed; got {type(optimizer)}")
            state["adam_state_"] = {name: getattr(optimizer, name) for name in _ADAM_FIELDS}
            state["adam_ms_"] = list(optimizer.ms)
            state["adam_vs_"] = list(optimizer.vs)
        return state

    def __setstate__(self, state):
        state = dict(state)
        adam = state.pop("adam_state_", None)
        ms, vs = state.pop("adam_ms_", None), state.pop("adam_vs_", None)
        super().__setstate__(state)
        if adam is not None:
            optimizer = AdamOptimizer(ms, adam["learning_rate_init"], adam["beta_1"],
                                      adam["beta_2"], adam["epsilon"])
            optimizer.t, optimizer.learning_rate = adam["t"], adam["learning_rate"]
            optimizer.ms, optimizer.vs = list(ms), list(vs)
            self._optimizer = optimizer


class _FlatParameters:
    """The network's parameters, gradients and Adam moments as one array each, for a pass.

    `coefs_`, `intercepts_` and the gradients are views into them while the pass runs;
    `release` gives the network and its optimiser arrays of their own again, shaped as
    scikit-learn keeps them.
    """

    def __init__(self, network: MLPClassifier):
        arrays = network.coefs_ + network.intercepts_
        self.shapes = [a.shape for a in arrays]
        self.bounds = np.cumsum([0] + [a.size for a in arrays])
        self.params = np.concatenate([a.ravel() for a in arrays])
        self.grads = np.empty_like(self.params)
        optimizer = network._optimizer
        optimizer.ms = [np.concatenate([m.ravel() for m in optimizer.ms])]
        optimizer.vs = [np.concatenate([v.ravel() for v in optimizer.vs])]
        layers = len(network.coefs_)
        params, grads = self._views(self.params), self._views(self.grads)
        network.coefs_[:], network.intercepts_[:] = params[:layers], params[layers:]
        self.coef_grads, self.intercept_grads = grads[:layers], grads[layers:]

    def _views(self, flat: np.ndarray) -> list[np.ndarray]:
        return [flat[start:end].reshape(shape) for start, end, shape
                in zip(self.bounds[:-1], self.bounds[1:], self.shapes, strict=True)]

    def release(self, network: MLPClassifier) -> None:
        """Copy the parameters and moments back into arrays of their own."""
        layers = len(network.coefs_)
        params = [view.copy() for view in self._views(self.params)]
        network.coefs_[:], network.intercepts_[:] = params[:layers], params[layers:]
        optimizer = network._optimizer
        optimizer.ms = [view.copy() for view in self._views(optimizer.ms[0])]
        optimizer.vs = [view.copy() for view in self._views(optimizer.vs[0])]
