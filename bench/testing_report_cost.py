"""CPU of a step's report on the testing dataset: features recomputed (before) or read back.

    .venv/bin/python -m bench.testing_report_cost [--size 10k] [--out FILE]

On `bench step`'s prepared share for the size (`bench.step_throughput.prepared`, the
FRAUDPIPE_BENCH_DATA directory), copied aside, the measured day D becomes the testing
dataset. A model of the default learner trained on D-1 stands for the step's. Measured,
CPU seconds (`time.process_time`): `before`, what every step did before the cache: the
testing rows' features from the 37 raw days before D, then scoring and metrics; `first`,
the cache's first computation and write (once per testing file); `later`, a later step's
whole `evaluate_testing_dataset` (best of 3).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

from bench.step_throughput import SIZES, prepared


def _cpu(work) -> tuple[float, object]:
    began = time.process_time()
    result = work()
    return time.process_time() - began, result


def run(size: str, data_dir: Path) -> dict:
    """The three figures of the module docstring for one day size."""
    import pandas as pd

    from trainer.evaluation import scoring
    from trainer.evaluation.testing_features import testing_features
    from trainer.features.compute import HISTORY_DAYS
    from trainer.features.from_history import features_of_day, features_of_rows
    from trainer.features.store import history_before
    from trainer.learners import DEFAULT_LEARNER
    from trainer.learners.registry import learner_inputs, make_learner, uses_profiles
    from trainer.share.layout import create_share

    work, info = prepared(data_dir, SIZES[size], HISTORY_DAYS, 0)
    day = dt.date.fromisoformat(info["days"][-1]["date"])
    root = work / "testing-report-share"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(work / "share" / "datasets", root / "datasets")
    share = create_share(root, "fraudpipe bench")[0]
    share.testing_dir.mkdir(parents=True, exist_ok=True)
    testing = share.testing_dataset(day.isoformat())
    share.training_dataset(day).replace(testing)
    learner, profiles = DEFAULT_LEARNER, uses_profiles(DEFAULT_LEARNER)
    previous = features_of_day(share, day - dt.timedelta(days=1), profiles=profiles,
                               use_cache=False)
    model = make_learner(learner)
    model.partial_fit(previous[learner_inputs(learner)].to_numpy(),
                      previous["TX_FRAUD"].to_numpy())
    rows = pd.read_parquet(testing)

    def before():
        frame = features_of_rows(history_before(share, day), rows, profiles=profiles)
        return scoring.day_metrics(frame, scoring.score_day(model, frame, learner))

    before_s, _ = _cpu(before)
    first_s, _ = _cpu(lambda: testing_features(share, testing, rows, profiles=profiles))
    later_s = min(_cpu(lambda: scoring.evaluate_testing_dataset(share, model, learner))[0]
                  for _ in range(3))
    shutil.rmtree(root, ignore_errors=True)
    return {"size": size, "learner": learner, "testing_rows": len(rows),
            "before_cpu_seconds": round(before_s, 3),
            "first_compute_and_write_cpu_seconds": round(first_s, 3),
            "later_steps_cpu_seconds": round(later_s, 3),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> None:
    """Measure and print (and write with --out) the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="10k", choices=sorted(SIZES))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = run(args.size, Path(os.environ.get("FRAUDPIPE_BENCH_DATA",
                                                "/tmp/fraudpipe-bench")))
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
