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
it is (ReLU hidden layers, one logistic output, Adam, weighted rows, float64) itself
(`trainer.learners.mlp_pass`), with the same arithmetic on every element, so every weight,
moment and loss is the same to the bit (tests/unit/test_mlp_update.py compares the two on
every step); any other configuration keeps scikit-learn's loop. A day's passes come in one
`partial_fit` (`passes=`, one order of the rows each), so the day is checked once and never
copied in each pass' order.
"""

from __future__ import annotations

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer
from sklearn.utils import check_random_state, shuffle

from trainer.learners.mlp_pass import FlatParameters, MinibatchPass

_ADAM_FIELDS = ("learning_rate_init", "learning_rate", "beta_1", "beta_2", "epsilon", "t")

#: `loss_curve_` entries a checkpoint keeps. scikit-learn appends one per pass and reads
#: only the last (no-improvement count); kept whole, it grew by three numpy scalars a day,
#: each a file in the skops archive (577 files at day 180 against 151 at day 38), and
#: every step paid for writing and reading them.
LOSS_CURVE_KEPT = 30


class DailyMLPClassifier(MLPClassifier):
    """`MLPClassifier` (Adam solver) that checkpoints its optimiser as plain data.

    After each pass (a `partial_fit`, or each of its `passes`), weights and Adam moments
    below the smallest normal float are set to 0. The L2 penalty and the moment decay
    shrink the weights of units that no longer fire geometrically, and after months they
    sit among subnormal floats, where every operation is ~100x slower: 128 such values of
    ~1,000 made a default-size day's MLP update 0.13 s at day 180 against 0.07 s at day 38.
    Zeroing them changes no sum they enter (each is below the last bit of anything it is
    added to).
    """

    #: `partial_fit` takes `passes` (`WarmStartClassifier` gives its shuffles there).
    takes_passes = True

    def partial_fit(self, X, y, *args, passes=None, **kwargs):
        """scikit-learn's `partial_fit`, then subnormal weights and moments set to 0.

        Args:
            X: the inputs.
            y: the labels.
            *args: scikit-learn's (`classes`, `sample_weight`).
            passes: orders of the rows, one a pass: learn as from one `partial_fit` per
                order, in turn, of `X[order]`, `y[order]` and `sample_weight[order]`,
                without copying the rows in each order (the minibatches gather their rows
                anyway) or checking the same inputs again (scikit-learn's checks do not
                depend on the rows' order).
            **kwargs: scikit-learn's.
        """
        orders = None if passes is None else list(passes)
        for order in orders or ():
            if len(order) != X.shape[0]:
                raise ValueError(f"each pass must order all {X.shape[0]} rows of X; "
                                 f"got {len(order)}")
        self._pass_orders = orders
        try:
            super().partial_fit(X, y, *args, **kwargs)
        finally:
            del self._pass_orders
        self._zero_subnormals()
        return self

    def _zero_subnormals(self) -> None:
        optimizer = getattr(self, "_optimizer", None)
        for values in (*self.coefs_, *self.intercepts_,
                       *(optimizer.ms if optimizer is not None else ()),
                       *(optimizer.vs if optimizer is not None else ())):
            values[np.abs(values) < np.finfo(values.dtype).tiny] = 0.0

    def _fit_stochastic(self, X, y, sample_weight, activations, deltas, coef_grads,
                        intercept_grads, layer_units, incremental):
        """The pass of a `partial_fit`, or each of the `passes` given to it, in turn."""
        orders = getattr(self, "_pass_orders", None)
        for index, order in enumerate(orders or [None]):
            if index:
                # What one `partial_fit` a pass does between passes: scikit-learn's check of
                # the weights, ours, then scikit-learn's random state made again from
                # `random_state` (`_fit`; an int seed gives each pass the same shuffle).
                if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
                    raise ValueError("Solver produced non-finite parameter weights. The "
                                     "input data may contain large values and need to be "
                                     "preprocessed.")
                self._zero_subnormals()
                self._random_state = check_random_state(self.random_state)
            self._one_pass(X, y, sample_weight, activations, deltas, coef_grads,
                           intercept_grads, layer_units, incremental, order)

    def _one_pass(self, X, y, sample_weight, activations, deltas, coef_grads,
                  intercept_grads, layer_units, incremental, rows):
        """One pass of minibatches over `X[rows]` without scikit-learn's per-batch checks.

        Anything but the daily update's configuration keeps scikit-learn's loop.
        """
        if not self._lean_update_applies(X, sample_weight, incremental):
            if rows is not None:
                X, y = X[rows], y[rows]
                sample_weight = None if sample_weight is None else sample_weight[rows]
            return super()._fit_stochastic(X, y, sample_weight, activations, deltas,
                                           coef_grads, intercept_grads, layer_units,
                                           incremental)
        if not hasattr(self, "_optimizer"):
            self._optimizer = AdamOptimizer(self.coefs_ + self.intercepts_,
                                            self.learning_rate_init, self.beta_1,
                                            self.beta_2, self.epsilon)
        n_samples = X.shape[0]
        order = shuffle(np.arange(n_samples, dtype=int), random_state=self._random_state)
        if rows is not None:  # scikit-learn's shuffle of X[rows] is X[rows[order]]
            order = rows[order]
        flat = FlatParameters(self)
        self.n_iter_ = 0
        # scikit-learn's minibatches and Adam steps (`gen_batches`, `update_params`), the
        # Adam step on all parameters at once: every operation is elementwise, so one
        # array gives each element what six arrays give it.
        accumulated_loss = MinibatchPass(self, flat, X, y, sample_weight, order).run()
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
        """Whether this is the configuration `MinibatchPass` computes exactly."""
        return (incremental and self.solver == "adam" and self.activation == "relu"
                and self.out_activation_ == "logistic" and self.loss == "log_loss"
                and self.n_outputs_ == 1 and self.shuffle and not self.early_stopping
                and not self.verbose and sample_weight is not None
                and isinstance(X, np.ndarray) and X.dtype == np.float64
                and isinstance(self.batch_size, int)
                and 1 <= self.batch_size <= X.shape[0]
                and type(getattr(self, "_optimizer", None)) in (AdamOptimizer, type(None)))

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

