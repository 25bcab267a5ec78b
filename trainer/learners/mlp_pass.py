"""One pass of `DailyMLPClassifier`'s minibatches: scikit-learn's arithmetic, fewer calls.

A 100,000-row day is ~400 minibatches of 256 rows a pass through a 26-32-16-1 network:
every array is a few thousand numbers, so the pass costs what its numpy calls cost, not
what they compute. `MinibatchPass` does the arithmetic of scikit-learn's `_backprop` and
`AdamOptimizer`, the same operations on the same operands in the same order for every
element, in fewer calls: into arrays allocated once a pass; the elementwise steps of all
layers, or of the whole parameter vector, in one call each; and the loss, which no
gradient needs, for all minibatches of the pass at once after them. Matrix products keep
scikit-learn's operand layouts (the same BLAS calls), and every sum adds the same numbers
in the same order: every weight, Adam moment and loss is the same to the bit
(tests/unit/test_mlp_update.py compares them with scikit-learn's loop).
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
        #: Row 0 the gradients, row 1 room for their squares (Adam's two moments at once).
        self.grads_and_squares = np.empty((2, self.params.size))
        self.grads = self.grads_and_squares[0]
        optimizer = network._optimizer
        #: Row 0 Adam's first moments, row 1 its second.
        self.moments = np.stack([np.concatenate([m.ravel() for m in optimizer.ms]),
                                 np.concatenate([v.ravel() for v in optimizer.vs])])
        optimizer.ms, optimizer.vs = [self.moments[0]], [self.moments[1]]
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
        X: the day's inputs (float64).
        y: their binarised labels, shape (rows, 1).
        sample_weight: their weights, shape (rows,).
        order: the rows of X, y and sample_weight in the pass' order (scikit-learn's
            shuffle, after the caller's own).
    """

    def __init__(self, network: MLPClassifier, flat: FlatParameters, X: np.ndarray,
                 y: np.ndarray, sample_weight: np.ndarray, order: np.ndarray):
        self.network, self.flat, self.X, self.order = network, flat, X, order
        rows = X.shape[0]
        self.size = min(network.batch_size, rows)
        #: Minibatch bounds, as scikit-learn's `gen_batches` (the last one may be short).
        self.starts = range(0, rows, self.size)
        # Labels and weights are a column each: gathered once a pass, sliced per minibatch.
        # The labels as floats: scikit-learn's bool labels meet float64 arrays in every
        # operation they enter, so they are converted there anyway, exactly.
        self.y = y.take(order, axis=0).astype(np.float64)
        self.weights = sample_weight.take(order).reshape(-1, 1)
        self.weight_sums = self._minibatch_sums(self.weights)
        units = [coef.shape[1] for coef in network.coefs_]
        self.activations = [np.empty((self.size, n)) for n in units[:-1]]
        #: The output layer of every minibatch, kept for the pass' losses.
        self.probabilities = np.empty((rows, units[-1]))
        self.deltas = [np.empty((self.size, n)) for n in units]
        self.firing = [np.empty((self.size, n), dtype=bool) for n in units[:-1]]
        self.keep_bits = [np.empty((self.size, n), dtype=np.int64) for n in units[:-1]]
        self.coef_ravels = [coef.ravel() for coef in network.coefs_]  # views
        self.penalties = np.empty(len(self.starts))
        self.scratch = np.empty_like(flat.params), np.empty_like(flat.params)
        optimizer = network._optimizer
        self.betas = np.array([[optimizer.beta_1], [optimizer.beta_2]])
        self.one_minus_betas = np.array([[1 - optimizer.beta_1], [1 - optimizer.beta_2]])

    def run(self) -> np.float64:
        """Every minibatch's gradients and Adam step; the losses summed as scikit-learn does.

        Returns:
            Each minibatch's loss times its rows, summed in order (`accumulated_loss`).
        """
        for index, start in enumerate(self.starts):
            self._gradients(index, start, min(start + self.size, len(self.order)))
            self._adam_step()
        accumulated_loss = 0.0
        for index, loss in enumerate(self._losses()):
            rows = min(self.size, len(self.order) - self.starts[index])
            accumulated_loss += loss * rows
        return np.float64(accumulated_loss)

    def _minibatch_sums(self, column: np.ndarray) -> np.ndarray:
        """Each minibatch's `column[start:stop].sum(axis=0)`, one value a minibatch.

        The full minibatches as the rows of one (minibatches, size) array, the last one on
        its own: numpy adds a contiguous run the same way (pairwise) in either shape.
        """
        full = len(column) // self.size * self.size
        sums = [np.add.reduce(column[:full].reshape(-1, self.size), axis=1)]
        if full < len(column):
            sums.append(np.add.reduce(column[full:], axis=0))
        return np.concatenate(sums)

    def _gradients(self, index: int, start: int, stop: int) -> None:
        """Gradients of rows `order[start:stop]` into `flat.grads`.

        scikit-learn's `_backprop` without its loss (`_losses`, after the pass): forward
        through the ReLU layers to the logistic output, then the deltas back.
        """
        n, network, flat = stop - start, self.network, self.flat
        coefs, last = network.coefs_, len(network.coefs_) - 1
        X = self.X.take(self.order[start:stop], axis=0)  # C-ordered, as X[rows, ...]
        inputs = [X] + [a[:n] for a in self.activations]
        outputs = inputs[1:] + [self.probabilities[start:stop]]
        for layer, (coef, intercept) in enumerate(zip(coefs, network.intercepts_, strict=True)):
            out = outputs[layer]
            np.matmul(inputs[layer], coef, out=out)
            out += intercept
            if layer != last:
                np.maximum(out, 0, out=out)
        probability = expit(out, out=out)
        # The L2 term of this minibatch's loss, with the weights it saw.
        penalty = 0
        for coef in self.coef_ravels:
            penalty += np.dot(coef, coef)
        self.penalties[index] = penalty

        delta = self.deltas[last][:n]
        np.subtract(probability, self.y[start:stop], out=delta)
        delta *= self.weights[start:stop]
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
        flat.grads /= self.weight_sums[index]

    def _zero_where_not_firing(self, delta: np.ndarray, activation: np.ndarray,
                               hidden: int) -> None:
        """scikit-learn's ReLU derivative: `delta[activation == 0] = 0`, without branches.

        ANDing the bits with all ones (unit firing) or all zeros (not) keeps a value or
        writes +0.0, exactly what the masked assignment does, at half its cost.
        """
        rows = delta.shape[0]
        firing = np.not_equal(activation, 0, out=self.firing[hidden][:rows])
        keep = self.keep_bits[hidden][:rows]
        keep[...] = firing  # 0 or 1, then 0 or all ones
        np.negative(keep, out=keep)
        bits = delta.view(np.int64)
        np.bitwise_and(bits, keep, out=bits)

    def _losses(self) -> np.ndarray:
        """Every minibatch's loss, as `_backprop` computes it, for the pass at once.

        binary_log_loss, -np.average(xlogy(y, p) + xlogy(1 - y, 1 - p), weights, axis=0)
        with p clipped, spelled out as numpy's `average` computes it, plus the L2 term:
        elementwise over all rows, then summed minibatch by minibatch.
        """
        probability = self.probabilities
        eps = np.finfo(probability.dtype).eps
        clipped = np.clip(probability, eps, 1 - eps)
        other = np.subtract(1, clipped)
        xlogy(1 - self.y, other, out=other)  # 1 - y is exact: 1 - 1.0 and 1 - 0.0
        xlogy(self.y, clipped, out=clipped)
        losses = np.add(clipped, other, out=clipped)
        losses *= self.weights
        average = self._minibatch_sums(losses) / self.weight_sums
        loss = -(average + 0.0)  # `-average.sum()` of one value: numpy's sum starts at 0.0
        loss += (0.5 * self.network.alpha) * self.penalties / self.weight_sums
        return loss

    def _adam_step(self) -> None:
        """`AdamOptimizer.update_params` on the flat arrays, in place.

        Its `_get_updates` term for term: m = beta_1 * m + (1 - beta_1) * grad,
        v = beta_2 * v + (1 - beta_2) * grad**2, the bias-corrected rate, and
        param += -rate * m / (sqrt(v) + epsilon).
        """
        optimizer, flat = self.network._optimizer, self.flat
        m, v = flat.moments
        first, second = self.scratch
        optimizer.t += 1
        # Both moments in one call each: rows (m, v) times (beta_1, beta_2), plus rows
        # (grad, grad**2) times (1 - beta_1, 1 - beta_2). The gradients are not needed
        # after this step (the next minibatch writes all of them).
        np.multiply(flat.moments, self.betas, out=flat.moments)
        np.square(flat.grads, out=flat.grads_and_squares[1])  # grad**2 is numpy's square
        np.multiply(flat.grads_and_squares, self.one_minus_betas,
                    out=flat.grads_and_squares)
        flat.moments += flat.grads_and_squares
        optimizer.learning_rate = (optimizer.learning_rate_init
                                   * np.sqrt(1 - optimizer.beta_2**optimizer.t)
                                   / (1 - optimizer.beta_1**optimizer.t))
        np.sqrt(v, out=first)
        first += optimizer.epsilon
        np.multiply(m, -optimizer.learning_rate, out=second)
        second /= first
        flat.params += second
