"""The model inputs and scores of served transactions, by the arrival path's own query.

A transaction's inputs come from `trainer.features.prepared.day_features`, the function
an arrived day's features come from (`trainer.arrival`): the serving day's history
prepared once, plus the target's card rows of the day so far. One transaction
(`one_row_inputs`, its card's rows) and a batch (`rows_inputs`, the day's rows so far,
every batch row a target) take the same path, so a batch's inputs equal those of its rows
sent one by one in time order.
"""

from __future__ import annotations

import numpy as np

from trainer.features.prepared import DayRows, PreparedHistory, PreparedParts, day_features
from trainer.serving.head import Head

#: Rows a score's matrix products are computed in a multiple of. The MLP's layers are BLAS
#: matrix products whose result for a row can differ in the last bit between a product's
#: main kernel and the narrower ones for its last (length mod 4) rows, or a 1-row product.
#: In a product of a multiple of 4 rows every row gets the bits it gets inside a day's
#: matrix (OpenBLAS here, AVX2 and AVX-512 alike; the skew test counts the scores equal
#: bit for bit): a lone transaction and a batch of any length are padded to it.
MIN_SCORED_ROWS = 4


def model_scores(head: Head, X: np.ndarray) -> np.ndarray:
    """Fraud probabilities of the rows of `X`, computed in a multiple of ``MIN_SCORED_ROWS``."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    missing = -len(X) % MIN_SCORED_ROWS
    if len(X) and missing:
        padded = np.concatenate([X, np.repeat(X[-1:], missing, axis=0)])
        return head.probabilities(padded)[:len(X), 1]
    return head.probabilities(X)[:, 1]


def rows_inputs(head: Head, history: PreparedHistory | PreparedParts, day: DayRows,
                targets: np.ndarray) -> np.ndarray:
    """The model inputs (k x n) of the day's rows `targets`, in that order.

    Args:
        head: The checkpoint (its input columns and whether they hold the profiles, the
            cards).
        history: The serving day's prepared history.
        day: The day's rows holding every row of the targets' cards up to each target.
        targets: Row numbers in `day`.
    """
    values = day_features(history, day, targets, profiles=head.profiles, cards=head.cards)
    values["TX_AMOUNT"] = day.amounts[targets]
    return np.column_stack([values[name] for name in head.inputs])


def one_row_inputs(head: Head, history: PreparedHistory | PreparedParts, day: DayRows,
                   target: int) -> np.ndarray:
    """The model inputs (1 x n) of the day's row `target` (its card's rows in `day`)."""
    return rows_inputs(head, history, day, np.array([target]))
