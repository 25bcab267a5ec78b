"""Whether the caps of `lgbm_mlp_profiles_bounded` are ever reached on the quality seeds.

    .venv/bin/python -m bench.bounded_caps [--seeds 0 1 2 3 4 10 11 12 13 14]

Below its caps the bounded learner is `lgbm_mlp_profiles` to the bit
(tests/unit/test_bounded_learners.py), so bench/QUALITY.md's figures of the one are the
other's on every seed where no day reaches a cap. Per seed of `bench.quality_features`'
simulation (183 default-size days), this prints the largest day's count of: genuines the
booster keeps (its own seeded draw, replayed), frauds, and genuines (what an MLP pass
reads), beside the caps. Reads the cached features of `bench.quality_features` (computed
on first use).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from bench.quality_features import REPORT_SEEDS, VALIDATION_SEEDS, features_by_day
from trainer.learners.registry import make_learner


def largest_day_counts(cache: Path, seed: int) -> dict[str, int]:
    """The largest count of a day, over the seed's days, of each capped quantity."""
    booster, _ = make_learner("lgbm_mlp_profiles_bounded").members
    counts = {"booster genuines": 0, "frauds": 0, "genuines": 0}
    for days_seen, (_, frame) in enumerate(sorted(features_by_day(cache, seed).items())):
        y = frame["TX_FRAUD"].to_numpy()
        # The booster's first draw of the day, as `WindowBoostingClassifier.partial_fit`.
        rng = np.random.default_rng([booster.random_state, days_seen])
        kept = (y == 1) | (rng.random(len(y)) < booster.genuine_fraction)
        counts["booster genuines"] = max(counts["booster genuines"],
                                         int((kept & (y != 1)).sum()))
        counts["frauds"] = max(counts["frauds"], int((y == 1).sum()))
        counts["genuines"] = max(counts["genuines"], int((y != 1).sum()))
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=VALIDATION_SEEDS + REPORT_SEEDS)
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "fraudpipe-quality-cache")
    args = parser.parse_args(argv)
    booster, mlp = make_learner("lgbm_mlp_profiles_bounded").members
    print(f"caps: booster {booster.max_genuines_per_day} genuines and "
          f"{booster.max_frauds_per_day} frauds a day; MLP pass {mlp.max_genuines_per_pass} "
          f"genuines and {mlp.max_frauds_per_pass} frauds")
    print("| seed | booster genuines kept, largest day | frauds, largest day | "
          "genuines, largest day | a cap reached |")
    print("|---|---|---|---|---|")
    for seed in args.seeds:
        c = largest_day_counts(args.cache, seed)
        reached = (c["booster genuines"] > booster.max_genuines_per_day
                   or c["frauds"] > min(booster.max_frauds_per_day, mlp.max_frauds_per_pass)
                   or c["genuines"] > mlp.max_genuines_per_pass)
        print(f"| {seed} | {c['booster genuines']:,} | {c['frauds']:,} | {c['genuines']:,} | "
              f"{'YES' if reached else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
