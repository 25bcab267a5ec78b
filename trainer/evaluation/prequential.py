"""The prequential protocol: consecutive test weeks, each scored by the checkpoint before it.

docs/facts.md#features-and-evaluation: a checkpoint of day C is tested on the week that
starts after a 7-day delay (labels arrive a week late), C + 8; the headline split is C =
2018-07-31, test 2018-08-08..08-14. The prequential protocol repeats it on the following
weeks with the chain's later checkpoints (test weeks from 08-08, 08-15, 08-22, 08-29,
checkpoints 07-31, 08-07, 08-14, 08-21) and reports each week and their mean. The
benchmarks (`bench.quality*`) and `fraudpipe evaluate --prequential` both use this module,
so a user measures on their share exactly what bench/QUALITY.md reports.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from trainer.evaluation.checkpoint import evaluate_checkpoint
from trainer.share.layout import Share

METRICS = ("auc_roc", "average_precision", "card_precision_at_100")
#: Days between a checkpoint and its first test day: the 7-day label delay, then the test.
DELAY_DAYS = 7
TEST_DAYS = KNOWN_WINDOW_DAYS = 7
#: The handbook's headline test week starts here; the prequential weeks follow it.
FIRST_TEST_START = dt.date(2018, 8, 8)
WEEKS = 4


def prequential_splits(first_test_start: dt.date = FIRST_TEST_START, weeks: int = WEEKS,
                       test_days: int = TEST_DAYS) -> list[tuple[dt.date, dt.date]]:
    """(checkpoint day, test start) of each test window, the windows back to back."""
    if weeks < 1:
        raise ValueError(f"weeks must be >= 1, got {weeks}")
    starts = [first_test_start + dt.timedelta(days=i * test_days) for i in range(weeks)]
    return [(start - dt.timedelta(days=DELAY_DAYS + 1), start) for start in starts]


HEADLINE_SPLIT = prequential_splits(weeks=1)[0]
PREQUENTIAL_SPLITS = prequential_splits()


def split_key(checkpoint_day: dt.date, test_start: dt.date) -> str:
    """"<checkpoint>/<test start>": how results name a split."""
    return f"{checkpoint_day}/{test_start}"


def mean_over_splits(splits: dict[str, dict]) -> dict[str, float | None]:
    """Each metric's plain mean over the splits (every week weighs the same).

    A split where a metric is undefined (None: no fraud left after the filter) is left
    out of that metric's mean; None if it is undefined in every split.
    """
    means: dict[str, float | None] = {}
    for m in METRICS:
        values = [s[m] for s in splits.values() if s[m] is not None]
        means[m] = float(np.mean(values)) if values else None
    return means


def evaluate_splits(share: Share, splits: list[tuple[dt.date, dt.date]], *,
                    test_days: int = TEST_DAYS,
                    known_window_days: int = KNOWN_WINDOW_DAYS) -> dict[str, dict]:
    """Each (checkpoint day, test start)'s metrics, transactions, frauds and learner."""
    out = {}
    for checkpoint_day, test_start in splits:
        result = evaluate_checkpoint(share, checkpoint_day, test_start, test_days=test_days,
                                     known_window_days=known_window_days)
        out[split_key(checkpoint_day, test_start)] = {
            k: result[k] for k in (*METRICS, "transactions", "frauds", "learner")}
    return out


def evaluate_prequential(share: Share, first_test_start: dt.date = FIRST_TEST_START,
                         weeks: int = WEEKS, *, test_days: int = TEST_DAYS,
                         known_window_days: int = KNOWN_WINDOW_DAYS) -> dict:
    """Every test window's metrics by the chain's checkpoint before it, and their mean.

    Returns:
        {"splits": {"<checkpoint>/<test start>": metrics, transactions, frauds, learner},
        "mean": the three metrics' means over the splits, "learner": the chain's}
    """
    splits = evaluate_splits(share, prequential_splits(first_test_start, weeks, test_days),
                             test_days=test_days, known_window_days=known_window_days)
    learners = sorted({s["learner"] for s in splits.values()})
    return {"splits": splits, "mean": mean_over_splits(splits), "learner": ", ".join(learners)}
