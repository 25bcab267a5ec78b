"""Replay a learner over in-memory features and score it on chosen splits.

This is the step's training loop without the share: `partial_fit` on each day's
features in date order, and at each split's checkpoint day the model scores that split's
test week, evaluated with the handbook's protocol (`trainer.evaluation.evaluate_split`).
The tuner uses it to pick hyper-parameters on the validation weeks only
(`VALIDATION_SPLITS`, all before the test weeks).

Usage:
    .venv/bin/python -m bench.quality_tune --seeds 0 1 --candidates sgd hgb_window
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.quality_data import features_by_day, xy
from trainer.evaluation.prequential import (
    HEADLINE_SPLIT,
    KNOWN_WINDOW_DAYS,
    METRICS,
    PREQUENTIAL_SPLITS,
    TEST_DAYS,
    prequential_splits,
)
from trainer.evaluation.prequential import mean_over_splits as _mean_of_splits
from trainer.evaluation.split import evaluate_split
from trainer.learners.registry import LEARNERS, uses_profiles
from trainer.model import fraud_scores

#: (checkpoint day, test start): validation weeks, scored by the checkpoint 8 days before
#: (the prequential protocol's windows, two weeks before its first test week).
VALIDATION_SPLITS = prequential_splits(dt.date(2018, 7, 11), weeks=2)


def _week(features: dict[dt.date, pd.DataFrame], start: dt.date, days: int) -> pd.DataFrame:
    return pd.concat([features[start + dt.timedelta(days=i)] for i in range(days)],
                     ignore_index=True)


def replay(factory: Callable[[], object], features: dict[dt.date, pd.DataFrame],
           splits: list[tuple[dt.date, dt.date]], size_on: dt.date | None = None, *,
           learner: str) -> dict:
    """Train day by day through the last split's checkpoint; evaluate every split.

    `factory` makes the model, a variant of `learner`, whose inputs it is given
    (`features` must hold them: ``features_by_day(..., profiles=uses_profiles(learner))``).

    Returns:
        {"splits": {"<checkpoint>/<test start>": metrics}, "seconds_per_day": float,
        "cpu_seconds_per_day": float (both over the last 30 days), "checkpoint_bytes":
        size of the skops checkpoint on `size_on`, if given}
    """
    from trainer.share.checkpoints import dump_model

    model = factory()
    last = max(c for c, _ in splits)
    labelled_cols = ["TX_DATETIME", "CUSTOMER_ID", "TX_FRAUD"]
    results, seconds, cpu, size = {}, [], [], None
    for day in sorted(d for d in features if d <= last):
        X, y = xy(features[day], learner)
        began, cpu_began = time.perf_counter(), time.process_time()
        model.partial_fit(X, y)
        seconds.append(time.perf_counter() - began)
        cpu.append(time.process_time() - cpu_began)
        if day == size_on:
            size = len(dump_model(model))
        for checkpoint, start in splits:
            if checkpoint != day:
                continue
            test = _week(features, start, TEST_DAYS)
            scored = test.assign(score=fraud_scores(model, xy(test, learner)[0]))
            first = checkpoint - dt.timedelta(days=KNOWN_WINDOW_DAYS - 1)
            labelled = _week(features, first, (start - first).days)[labelled_cols]
            metrics = evaluate_split(scored, labelled, checkpoint, start, TEST_DAYS,
                                     KNOWN_WINDOW_DAYS)
            results[f"{checkpoint}/{start}"] = {m: metrics[m] for m in METRICS}
    return {"splits": results, "seconds_per_day": float(np.mean(seconds[-30:])),
            "cpu_seconds_per_day": float(np.mean(cpu[-30:])), "checkpoint_bytes": size}


def mean_over_splits(result: dict) -> dict[str, float]:
    """Each metric averaged over the result's splits (the prequential protocol's mean)."""
    return _mean_of_splits(result["splits"])


def main() -> None:
    """Print validation metrics of the candidates, mean over seeds and the two weeks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--candidates", nargs="+", default=sorted(LEARNERS))
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "fraudpipe-quality-cache")
    parser.add_argument("--test", action="store_true",
                        help="score the prequential test weeks too (reporting, not tuning)")
    parser.add_argument("--params", type=json.loads, default={},
                        help='JSON overrides of the factory\'s keyword arguments, e.g. '
                             '\'{"window_days": 42}\'')
    args = parser.parse_args()
    splits = VALIDATION_SPLITS + (PREQUENTIAL_SPLITS if args.test else [])
    for name in args.candidates:
        per_seed = []
        for seed in args.seeds:
            features = features_by_day(args.cache, seed, 183, profiles=uses_profiles(name))
            per_seed.append(replay(functools.partial(LEARNERS[name], **args.params), features,
                                   splits, learner=name))
        validation = [mean_over_splits({"splits": {k: v for k, v in r["splits"].items()
                                                   if k in {f"{c}/{s}" for c, s in
                                                            VALIDATION_SPLITS}}})
                      for r in per_seed]
        row = {m: round(float(np.mean([v[m] for v in validation])), 4) for m in METRICS}
        row["s_per_day"] = round(float(np.mean([r["seconds_per_day"] for r in per_seed])), 3)
        if args.test:
            test = [r["splits"][f"{HEADLINE_SPLIT[0]}/{HEADLINE_SPLIT[1]}"] for r in per_seed]
            row["headline"] = {m: round(float(np.mean([t[m] for t in test])), 4)
                               for m in METRICS}
        print(name, json.dumps(args.params), json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
