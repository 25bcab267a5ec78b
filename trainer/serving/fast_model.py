"""A checkpoint's fraud probabilities without scikit-learn's per-call input checks.

One transaction's inputs are a 1 x n array the service built itself (finite float64, the
learner's columns in order), yet ``predict_proba`` re-validates them on every call:
scikit-learn's ``validate_data``/``check_is_fitted`` in the scaler and again in the MLP
cost ~0.4 ms, five times the arithmetic. `probabilities` returns, for the learners it
knows, a function doing the same operations in the same order on the same shapes (the
scaler's subtraction and division, the MLP's own ``_forward_pass_fast`` without its
check, the booster's ``predict_proba``, the ensemble's weighted ``tensordot``), so the
results are bit for bit those of ``predict_proba`` (tests/unit/test_serve_fast_model.py
compares them on every learner). A learner it does not know keeps ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from trainer.learners.boosting import ContinuedBoostingClassifier, WindowBoostingClassifier
from trainer.learners.ensemble import AveragedClassifier
from trainer.model import WarmStartClassifier

#: X (rows x inputs, C-contiguous float64) -> class probabilities (rows x 2).
Probabilities = Callable[[np.ndarray], np.ndarray]


def probabilities(model: Any) -> Probabilities:
    """``model.predict_proba`` for valid float64 inputs, without the per-call checks."""
    fast = _unchecked(model)
    return fast if fast is not None else model.predict_proba


def _unchecked(model: Any) -> Probabilities | None:
    if isinstance(model, AveragedClassifier):
        members = [_unchecked(member) or member.predict_proba for member in model.members_]
        weights = np.asarray(model.weights if model.weights is not None
                             else [1.0] * len(members), dtype=np.float64)
        share = weights / weights.sum()

        def averaged(X: np.ndarray) -> np.ndarray:
            return np.tensordot(share, np.stack([member(X) for member in members]), axes=1)
        return averaged
    if isinstance(model, WindowBoostingClassifier | ContinuedBoostingClassifier):
        return model.predict_proba  # LightGBM's own predict: no scikit-learn check in it
    if (isinstance(model, WarmStartClassifier) and type(model.scaler_) is StandardScaler
            and isinstance(model.classifier_, MLPClassifier)):
        return _scaled_mlp(model.scaler_, model.classifier_)
    return None


def _scaled_mlp(scaler: StandardScaler, mlp: MLPClassifier) -> Probabilities | None:
    """StandardScaler.transform then MLPClassifier.predict_proba, for one output unit."""
    if mlp.n_outputs_ != 1:
        return None
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None

    def scaled(X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=np.float64, order="C")  # transform works on a copy, too
        if mean is not None:
            X -= mean
        if scale is not None:
            X /= scale
        fraud = mlp._forward_pass_fast(X, check_input=False).ravel()
        return np.vstack([1 - fraud, fraud]).T
    return scaled
