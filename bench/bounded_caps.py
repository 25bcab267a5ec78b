"""Whether the caps of `lgbm_mlp_profiles_bounded` are ever reached on the quality seeds.

    .venv/bin/python -m bench.bounded_caps [--seeds 0 1 2 3 4 10 11 12 13 14]

Below its caps the bounded learner is `lgbm_mlp_profiles` to the bit
(tests/unit/test_bounded_learners.py), so bench/QUALITY.md's figures of the one are the
other's on every seed where no day reaches a cap. Per seed of `bench.quality_features`'
simulation (183 default-size days), this prints the largest day's count of: genuines the
booster keeps (its own seeded draw, replayed), frauds, and genuines (what an MLP pass
reads), beside the caps, and saves them (`bench/quality_results_caps.json`) for the
section of bench/QUALITY.md that says so. Reads the cached features of
`bench.quality_features` (computed on first use).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.quality_features import REPORT_SEEDS, VALIDATION_SEEDS, features_by_day
from trainer.learners.registry import make_learner

RESULTS = Path(__file__).resolve().parent / "quality_results_caps.json"
COMMAND = ".venv/bin/python -m bench.bounded_caps"


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


def caps() -> dict[str, int]:
    """The bounded learner's caps, by name."""
    booster, mlp = make_learner("lgbm_mlp_profiles_bounded").members
    return {"booster genuines": booster.max_genuines_per_day,
            "booster frauds": booster.max_frauds_per_day,
            "pass genuines": mlp.max_genuines_per_pass,
            "pass frauds": mlp.max_frauds_per_pass}


def reached(counts: dict[str, int], limits: dict[str, int]) -> bool:
    """Whether a seed's largest day reaches any cap."""
    return (counts["booster genuines"] > limits["booster genuines"]
            or counts["frauds"] > min(limits["booster frauds"], limits["pass frauds"])
            or counts["genuines"] > limits["pass genuines"])


def markdown_section(results: dict) -> str:
    """The QUALITY.md section: the caps against each seed's largest day."""
    limits = results["caps"]
    out = ["## The default learner of new chains on these seeds", "",
           "Written by `python -m bench.bounded_caps` from `bench/quality_results_caps.json`. "
           "New chains start on `lgbm_mlp_profiles_bounded`: `lgbm_mlp_profiles` whose booster "
           f"keeps at most {limits['booster genuines']:,} genuines and "
           f"{limits['booster frauds']:,} frauds of a day and whose MLP passes read at most "
           f"{limits['pass genuines']:,} genuines and {limits['pass frauds']:,} frauds "
           "(`trainer/learners/bounded.py`), so that a larger day does not cost more. Below "
           "its caps it is `lgbm_mlp_profiles` to the bit "
           "(`tests/unit/test_bounded_learners.py`), and no day of these seeds reaches one, "
           "so every `lgbm_mlp_profiles` figure in this file is its figure too.", "",
           "| seed | booster genuines kept, largest day | frauds, largest day | "
           "genuines, largest day | a cap reached |", "|---|---|---|---|---|"]
    for seed, counts in sorted(results["seeds"].items(), key=lambda item: int(item[0])):
        out.append(f"| {seed} | {counts['booster genuines']:,} | {counts['frauds']:,} | "
                   f"{counts['genuines']:,} | "
                   f"{'YES' if reached(counts, limits) else 'no'} |")
    out += ["", "```", COMMAND, "```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=VALIDATION_SEEDS + REPORT_SEEDS)
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "fraudpipe-quality-cache")
    args = parser.parse_args(argv)
    results = {"caps": caps(), "seeds": {}}
    for seed in args.seeds:
        results["seeds"][str(seed)] = largest_day_counts(args.cache, seed)
        print(seed, results["seeds"][str(seed)], flush=True)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    from bench.quality import write_quality_md

    write_quality_md()
    print(markdown_section(results))


if __name__ == "__main__":
    main()
