"""Features from the raw history, with the profile columns when the learner reads them.

A training step takes its features from the carried state (`trainer.features.carried`,
``profiles=True`` for a learner that reads `trainer.features.profiles`). Every other path
computes them from the raw transactions: a checkpoint's test days
(`trainer.evaluation.split`), a testing dataset (`trainer.evaluation.scoring`), an arrived
day (`trainer.arrival`). Those get the handbook's 15 as before (`trainer.features.compute`,
the features cache of `trainer.features.store`), and with ``profiles=True`` the
``EXTRA_FEATURE_COLUMNS`` appended from their raw reference
(`trainer.features.profiles.extra_features`) over the same rows; with ``cards=True`` also
the ``CARD_FEATURE_COLUMNS`` from theirs (`trainer.features.cards.card_features`), which
reads ``CARD_HISTORY_DAYS`` days of history. The features cache keeps the 15 only, so its
files stay valid; the profiles and cards are computed each time.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from trainer.features.cards import (
    CARD_FEATURE_COLUMNS,
    CARD_HISTORY_DAYS,
    CARD_INPUT_COLUMNS,
    card_features,
)
from trainer.features.compute import INPUT_COLUMNS, compute_features, features_for_frame
from trainer.features.profiles import (
    EXTRA_FEATURE_COLUMNS,
    extra_features,
    extra_features_of_day,
)
from trainer.features.store import (
    check_history,
    features_for_day,
    history_before,
    read_transactions,
)
from trainer.share.layout import Share


def _joined(features: pd.DataFrame, extra: pd.DataFrame,
            names: list[str] = EXTRA_FEATURE_COLUMNS) -> pd.DataFrame:
    """`features` with the columns `names` of `extra`; both sorted by TRANSACTION_ID."""
    if not np.array_equal(features["TRANSACTION_ID"].to_numpy(),
                          extra["TRANSACTION_ID"].to_numpy()):
        raise RuntimeError("the profile features are not of the same rows as the handbook "
                           "features; both must be sorted by TRANSACTION_ID")
    return pd.concat([features, extra[names]], axis=1)


def with_cards(features: pd.DataFrame, transactions: pd.DataFrame,
               target: np.ndarray) -> pd.DataFrame:
    """`features` (sorted by TRANSACTION_ID) with the card columns of `target`'s rows.

    `transactions` hold those rows and the ``CARD_HISTORY_DAYS`` days before them.
    """
    columns = {name: transactions[name].to_numpy() for name in CARD_INPUT_COLUMNS}
    cards = pd.DataFrame({"TRANSACTION_ID": transactions["TRANSACTION_ID"].to_numpy()[target],
                          **card_features(columns, target)})
    return _joined(features, cards.sort_values("TRANSACTION_ID", kind="stable",
                                               ignore_index=True), CARD_FEATURE_COLUMNS)


def _on_day(transactions: pd.DataFrame, day: dt.date) -> np.ndarray:
    times = transactions["TX_DATETIME"].to_numpy().astype("datetime64[ns]")
    start = np.datetime64(day.isoformat(), "ns")
    return (times >= start) & (times < start + np.timedelta64(1, "D"))


def _require_profiles(profiles: bool, cards: bool) -> None:
    if cards and not profiles:
        raise ValueError("the card inputs come after the profile inputs: cards=True needs "
                         "profiles=True")


def features_of_transactions(transactions: pd.DataFrame, day: dt.date, *,
                             profiles: bool, cards: bool = False) -> pd.DataFrame:
    """``compute_features(transactions, day)``, with the profile (and card) columns if asked.

    With `cards`, `transactions` should hold ``CARD_HISTORY_DAYS`` days before `day`.
    """
    _require_profiles(profiles, cards)
    features = compute_features(transactions, day)
    if profiles:
        features = _joined(features, extra_features_of_day(transactions, day))
    return with_cards(features, transactions, _on_day(transactions, day)) if cards else features


def features_of_day(share: Share, day: dt.date, *, profiles: bool, cards: bool = False,
                    use_cache: bool = True) -> pd.DataFrame:
    """``features_for_day(share, day)``, with the profile (and card) columns if asked.

    The profiles read the same days as the 15: `day` and the ``HISTORY_DAYS`` before it
    (``features_for_day`` has checked them against the ingest manifest); the cards read
    ``CARD_HISTORY_DAYS`` before it.
    """
    _require_profiles(profiles, cards)
    features = features_for_day(share, day, use_cache=use_cache)
    if not profiles:
        return features
    if cards:  # `features_for_day` checked the 37 days; the cards read 50
        check_history(share, day, CARD_HISTORY_DAYS)
    transactions = pd.concat([history_before(share, day, CARD_HISTORY_DAYS if cards else None),
                              read_transactions(share.training_dataset(day))],
                             ignore_index=True)
    features = _joined(features, extra_features_of_day(transactions, day))
    return with_cards(features, transactions, _on_day(transactions, day)) if cards else features


def features_of_rows(history: pd.DataFrame, rows: pd.DataFrame, *,
                     profiles: bool, cards: bool = False) -> pd.DataFrame:
    """``features_for_frame(history, rows)``, with the profile (and card) columns if asked.

    For rows that are not one training day (a testing dataset may span several days). With
    `cards`, `history` should hold ``CARD_HISTORY_DAYS`` days before the rows.
    """
    _require_profiles(profiles, cards)
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
    features = _joined(features, extra.sort_values("TRANSACTION_ID", kind="stable",
                                                   ignore_index=True))
    return with_cards(features, transactions, target) if cards else features
