"""One pass of `DailyMLPClassifier`'s minibatches: scikit-learn's arithmetic, fewer calls.

A 100,000-row day is ~400 minibatches of 256 rows a pass through a 26-32-16-1 network:
every array is a few thousand numbers, so the pass costs what its numpy calls cost, not
what they compute. `MinibatchPass` makes the calls scikit-learn's `_backprop` and
`AdamOptimizer` make, on the same operands and in the same order for every element, but
into arrays allocated once a pass, with the elementwise steps of several layers or of the
whole parameter vector done in one call (elementwise, so each element sees the same
operations). Matrix products keep scikit-learn's operand layouts (the same BLAS calls) and
sums keep their shapes (the same summation order): every weight, Adam moment and loss is
the same to the bit (tests/unit/test_mlp_update.py compares them with scikit-learn's loop).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, xlogy
from sklearn.neural_network import MLPClassifier


class FlatParameters:
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
        #: Where the weight matrices end in the flat arrays (the intercepts follow).
        self.coefs_end = int(self.bounds[layers])

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


class MinibatchPass:
    """One shuffled pass of a ReLU network with a logistic output over weighted rows.

    Args:
        network: the classifier; its `coefs_` and `intercepts_` must be views of `flat`.
        flat: its parameters, gradients and Adam moments as flat arrays.
        X: the day's inputs (float64), in scikit-learn's row order.
        y: the binarised labels, shape (rows, 1).
        sample_weight: the rows' weights, shape (rows,).
        order: the pass' row order (scikit-learn's shuffle).
    """

    def __init__(self, network: MLPClassifier, flat: FlatParameters, X: np.ndarray,
                 y: np.ndarray, sample_weight: np.ndarray, order: np.ndarray):
        self.network, self.flat, self.X, self.order = network, flat, X, order
        # Labels and weights are a column each: gathered once a pass, sliced per minibatch.
        # The labels as floats: scikit-learn's bool labels meet float64 arrays in every
        # operation they enter, so they are converted there anyway, exactly.
        self.y = y.take(order, axis=0).astype(np.float64)
        self.not_y = 1 - self.y  # exact: 1 - 1.0 and 1 - 0.0
        self.weights = sample_weight.take(order)
        batch = min(network.batch_size, X.shape[0])
        units = [coef.shape[1] for coef in network.coefs_]
        self.activations = [np.empty((batch, n)) for n in units]
        self.deltas = [np.empty((batch, n)) for n in units]
        self.firing = [np.empty((batch, n), dtype=bool) for n in units[:-1]]
        self.keep_bits = [np.empty((batch, n), dtype=np.int64) for n in units[:-1]]
        self.losses = np.empty((batch, 1)), np.empty((batch, 1))
        self.coef_ravels = [coef.ravel() for coef in network.coefs_]  # views
        self.scratch = np.empty_like(flat.params), np.empty_like(flat.params)

    def minibatch(self, start: int, stop: int) -> float:
        """Gradients of rows `order[start:stop]` into `flat.grads`; returns their loss.

        scikit-learn's `_backprop`: forward through the ReLU layers to the logistic
        output, the binary log loss averaged with the weights plus the L2 term, then the
        deltas back through the layers.
        """
        n, network, flat = stop - start, self.network, self.flat
        coefs, last = network.coefs_, len(network.coefs_) - 1
        X = self.X.take(self.order[start:stop], axis=0)  # C-ordered, as X[rows, ...]
        inputs = [X] + [a[:n] for a in self.activations[:-1]]
        for layer, (coef, intercept) in enumerate(zip(coefs, network.intercepts_, strict=True)):
            out = self.activations[layer][:n]
            np.matmul(inputs[layer], coef, out=out)
            out += intercept
            if layer != last:
                np.maximum(out, 0, out=out)
        probability = expit(out, out=out)

        # binary_log_loss: -np.average(xlogy(y, p) + xlogy(1 - y, 1 - p), weights, axis=0)
        # with p clipped, spelled out as numpy's `average` computes it.
        y, weights = self.y[start:stop], self.weights[start:stop]
        weights_column = weights.reshape(-1, 1)
        clipped, other = self.losses[0][:n], self.losses[1][:n]
        eps = np.finfo(probability.dtype).eps
        np.clip(probability, eps, 1 - eps, out=clipped)
        np.subtract(1, clipped, out=other)
        xlogy(self.not_y[start:stop], other, out=other)
        xlogy(y, clipped, out=clipped)
        losses = np.add(clipped, other, out=clipped)
        np.multiply(losses, weights_column, out=losses)
        average = np.add.reduce(losses, axis=0) / np.add.reduce(weights_column, axis=0)
        loss = -average.sum()
        penalty = 0
        for coef in self.coef_ravels:
            penalty += np.dot(coef, coef)
        sw_sum = weights.sum()
        loss += (0.5 * network.alpha) * penalty / sw_sum

        delta = self.deltas[last][:n]
        np.subtract(probability, y, out=delta)
        delta *= weights_column
        for layer in range(last, -1, -1):
            np.matmul(inputs[layer].T, delta, out=flat.coef_grads[layer])
            np.add.reduce(delta, axis=0, out=flat.intercept_grads[layer])
            if layer:
                below = self.deltas[layer - 1][:n]
                np.matmul(delta, coefs[layer].T, out=below)
                self._zero_where_not_firing(below, inputs[layer], layer - 1)
                delta = below
        # Each layer's (grad + alpha * coef) / sw_sum and intercept sum / sw_sum, for all
        # layers at once: the same two or one operations on every element.
        coef_grads = flat.grads[:flat.coefs_end]
        penalty_grads = self.scratch[0][:flat.coefs_end]
        np.multiply(flat.params[:flat.coefs_end], network.alpha, out=penalty_grads)
        coef_grads += penalty_grads
        flat.grads /= sw_sum
        return loss

    def _zero_where_not_firing(self, delta: np.ndarray, activation: np.ndarray,
                               hidden: int) -> None:
        """scikit-learn's ReLU derivative: `delta[activation == 0] = 0`, without branches.

        ANDing the bits with all ones (unit firing) or all zeros (not) keeps a value or
        writes +0.0, exactly what the masked assignment does, at half its cost.
        """
        rows = delta.shape[0]
        firing = np.not_equal(activation, 0, out=self.firing[hidden][:rows])
        keep = np.negative(firing, dtype=np.int64, out=self.keep_bits[hidden][:rows])
        bits = delta.view(np.int64)
        np.bitwise_and(bits, keep, out=bits)

    def adam_step(self) -> None:
        """`AdamOptimizer.update_params` on the flat arrays, in place.

        Its `_get_updates` term for term: m = beta_1 * m + (1 - beta_1) * grad,
        v = beta_2 * v + (1 - beta_2) * grad**2, the bias-corrected rate, and
        param += -rate * m / (sqrt(v) + epsilon).
        """
        optimizer, flat = self.network._optimizer, self.flat
        m, v, grads = optimizer.ms[0], optimizer.vs[0], flat.grads
        first, second = self.scratch
        optimizer.t += 1
        np.multiply(m, optimizer.beta_1, out=m)
        np.multiply(grads, 1 - optimizer.beta_1, out=first)
        m += first
        np.multiply(v, optimizer.beta_2, out=v)
        np.square(grads, out=first)  # grad**2 is numpy's square
        first *= 1 - optimizer.beta_2
        v += first
        optimizer.learning_rate = (optimizer.learning_rate_init
                                   * np.sqrt(1 - optimizer.beta_2**optimizer.t)
                                   / (1 - optimizer.beta_1**optimizer.t))
        np.sqrt(v, out=first)
        first += optimizer.epsilon
        np.multiply(m, -optimizer.learning_rate, out=second)
        second /= first
        flat.params += second
