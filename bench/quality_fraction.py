"""Every quality figure as the fraction of its seed's own knowable ceiling.

A seed's difficulty moves its metrics (seed 11's CP@100 ceiling is 0.310, seed 12's
0.334), so the report seeds' figures are divided by the same seed's `knowable` ceiling
(`bench.quality_ceiling`) on the same split. Headline: the 2018-07-31 checkpoint on
08-08..08-14. Prequential: the mean of the four weeks' metric over the mean of the four
weeks' ceiling (`trainer.evaluation.prequential`'s weeks). The models' figures are the
report runs of `bench.quality_features` (seeds 10-14, never used for a choice).

Usage:
    .venv/bin/python -m bench.quality_fraction   # rewrites bench/QUALITY.md
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.quality_ceiling import STRICT_METRICS, strict_share
from trainer.evaluation.prequential import HEADLINE_SPLIT, METRICS, split_key

HERE = Path(__file__).resolve().parent
#: Mean fraction of the ceiling asked for: ROC AUC, AP, CP@100.
TARGETS = {"auc_roc": 0.995, "average_precision": 0.955, "card_precision_at_100": 0.980}
#: The handbook's best results anywhere (docs/facts.md#features-and-evaluation).
HANDBOOK_BEST = {"auc_roc": 0.879, "average_precision": 0.687, "card_precision_at_100": 0.305}
#: `bench.quality_features` configuration -> the learner it is.
LEARNER_OF = {"base": "lgbm_mlp", "all_spell+booster:fraud_window_days=84": "lgbm_mlp_profiles",
              "all_spell+booster:fraud_window_days=84,max_bin=1023": "lgbm_mlp_profiles_binned"}


def fractions(row: dict, ceiling: dict) -> dict[str, dict[str, float]]:
    """{"headline"|"prequential": metric -> model / ceiling} for one report row."""
    headline = split_key(*HEADLINE_SPLIT)
    weeks = list(row["splits"])
    out = {"headline": {m: row["splits"][headline][m] / ceiling[headline]["knowable"][m]
                        for m in METRICS},
           "prequential": {}}
    informed = ceiling[headline].get("informed")
    if informed:
        out["informed_auc"] = row["splits"][headline]["auc_roc"] / informed["auc_roc"]
    if all("strict" in ceiling[w] for w in weeks):
        out["strict"] = {m: (row["splits"][headline][m] / ceiling[headline]["strict"][m],
                             float(np.mean([row["splits"][w][m] for w in weeks])
                                   / np.mean([ceiling[w]["strict"][m] for w in weeks])))
                         for m in STRICT_METRICS}
    for m in METRICS:
        model = np.mean([row["splits"][w][m] for w in weeks])
        bound = np.mean([ceiling[w]["knowable"][m] for w in weeks])
        out["prequential"][m] = float(model / bound)
    return out


def _label(config: str, weight: float) -> str:
    learner = LEARNER_OF.get(config)
    if learner is None and config.startswith("all_spell+booster:fraud_window_days=84+mlp:"):
        learner = f"lgbm_mlp_profiles, MLP {config.split('+mlp:')[1]}"
    return f"`{learner or config}` (booster weight {weight:g})"


def markdown_section(features: dict, ceiling: dict) -> str:
    """The QUALITY.md section: per seed and learner, headline and prequential fractions."""
    report = features.get("report")
    if not report:
        return ""
    out = ["## Against each seed's own ceiling", "",
           "Written by `python -m bench.quality_fraction` from the report runs (seeds "
           f"{', '.join(map(str, report['seeds']))}, never used for a choice; "
           "`bench/quality_results_features.json`) and the ceilings "
           "(`bench/quality_results_ceiling.json`). Each figure is the model's metric over "
           "the same seed's `knowable` ceiling on the same split; prequential: the mean of "
           "the four weeks' metric over the mean of their ceiling. A fraction above 1 is "
           "possible for ROC AUC, whose ceiling is an expected value, not a bound; the last "
           "AUC column divides the headline AUC by the informed oracle's instead (section "
           "\"How high the metrics can go\"); the last two divide AP and CP@100 (headline, "
           "then prequential) by the `strict` oracle's (the knowable one without the "
           "terminal frauds whose own spell no input shows yet; a dash: no strict ceiling "
           "for the seed). "
           "The corrected ceiling script changed no `knowable` "
           "figure, so these fractions are the ones computed before the correction. "
           "`handbook` says whether the seed's headline metrics are all above the "
           "handbook's best (" + ", ".join(f"{k} {v}" for k, v in HANDBOOK_BEST.items())
           + "). `lgbm_mlp_profiles_sampled` has no report run: the validation weeks "
           "rejected it (section \"A cheaper update\" above), and the report seeds are "
           "spent on chosen configurations only.", ""]
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in report["rows"]:
        groups.setdefault((row["config"], row["booster_weight"]), []).append(row)
    for (config, weight), rows in groups.items():
        out += _table(_label(config, weight), rows, ceiling)
    return "\n".join(out)


def _table(label: str, rows: list[dict], ceiling: dict) -> list[str]:
    """One learner's table: per seed, its fractions of the ceiling, then their means."""
    headline = split_key(*HEADLINE_SPLIT)
    out = [f"### {label}", "",
           "| seed | AUC / ceiling | AP / ceiling | CP@100 / ceiling | prequential AUC "
           "| prequential AP | prequential CP@100 | headline AUC / AP / CP@100 "
           "| handbook | AUC / informed AUC | AP / strict: headline, prequential "
           "| CP@100 / strict: headline, prequential |", "|---" * 12 + "|"]
    per_seed = []
    for row in sorted(rows, key=lambda r: r["seed"]):
        got = fractions(row, ceiling["seeds"][str(row["seed"])])
        per_seed.append(got)
        m = row["splits"][headline]
        above = all(m[k] > HANDBOOK_BEST[k] for k in METRICS)
        out.append(f"| {row['seed']} | "
                   + " | ".join(f"{got['headline'][k]:.3f}" for k in METRICS) + " | "
                   + " | ".join(f"{got['prequential'][k]:.3f}" for k in METRICS) + " | "
                   + " / ".join(f"{m[k]:.3f}" for k in METRICS)
                   + f" | {'above' if above else 'NOT above'} | "
                   + (f"{got['informed_auc']:.3f} |" if "informed_auc" in got else "- |")
                   + "".join(" {:.3f}, {:.3f} |".format(*got["strict"][k]) if "strict" in got
                             else " - |" for k in STRICT_METRICS))
    means = {part: {k: float(np.mean([s[part][k] for s in per_seed])) for k in METRICS}
             for part in ("headline", "prequential")}
    out.append("| **mean** | " + " | ".join(f"**{means['headline'][k]:.3f}**"
                                            for k in METRICS) + " | "
               + " | ".join(f"**{means['prequential'][k]:.3f}**" for k in METRICS)
               + " | | | " + (f"**{np.mean([s['informed_auc'] for s in per_seed]):.3f}** |"
                              if all("informed_auc" in s for s in per_seed) else " |")
               + "".join(" **{:.3f}, {:.3f}** |".format(
                   *np.mean([s["strict"][k] for s in per_seed], axis=0))
                         if all("strict" in s for s in per_seed) else " |"
                         for k in STRICT_METRICS))
    out.append("| target | " + " | ".join(f">= {TARGETS[k]}" for k in METRICS) + " | "
               + " | ".join(f">= {TARGETS[k]}" for k in METRICS) + " | | all above | | | |")
    out.append("")
    return out


def step_section(step_report: dict, ceiling: dict) -> str:
    """The QUALITY.md section of the report seeds run through the product's own step."""
    seeds = sorted({run["seed"] for run in step_report["runs"]})
    out = ["## Against each seed's own ceiling, through the product's step", "",
           "Written by `python -m bench.quality_fraction` from "
           "`bench/quality_results_step_cards_report.json`: the learners as the product "
           "trains them (`run_step` on a storage root, one day at a time, carried feature "
           f"state), report seeds {', '.join(map(str, seeds))}, never used for a choice: "
           f"`{step_report['meta']['command']}`. Columns as in the section above.", ""]
    groups: dict[str, list[dict]] = {}
    for run in step_report["runs"]:
        groups.setdefault(run["candidate"], []).append(run)
    for learner, rows in groups.items():
        out += _table(f"`{learner}` (the product's step)", rows, ceiling)
    out += _strict_reading(groups, ceiling)
    return "\n".join(out)


def _strict_reading(groups: dict[str, list[dict]], ceiling: dict) -> list[str]:
    """What the targets ask once the strict oracle is known: per learner, then the oracle."""
    seeds = sorted({str(r["seed"]) for rows in groups.values() for r in rows})
    if not all("strict" in fractions(rows[0], ceiling["seeds"][str(rows[0]["seed"])])
               for rows in groups.values()):
        return []
    headline = split_key(*HEADLINE_SPLIT)
    weeks = list(next(iter(groups.values()))[0]["splits"])
    oracle = {m: (np.mean([strict_share(ceiling["seeds"][s], [headline], m) for s in seeds]),
                  np.mean([strict_share(ceiling["seeds"][s], weeks, m) for s in seeds]))
              for m in STRICT_METRICS}
    out = ["### The targets against the strict ceiling", "",
           "The strict oracle itself reaches, of the knowable ceiling (mean of seeds "
           f"{', '.join(seeds)}; headline, prequential): "
           + "; ".join(f"{m} {h:.3f}, {p:.3f} (target {TARGETS[m]})"
                       for m, (h, p) in oracle.items())
           + ". A target above the strict oracle's own fraction asks a model to rank first "
           "the terminal frauds whose spell no input shows yet (section \"Where average "
           "precision is lost\": models rank them below most genuine rows). Each learner's "
           "mean fraction of the strict ceiling (headline, prequential):", ""]
    for learner, rows in groups.items():
        got = [fractions(r, ceiling["seeds"][str(r["seed"])])["strict"] for r in rows]
        out.append(f"- `{learner}`: " + "; ".join(
            "{} {:.3f}, {:.3f}".format(m, *np.mean([g[m] for g in got], axis=0))
            for m in STRICT_METRICS) + ".")
    out.append("")
    return out


def main() -> None:
    """Rewrite bench/QUALITY.md (this section is part of it) and print the section."""
    from bench.quality import write_quality_md

    write_quality_md()
    features = json.loads((HERE / "quality_results_features.json").read_text())
    ceiling = json.loads((HERE / "quality_results_ceiling.json").read_text())
    print(markdown_section(features, ceiling))
    step_report = json.loads((HERE / "quality_results_step_cards_report.json").read_text())
    print(step_section(step_report, ceiling))


if __name__ == "__main__":
    main()
