"""Time `compute_features` for one day from 37 days of history.

Usage:
    .venv/bin/python bench/features_speed.py [--per-day 9600] [--scale 1] [--repeat 5] [--share]

The data is random but shaped like the handbook's default simulation
(docs/facts.md#simulated-transactions):
`--per-day` transactions a day over 38 days, 5,000 customers and 10,000 terminals, both
multiplied by `--scale`. It prints the best and median wall time of `--repeat` runs and
the best CPU time (the fairer figure on a shared machine).

With `--share` the days are first written as Parquet files on a temporary share and the
timing is of `features_for_day` (read the 38 files, then compute), as a training step does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.features.compute import HISTORY_DAYS, compute_features
from trainer.features.store import features_for_day
from trainer.share.layout import Share


def synthetic_history(per_day: int, scale: int, day: dt.date, seed: int = 0) -> pd.DataFrame:
    """`HISTORY_DAYS + 1` days of random transactions ending with `day`."""
    rng = np.random.default_rng(seed)
    days = HISTORY_DAYS + 1
    n = per_day * days
    start = pd.Timestamp(day - dt.timedelta(days=HISTORY_DAYS)).value
    offsets = np.sort(rng.integers(0, days * 86_400, n)) * 10**9
    return pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(n, dtype="int64"),
            "TX_DATETIME": pd.to_datetime(start + offsets).astype("datetime64[ns]"),
            "CUSTOMER_ID": rng.integers(0, 5_000 * scale, n).astype("int64"),
            "TERMINAL_ID": rng.integers(0, 10_000 * scale, n).astype("int64"),
            "TX_AMOUNT": np.round(rng.uniform(0, 200, n), 2),
            "TX_FRAUD": (rng.random(n) < 0.0084).astype("int64"),
        }
    )


def main() -> None:
    """Run the timing and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=9_600)
    parser.add_argument("--scale", type=int, default=1, help="multiply customers and terminals")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--share", action="store_true", help="time features_for_day on files")
    args = parser.parse_args()

    day = dt.date(2018, 8, 8)
    history = synthetic_history(args.per_day, args.scale, day)
    with tempfile.TemporaryDirectory() as root:
        if args.share:
            share = Share.at(Path(root))
            share.training_dir.mkdir(parents=True, exist_ok=True)
            for date, rows in history.groupby(history["TX_DATETIME"].dt.date):
                rows.to_parquet(share.training_dataset(date), index=False)

            def run() -> object:
                return features_for_day(share, day, use_cache=False)
        else:

            def run() -> object:
                return compute_features(history, day)

        timings, cpu = [], []
        for _ in range(args.repeat):
            began, began_cpu = time.perf_counter(), time.process_time()
            features = run()
            timings.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
    print(
        f"{'features_for_day' if args.share else 'compute_features'}: "
        f"history rows {len(history):,}, day rows {len(features):,}: "
        f"best {min(timings):.3f} s, median {statistics.median(timings):.3f} s "
        f"over {args.repeat} runs (best CPU {min(cpu):.3f} s)"
    )


if __name__ == "__main__":
    main()
