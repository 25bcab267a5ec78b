"""The model inputs and scores of served transactions, by the arrival path's own functions.

A transaction's inputs come from ``compute.features_of_target`` and, for a learner that
reads them, ``profiles.extra_features``: the functions an arrived day's features come
from, over rows holding every row its windows read (its card's and its terminal's). One
transaction (`one_row_inputs`) and a batch (`rows_inputs`, one call over the whole
context with every target selected) take the same path, so a batch's inputs equal those
of its rows sent one by one in time order.
"""

from __future__ import annotations

import numpy as np

from trainer.features.compute import features_of_target
from trainer.features.profiles import extra_features
from trainer.serving.head import Head

#: Rows a score is computed in at least. The MLP's layers are BLAS matrix products whose
#: result for one row can differ in the last bit between a 1-row product and a day's
#: (a different kernel); inside a block of 4 or more rows it is the day's on this
#: machine's OpenBLAS (the skew test counts the scores equal bit for bit).
MIN_SCORED_ROWS = 4


def model_scores(head: Head, X: np.ndarray) -> np.ndarray:
    """Fraud probabilities of the rows of `X`, computed on at least ``MIN_SCORED_ROWS`` rows."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    if 0 < len(X) < MIN_SCORED_ROWS:
        padded = np.concatenate([X, np.repeat(X[-1:], MIN_SCORED_ROWS - len(X), axis=0)])
        return head.probabilities(padded)[:len(X), 1]
    return head.probabilities(X)[:, 1]


def rows_inputs(head: Head, columns: dict[str, np.ndarray], target: np.ndarray) -> np.ndarray:
    """The model inputs (k x n) of the rows `target` selects in `columns`, in row order.

    Args:
        head: The checkpoint (its input columns and whether they hold the profiles).
        columns: ``INPUT_COLUMNS`` as arrays (TX_DATETIME as int64 ns), covering every
            row the targets' windows read.
        target: Boolean mask of the rows to score.
    """
    target_rows, features = features_of_target(columns, target)
    # features_of_target answers in (time, id) order; the rows' own order is the mask's.
    by_row = np.argsort(target_rows, kind="stable")
    values = {"TX_AMOUNT": np.asarray(columns["TX_AMOUNT"], np.float64)[target]}
    values.update({name: column[by_row] for name, column in features.items()})
    if head.profiles:
        values.update(extra_features(columns, target))
    X = np.empty((len(values["TX_AMOUNT"]), len(head.inputs)))
    for i, name in enumerate(head.inputs):
        X[:, i] = values[name]
    return X


def one_row_inputs(head: Head, columns: dict[str, np.ndarray],
                   target: np.ndarray) -> np.ndarray:
    """The model inputs (1 x n) of the one row `target` selects in `columns`."""
    return rows_inputs(head, columns, target)
