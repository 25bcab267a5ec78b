"""The handbook's evaluation protocol for one checkpoint and one test period.

docs/facts.md#features-and-evaluation (Le Borgne et al., chapters 3.5 and 5.2): a model
trained through day C is tested on ``test_days`` days from ``test_start``. Cards already
known to be compromised are not worth an alert, so before test day i (0-based) the test set
loses every customer with a fraud in the ``known_window_days`` days up to and including C,
plus every customer with a fraud on the first i days after C: labels arrive late, one more
day of the delay period becomes known each test day. On the filtered set we report ROC AUC
and average precision over all transactions and Card Precision@100 day by day.

With the headline split (train 2018-07-25..07-31, test 2018-08-08..08-14) the checkpoint
day is 07-31, ``test_start`` 08-08 and both windows are 7 days.

This module does not know how a model is stored: ``evaluate_on_share`` takes a scoring
function, and ``evaluate_split`` takes scores already computed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from trainer.evaluation.metrics import average_precision, card_precision_at_k, roc_auc
from trainer.features.from_history import features_of_day
from trainer.features.store import read_transactions
from trainer.share.layout import Share

CARDS_CHECKED_PER_DAY = 100

#: score_fn(features) -> fraud probability per row of the features frame.
ScoreFunction = Callable[[pd.DataFrame], np.ndarray]


def _check_split(checkpoint_day: dt.date, test_start: dt.date, test_days: int, window: int) -> None:
    if test_start <= checkpoint_day:
        raise ValueError(
            f"test_start {test_start} must come after the checkpoint's day {checkpoint_day}"
        )
    if test_days < 1 or window < 0:
        raise ValueError(
            f"test_days must be >= 1 and known_window_days >= 0; got {test_days}, {window}"
        )


def testing_days(test_start: dt.date, test_days: int) -> list[dt.date]:
    """The test period's days."""
    return [test_start + dt.timedelta(days=i) for i in range(test_days)]


def label_dates(checkpoint_day: dt.date, test_days: int, known_window_days: int) -> list[dt.date]:
    """Days whose frauds the filter reads: the known window, then the revealed delay days."""
    first = checkpoint_day - dt.timedelta(days=known_window_days - 1)
    last = checkpoint_day + dt.timedelta(days=test_days - 1)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def known_compromised_by_test_day(
    labelled: pd.DataFrame,
    checkpoint_day: dt.date,
    test_start: dt.date,
    test_days: int = 7,
    known_window_days: int = 7,
) -> list[frozenset[int]]:
    """Customers to leave out of each test day, oldest test day first.

    Args:
        labelled: Transactions with TX_DATETIME, CUSTOMER_ID and TX_FRAUD covering
            ``label_dates(...)``; other days are ignored.
        checkpoint_day: Last day the model was trained on.
        test_start: First test day (after `checkpoint_day`).
        test_days: Number of test days.
        known_window_days: Days up to and including `checkpoint_day` whose frauds are known.

    Returns:
        Entry i: customers with a fraud in the known window or on the first i days after
        `checkpoint_day`.
    """
    _check_split(checkpoint_day, test_start, test_days, known_window_days)
    frauds = labelled.loc[labelled["TX_FRAUD"] == 1, ["TX_DATETIME", "CUSTOMER_ID"]]
    fraud_days = frauds["TX_DATETIME"].dt.date
    window_start = checkpoint_day - dt.timedelta(days=known_window_days - 1)
    in_window = (fraud_days >= window_start) & (fraud_days <= checkpoint_day)
    known = set(frauds.loc[in_window, "CUSTOMER_ID"].tolist())
    result = [frozenset(known)]
    for revealed in range(1, test_days):
        day = checkpoint_day + dt.timedelta(days=revealed)
        known.update(frauds.loc[fraud_days == day, "CUSTOMER_ID"].tolist())
        result.append(frozenset(known))
    return result


def filter_known_compromised(
    test_rows: pd.DataFrame, test_start: dt.date, excluded: list[frozenset[int]]
) -> pd.DataFrame:
    """The test rows minus, day by day, the customers in `excluded[i]` on test day i."""
    days = test_rows["TX_DATETIME"].dt.date
    keep = np.zeros(len(test_rows), dtype=bool)
    for i, customers in enumerate(excluded):
        on_day = (days == test_start + dt.timedelta(days=i)).to_numpy()
        keep |= on_day & ~test_rows["CUSTOMER_ID"].isin(customers).to_numpy()
    return test_rows[keep]


def _json_float(value: float) -> float | None:
    # NaN is not JSON; None prints as null and says "undefined here" just as well.
    return None if math.isnan(value) else value


def evaluate_split(
    scored_test: pd.DataFrame,
    labelled: pd.DataFrame,
    checkpoint_day: dt.date,
    test_start: dt.date,
    test_days: int = 7,
    known_window_days: int = 7,
) -> dict[str, object]:
    """Apply the protocol to scores already computed.

    Args:
        scored_test: Test-period transactions with TX_DATETIME, CUSTOMER_ID, TX_FRAUD and
            ``score``; rows outside the test days are ignored.
        labelled: Transactions whose frauds feed the known-compromised filter (see
            ``known_compromised_by_test_day``).
        checkpoint_day: Last day the model was trained on.
        test_start: First test day.
        test_days: Number of test days.
        known_window_days: Days up to the checkpoint's whose frauds are known.

    Returns:
        A JSON-ready dict: ``auc_roc``, ``average_precision``, ``card_precision_at_100``
        (null where a metric is undefined, e.g. no fraud left), ``transactions`` and
        ``frauds`` of the filtered test set, ``test_start``, ``test_days``, ``checkpoint``,
        ``known_window_days``, ``card_precision_per_day`` and ``excluded_customers`` (how
        many customers were left out of each test day).
    """
    excluded = known_compromised_by_test_day(
        labelled, checkpoint_day, test_start, test_days, known_window_days
    )
    filtered = filter_known_compromised(scored_test, test_start, excluded)
    labels = filtered["TX_FRAUD"].to_numpy()
    scores = filtered["score"].to_numpy(dtype=np.float64)
    card_precision = card_precision_at_k(filtered, CARDS_CHECKED_PER_DAY)
    return {
        "auc_roc": _json_float(roc_auc(labels, scores)),
        "average_precision": _json_float(average_precision(labels, scores)),
        f"card_precision_at_{CARDS_CHECKED_PER_DAY}": _json_float(card_precision.mean),
        "transactions": int(len(filtered)),
        "frauds": int(labels.sum()),
        "checkpoint": checkpoint_day.isoformat(),
        "test_start": test_start.isoformat(),
        "test_days": test_days,
        "known_window_days": known_window_days,
        "card_precision_per_day": {
            day.isoformat(): value for day, value in card_precision.per_day.items()
        },
        "excluded_customers": [len(customers) for customers in excluded],
    }


def evaluate_on_share(
    share: Share,
    score_fn: ScoreFunction,
    checkpoint_day: dt.date,
    test_start: dt.date,
    test_days: int = 7,
    known_window_days: int = 7,
    *,
    profiles: bool = False,
    cards: bool = False,
) -> dict[str, object]:
    """Score the test days' training datasets on the share and apply the protocol.

    Every test day must be on the share (``DatasetValidationError`` names the first missing
    file). Label days missing from the share (before the first ingested day, or a gap) add
    no known-compromised customers; they are listed under ``missing_label_days``.

    Args:
        share: The storage root.
        score_fn: Maps a features frame (``trainer.features.compute.OUTPUT_COLUMNS``,
            then ``EXTRA_FEATURE_COLUMNS`` with `profiles`) to one fraud probability per
            row; the caller wires it to a checkpoint.
        checkpoint_day: Last day the model was trained on.
        test_start: First test day.
        test_days: Number of test days.
        known_window_days: Days up to the checkpoint's whose frauds are known.
        profiles: Add the profile columns (`trainer.features.profiles`) to the features,
            for a checkpoint of a learner that reads them.
        cards: Also the card columns (`trainer.features.cards`), after the profiles.

    Returns:
        ``evaluate_split``'s dict plus ``missing_label_days``.
    """
    _check_split(checkpoint_day, test_start, test_days, known_window_days)
    features = pd.concat(
        [features_of_day(share, day, profiles=profiles, cards=cards)
         for day in testing_days(test_start, test_days)],
        ignore_index=True,
    )
    scores = np.asarray(score_fn(features), dtype=np.float64).reshape(-1)
    if len(scores) != len(features) or not np.isfinite(scores).all():
        raise ValueError(
            f"score_fn returned {len(scores)} scores for {len(features)} rows; "
            "expected one finite score per row"
        )
    missing, frames = [], []
    for day in label_dates(checkpoint_day, test_days, known_window_days):
        path = share.training_dataset(day)
        if path.is_file():
            frames.append(read_transactions(path))
        else:
            missing.append(day.isoformat())
    labelled = (
        pd.concat(frames, ignore_index=True)
        if frames
        else features.iloc[0:0][["TX_DATETIME", "CUSTOMER_ID", "TX_FRAUD"]]
    )
    result = evaluate_split(
        features.assign(score=scores),
        labelled,
        checkpoint_day,
        test_start,
        test_days,
        known_window_days,
    )
    result["missing_label_days"] = missing
    return result


__all__ = [
    "ScoreFunction",
    "evaluate_on_share",
    "evaluate_split",
    "filter_known_compromised",
    "known_compromised_by_test_day",
    "label_dates",
    "testing_days",
]
