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

A booster's few rows go through LightGBM's single-row fast prediction
(`SingleRowBooster`: ``LGBM_BoosterPredictForMatSingleRowFast``, whose configuration is
built once), not ``Booster.predict``, which converts its input, builds a predictor and
enters a thread pool on every call (~0.1 ms a call). Each row is predicted by the same
trees in the same order either way, so the values are the same (the tests compare them).
"""

from __future__ import annotations

import ctypes
import threading
import weakref
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
        return _boosted(model)
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


#: At most this many rows go through the single-row path (one C call each).
SINGLE_ROWS = 8


class SingleRowBooster:
    """A LightGBM booster's predictions of a few rows, one fast C call a row.

    Args:
        booster: The ``lightgbm.Booster`` (kept alive as long as this object).
        inputs: Its number of input columns.
        contributions: Predict the per-input contributions (``pred_contrib``: inputs + 1
            values a row, the last the expected value) instead of the probability.
    """

    def __init__(self, booster: Any, inputs: int, *, contributions: bool = False):
        from lightgbm import basic

        self._lib, self._check = basic._LIB, basic._safe_call
        self._handle = ctypes.c_void_p()
        kind = basic._C_API_PREDICT_CONTRIB if contributions else basic._C_API_PREDICT_NORMAL
        self._check(self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(kind), ctypes.c_int(0), ctypes.c_int(-1),
            ctypes.c_int(basic._C_API_DTYPE_FLOAT64), ctypes.c_int32(inputs),
            ctypes.c_char_p(b""), ctypes.byref(self._handle)))
        # the configuration holds the booster: free it first, the booster after
        weakref.finalize(self, _free, self._lib, self._handle, booster)
        self.booster = booster
        self.width = inputs + 1 if contributions else 1
        self._contributions = contributions
        self._length = ctypes.c_int64()
        # one configuration keeps one output buffer: calls from threads take turns
        self._lock = threading.Lock()

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Predictions of the rows of `X` (rows x width; 1-D for probabilities)."""
        if len(X) > SINGLE_ROWS:
            out = np.asarray(self.booster.predict(np.asarray(X, dtype=np.float64),
                                                  pred_contrib=self._contributions))
            return out
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty((len(X), self.width))
        pointer = ctypes.POINTER(ctypes.c_double)
        with self._lock:
            for row in range(len(X)):
                # a row repeating the previous one (one transaction padded to a scored
                # block, `trainer.serving.inputs`): the same input, the same output
                if row and X[row].tobytes() == X[row - 1].tobytes():
                    out[row] = out[row - 1]
                    continue
                self._check(self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                    self._handle, X[row].ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._length), out[row].ctypes.data_as(pointer)))
        return out if self._contributions else out[:, 0]


def _free(lib: Any, handle: ctypes.c_void_p, booster: Any) -> None:
    """Free a fast configuration (`booster`, its owner, is released after it)."""
    lib.LGBM_FastConfigFree(handle)


def _boosted(model: Any) -> Probabilities:
    """A booster learner's ``predict_proba`` with `SingleRowBooster` for a few rows."""
    predict = SingleRowBooster(model._booster(), model._booster().num_feature())

    def boosted(X: np.ndarray) -> np.ndarray:
        fraud = model._calibrate(predict(X))
        return np.column_stack([1.0 - fraud, fraud])
    return boosted
