"""The cheaper MLP update on validation: each sampled configuration against the full one.

`bench.quality_features validate` runs `all_spell+booster:fraud_window_days=84` (the
members of `lgbm_mlp_profiles`) with the MLP's update on every row, and the same with
``+mlp:genuine_rate=r[,learning_rate=...]``: each MLP pass on every fraud and a share r of
the genuines weighted 1/r (`trainer.learners.sampled`). The booster member is the same
model in every configuration (trained once per seed), so the differences are the MLP's.
Compared per seed (paired: same seed, same booster, same validation weeks 07-11 and
07-18), then averaged. Rule (written after seeds 0-1 of rates 0.05, 0.1 and 0.25, before
the learning-rate runs): a sampled configuration may become the default of new chains only
if none of the three metrics' mean paired difference is below zero; among those, the
cheapest.

Usage:
    .venv/bin/python -m bench.quality_sampling   # rewrites bench/QUALITY.md
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trainer.evaluation.prequential import METRICS

HERE = Path(__file__).resolve().parent
FULL = "all_spell+booster:fraud_window_days=84"
WEIGHT = 0.7


def _validation_means(row: dict) -> dict[str, float]:
    return {m: float(np.mean([s[m] for s in row["splits"].values()])) for m in METRICS}


def paired(rows: list[dict]) -> list[dict]:
    """Per sampled configuration: seeds, mean paired differences, their per-seed values."""
    full = {r["seed"]: r for r in rows if r["config"] == FULL and r["booster_weight"] == WEIGHT}
    out = []
    configs = dict.fromkeys(r["config"] for r in rows
                            if r["config"].startswith(FULL + "+mlp:")
                            and r["booster_weight"] == WEIGHT)
    for config in configs:
        mine = [r for r in rows if r["config"] == config and r["booster_weight"] == WEIGHT
                and r["seed"] in full]
        diffs = {m: [] for m in METRICS}
        for row in sorted(mine, key=lambda r: r["seed"]):
            ours, theirs = _validation_means(row), _validation_means(full[row["seed"]])
            for m in METRICS:
                diffs[m].append(ours[m] - theirs[m])
        out.append({
            "config": config, "settings": config.split("+mlp:")[1],
            "seeds": sorted(r["seed"] for r in mine),
            "mean_difference": {m: float(np.mean(v)) for m, v in diffs.items()},
            "differences": diffs,
            "cpu_seconds_per_day": float(np.mean([r["cpu_seconds_per_day"] for r in mine])),
            "full_cpu_seconds_per_day": float(np.mean(
                [full[r["seed"]]["cpu_seconds_per_day"] for r in mine])),
        })
    return out


def chosen(entries: list[dict]) -> dict | None:
    """The cheapest configuration with no mean loss on any metric; None if there is none."""
    fit = [e for e in entries if all(e["mean_difference"][m] >= 0 for m in METRICS)]
    return min(fit, key=lambda e: e["cpu_seconds_per_day"]) if fit else None


def markdown_section(features: dict) -> str:
    """The QUALITY.md section: the paired table, the rule and what it chose."""
    entries = paired(features.get("validation", []))
    if not entries:
        return ""
    out = ["## A cheaper update: the MLP on sampled genuines (validation only)", "",
           "Written by `python -m bench.quality_sampling` from the validation rows of "
           "`bench/quality_results_features.json`. Each row: the configuration of "
           "`lgbm_mlp_profiles` (booster weight 0.7) with the MLP's daily passes reading "
           "every fraud and a share `genuine_rate` of the genuines, weighted back "
           "(`trainer/learners/sampled.py`), minus the same configuration reading every "
           "row, on the same seed (validation weeks 07-11 and 07-18; seeds 0-4 are the "
           "validation seeds, the seeds column says which ran). Rule (written after "
           "seeds 0-1 of rates 0.05, 0.1 and 0.25, before the learning-rate runs): a "
           "sampled configuration becomes the default of new chains only if no "
           "metric's mean difference is below zero; the cheapest such one. "
           "`partial_fit CPU s/day`: booster and MLP together, mean over the last 30 "
           "days of a default-size chain (~9,700 transactions a day), sampled / full.", "",
           "| MLP settings | seeds | ROC AUC diff (per seed) | AP diff (per seed) "
           "| CP@100 diff (per seed) | partial_fit CPU s/day |",
           "|---|---|---|---|---|---|"]
    for e in sorted(entries, key=lambda e: e["settings"]):
        cells = [f"{e['mean_difference'][m]:+.4f} ("
                 + ", ".join(f"{d:+.4f}" for d in e["differences"][m]) + ")" for m in METRICS]
        out.append(f"| `{e['settings']}` | {', '.join(map(str, e['seeds']))} | "
                   + " | ".join(cells)
                   + f" | {e['cpu_seconds_per_day']:.2f} / {e['full_cpu_seconds_per_day']:.2f} |")
    missing = sorted({0, 1, 2, 3, 4} - {seed for e in entries for seed in e["seeds"]})
    if missing:
        out += ["", f"**Incomplete:** validation seeds {', '.join(map(str, missing))} were not "
                "run (the shared machine ran at load 6-16; each seed's features and booster "
                "took ~15 minutes). The decision rests on seeds "
                + ", ".join(map(str, sorted({s for e in entries for s in e["seeds"]})))
                + ", where every configuration lost on ROC AUC and AP on both seeds."]
    pick = chosen(entries)
    out += ["", "Chosen: " + (f"`{pick['settings']}`" if pick else
                               "none: every sampled configuration tried lost on at least one "
                               "metric on average, so new chains keep `lgbm_mlp_profiles` "
                               "(every row) and `lgbm_mlp_profiles_sampled` stays an option "
                               "(`--learner`)") + ".", ""]
    return "\n".join(out)


def main() -> None:
    """Rewrite bench/QUALITY.md (this section is part of it) and print the section."""
    from bench.quality import write_quality_md

    write_quality_md()
    print(markdown_section(json.loads((HERE / "quality_results_features.json").read_text())))


if __name__ == "__main__":
    main()
