"""CPU of the default booster against the 1023-bin one on the same days (paired, one process).

Both boosters (`lgbm_mlp_profiles`'s and `lgbm_mlp_profiles_binned`'s, inputs of the profile
learners) are trained day by day on validation seed 0 up to 2018-07-05; then on each of the
five days to 2018-07-10 each one's `partial_fit` and its scoring of the day are timed in
turn (CPU seconds), so load on a shared machine hits both alike. Prints min and median.

Usage:
    nice -n 5 .venv/bin/python -m bench.quality_cost
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.quality_features import _config, columns_of, features_by_day
from trainer.learners.binned_boosting import BinnedWindowBoostingClassifier
from trainer.learners.boosting import WindowBoostingClassifier
from trainer.learners.registry import BINNED_MAX_BIN
from trainer.model import fraud_scores

LAST_DAY = dt.date(2018, 7, 10)
TIMED_DAYS = 5


def main() -> None:
    features = features_by_day(Path(tempfile.gettempdir()) / "fraudpipe-quality-cache", 0)
    columns = columns_of(_config("all_spell"))
    days = sorted(d for d in features if d <= LAST_DAY)
    models = {"255 bins": WindowBoostingClassifier(fraud_window_days=84),
              f"{BINNED_MAX_BIN} bins": BinnedWindowBoostingClassifier(
                  fraud_window_days=84, max_bin=BINNED_MAX_BIN)}
    fit: dict[str, list[float]] = {name: [] for name in models}
    score: dict[str, list[float]] = {name: [] for name in models}
    for i, day in enumerate(days):
        X, y = features[day][columns].to_numpy(), features[day]["TX_FRAUD"].to_numpy()
        timed = i >= len(days) - TIMED_DAYS
        for name, model in models.items():
            began = time.process_time()
            model.partial_fit(X, y)
            if timed:
                fit[name].append(time.process_time() - began)
                began = time.process_time()
                fraud_scores(model, X)
                score[name].append(time.process_time() - began)
    for name in models:
        print(f"{name}: partial_fit CPU s min {min(fit[name]):.3f} median "
              f"{np.median(fit[name]):.3f}; scoring the day min {min(score[name]):.3f} "
              f"({len(X):,} rows, reservoir {len(models[name].reservoir_y_):,})")


if __name__ == "__main__":
    main()
