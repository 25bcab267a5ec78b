"""A small MLP whose `partial_fit` state survives a skops checkpoint.

scikit-learn's `MLPClassifier` keeps its Adam optimiser (step count and moment
estimates) in `_optimizer`, an `AdamOptimizer` that skops does not trust by default. We
do not add scikit-learn internals to `TRUSTED_TYPES`; instead this subclass stores the
optimiser's state as plain numbers and arrays and rebuilds the optimiser on load, so a
day's training continues exactly where the previous checkpoint stopped.
"""

from __future__ import annotations

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

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
