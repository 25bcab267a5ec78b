"""Features from the raw history, with the profile columns when the learner reads them.

A training step takes its features from the carried state (`trainer.features.carried`,
``profiles=True`` for a learner that reads `trainer.features.profiles`). Every other path
computes them from the raw transactions: a checkpoint's test days
(`trainer.evaluation.split`), a testing dataset (`trainer.evaluation.scoring`), an arrived
day (`trainer.arrival`). Those get the handbook's 15 as before (`trainer.features.compute`,
the features cache of `trainer.features.store`), and with ``profiles=True`` the
``EXTRA_FEATURE_COLUMNS`` appended from their raw reference
(`trainer.features.profiles.extra_features`) over the same rows. The features cache keeps
the 15 only, so its files stay valid; the profiles are computed each time.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from trainer.features.compute import INPUT_COLUMNS, compute_features, features_for_frame
from trainer.features.profiles import (
    EXTRA_FEATURE_COLUMNS,
    extra_features,
    extra_features_of_day,
)
from trainer.features.store import features_for_day, history_before, read_transactions
from trainer.share.layout import Share


def _joined(features: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """`features` with the profile columns of `extra`; both sorted by TRANSACTION_ID."""
    if not np.array_equal(features["TRANSACTION_ID"].to_numpy(),
                          extra["TRANSACTION_ID"].to_numpy()):
        raise RuntimeError("the profile features are not of the same rows as the handbook "
                           "features; both must be sorted by TRANSACTION_ID")
    return pd.concat([features, extra[EXTRA_FEATURE_COLUMNS]], axis=1)


def features_of_transactions(transactions: pd.DataFrame, day: dt.date, *,
                             profiles: bool) -> pd.DataFrame:
    """``compute_features(transactions, day)``, with the profile columns if asked."""
    features = compute_features(transactions, day)
    return _joined(features, extra_features_of_day(transactions, day)) if profiles else features


def features_of_day(share: Share, day: dt.date, *, profiles: bool,
                    use_cache: bool = True) -> pd.DataFrame:
    """``features_for_day(share, day)``, with the profile columns if asked.

    The profiles read the same days as the 15: `day` and the ``HISTORY_DAYS`` before it
    (``features_for_day`` has checked them against the ingest manifest).
    """
    features = features_for_day(share, day, use_cache=use_cache)
    if not profiles:
        return features
    transactions = pd.concat([history_before(share, day),
                              read_transactions(share.training_dataset(day))],
                             ignore_index=True)
    return _joined(features, extra_features_of_day(transactions, day))


def features_of_rows(history: pd.DataFrame, rows: pd.DataFrame, *,
                     profiles: bool) -> pd.DataFrame:
    """``features_for_frame(history, rows)``, with the profile columns if asked.

    For rows that are not one training day (a testing dataset may span several days).
    """
    features = features_for_frame(history, rows)  # also checks the columns and the ids
    if not profiles:
        return features
    # The rows features_for_frame computed from: a history row with the id of one of
    # `rows` dropped (the rows win), then the rows.
    history = history[~history["TRANSACTION_ID"].isin(rows["TRANSACTION_ID"])]
    transactions = pd.concat([history[INPUT_COLUMNS], rows[INPUT_COLUMNS]], ignore_index=True)
    target = np.arange(len(transactions)) >= len(history)
    columns = {name: transactions[name].to_numpy() for name in INPUT_COLUMNS}
    extra = pd.DataFrame({"TRANSACTION_ID": columns["TRANSACTION_ID"][target],
                          **extra_features(columns, target)})
    return _joined(features, extra.sort_values("TRANSACTION_ID", kind="stable",
                                               ignore_index=True))
