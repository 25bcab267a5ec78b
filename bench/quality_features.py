"""Choose extra features and learner settings on validation weeks; report once on fresh seeds.

Two phases, both on the handbook simulation at default size with the memory engine's
training loop (`partial_fit` day by day on in-memory features, as the step does):

* ``validate``: seeds 0-4, scored on the validation weeks 07-11 and 07-18 (checkpoints
  07-03 and 07-10), never on a test week. Each configuration is a feature set (the 15
  handbook inputs plus groups of `trainer.features.profiles`) and settings of the default
  ensemble's two members; each member's validation scores are kept, so ensemble weights
  are compared without retraining.
* ``report``: the chosen configuration and the old default on seeds 10-14, headline split
  (checkpoint 07-31, test 08-08..08-14) and the prequential weeks, in the same run.

Features of every day (handbook + extras, from the 37 days before it) are computed once
per seed and cached as Parquet under ``--cache`` (not in the repository).

Usage:
    nice -n 15 .venv/bin/python -m bench.quality_features validate --configs base all
    nice -n 15 .venv/bin/python -m bench.quality_features report --chosen <config>
    .venv/bin/python -m bench.quality_features markdown   # rewrite the QUALITY.md section
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench import quality_data, quality_derived
from bench.quality_tune import (
    HEADLINE_SPLIT,
    KNOWN_WINDOW_DAYS,
    METRICS,
    PREQUENTIAL_SPLITS,
    TEST_DAYS,
    VALIDATION_SPLITS,
    _week,
)
from trainer.evaluation.split import evaluate_split
from trainer.features.compute import (
    FEATURE_COLUMNS,
    HISTORY_DAYS,
    INPUT_COLUMNS,
    compute_features,
)
from trainer.features.profiles import EXTRA_FEATURE_COLUMNS, extra_features_of_day
from trainer.learners.binned_boosting import BinnedWindowBoostingClassifier
from trainer.learners.boosting import WindowBoostingClassifier
from trainer.learners.registry import LEARNERS
from trainer.model import fraud_scores

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "quality_results_features.json"
VALIDATION_SEEDS = [0, 1, 2, 3, 4]
REPORT_SEEDS = [10, 11, 12, 13, 14]
HANDBOOK_BEST = {"auc_roc": 0.879, "average_precision": 0.687, "card_precision_at_100": 0.305}
TARGETS = {"auc_roc": 0.900, "average_precision": 0.740, "card_precision_at_100": 0.325}

#: Candidate groups of `trainer.features.profiles`, added to the handbook's 15 as a whole.
GROUPS: dict[str, list[str]] = {
    "amount_profile": [c for c in EXTRA_FEATURE_COLUMNS if c.startswith("CUSTOMER_ID_AMOUNT_")],
    "gap": ["CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"],
    "burst": ["CUSTOMER_ID_NB_TX_1_OVER_30DAY"],
    "customer_risk": ["CUSTOMER_ID_RISK_30DAY_WINDOW"],
    "terminal_amount": [c for c in EXTRA_FEATURE_COLUMNS if c.startswith("TERMINAL_ID_AVG")],
    "terminal_recency": ["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"],
    "terminal_spell": ["TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"],
    # Derived from the columns above and the row's time (`bench.quality_derived`).
    "terminal_calendar": list(quality_derived.CALENDAR_COLUMNS),
    "terminal_fraud_count": list(quality_derived.FRAUD_COUNT_COLUMNS),
    "terminal_fraud_amount": list(quality_derived.FRAUD_AMOUNT_COLUMNS),
    # Per card, from every day's rows (`bench.quality_derived.with_card_amounts`).
    "card_clean_amount": [c for c, n in quality_derived.CLEAN_AMOUNT_COLUMNS.items()
                          if n == 30],
    "card_clean_amount_60": [c for c, n in quality_derived.CLEAN_AMOUNT_COLUMNS.items()
                             if n == 60],
    "card_fraud_amount": list(quality_derived.CARD_FRAUD_COLUMNS),
    "card_high_amount": list(quality_derived.HIGH_AMOUNT_COLUMNS),
    # Whole calendar days and the 30-day delayed window, as the step could carry them.
    "card_high_days30": list(quality_derived.HIGH_AMOUNT_DAYS_COLUMNS),
    "card_recent_clean": list(quality_derived.RECENT_CLEAN_COLUMNS),
    # The first definition's elapsed 14 days with the 30-day flag (which change costs).
    "card_high_30": list(quality_derived.HIGH_AMOUNT_30_COLUMNS),
    # Per terminal: known-genuine rows after its known frauds (a spell has none).
    "terminal_after_fraud": list(quality_derived.AFTER_FRAUD_COLUMNS),
}
#: The six groups of the first validation round (before `terminal_spell` was added).
FIRST_ROUND = ["amount_profile", "gap", "burst", "customer_risk", "terminal_amount",
               "terminal_recency"]

#: Configuration name -> feature groups and member settings. "all-x" drops group x.
CONFIGS: dict[str, dict] = {
    "base": {"groups": []},
    "all": {"groups": FIRST_ROUND},
    "all_spell": {"groups": [*FIRST_ROUND, "terminal_spell"]},
    "base_spell": {"groups": ["terminal_spell"]},
    "all_spell_calendar": {"groups": [*FIRST_ROUND, "terminal_spell", "terminal_calendar"]},
    "all_spell_count": {"groups": [*FIRST_ROUND, "terminal_spell", "terminal_fraud_count"]},
    "all_spell_calendar_count": {"groups": [*FIRST_ROUND, "terminal_spell", "terminal_calendar",
                                            "terminal_fraud_count"]},
    "all_spell_calendar_count_amount": {"groups": [
        *FIRST_ROUND, "terminal_spell", "terminal_calendar", "terminal_fraud_count",
        "terminal_fraud_amount"]},
    # The card's amount against its known-genuine rows only, and its known frauds.
    "all_spell_cardclean": {"groups": [*FIRST_ROUND, "terminal_spell", "card_clean_amount"]},
    "all_spell_cardclean60": {"groups": [*FIRST_ROUND, "terminal_spell", "card_clean_amount",
                                         "card_clean_amount_60"]},
    "all_spell_cardclean_cardfraud": {"groups": [*FIRST_ROUND, "terminal_spell",
                                                 "card_clean_amount", "card_fraud_amount"]},
    "all_spell_cardclean60_cardhigh": {"groups": [
        *FIRST_ROUND, "terminal_spell", "card_clean_amount", "card_clean_amount_60",
        "card_high_amount"]},
    "all_spell_cardhigh": {"groups": [*FIRST_ROUND, "terminal_spell", "card_high_amount"]},
    "all_spell_cardhighdays": {"groups": [*FIRST_ROUND, "terminal_spell", "card_high_days30"]},
    "all_spell_cardrecent": {"groups": [*FIRST_ROUND, "terminal_spell", "card_recent_clean"]},
    "all_spell_cardhighdays_cardrecent": {"groups": [*FIRST_ROUND, "terminal_spell",
                                                     "card_high_days30", "card_recent_clean"]},
    "all_spell_cardhighdays_cardrecent_after": {"groups": [
        *FIRST_ROUND, "terminal_spell", "card_high_days30", "card_recent_clean",
        "terminal_after_fraud"]},
    "all_spell_cardhigh30": {"groups": [*FIRST_ROUND, "terminal_spell", "card_high_30"]},
    "all_spell_cardhigh_cardrecent": {"groups": [*FIRST_ROUND, "terminal_spell",
                                                 "card_high_amount", "card_recent_clean"]},
    # The groups the simulator's fraud scenarios point at (a card spending 5x its usual
    # amount; a terminal defrauded for 28 days), all computable from the planned state.
    "core": {"groups": ["amount_profile", "gap", "terminal_recency"]},
    **{f"all-{g}": {"groups": [h for h in FIRST_ROUND if h != g]} for g in FIRST_ROUND},
}


def _config(name: str) -> dict:
    """A named configuration; ``<features>+<member>:<key>=<value>,...`` adds member settings.

    For example ``all+booster:fraud_window_days=84`` or ``base+mlp:passes=5``.
    """
    features, *members = name.split("+")
    config = {"groups": CONFIGS[features]["groups"], "booster": {}, "mlp": {}}
    for member in members:
        which, settings = member.split(":")
        for item in settings.split(","):
            key, value = item.split("=")
            config[which][key] = json.loads(value)
    return config


def columns_of(config: dict) -> list[str]:
    return FEATURE_COLUMNS + [c for g in config["groups"] for c in GROUPS[g]]


def features_by_day(cache: Path, seed: int, days: int = 183, customers: int = 5_000,
                    terminals: int = 10_000) -> dict[dt.date, pd.DataFrame]:
    """Handbook, profile and derived features of every simulated day.

    The handbook and profile columns come from `bench.quality_data`'s cache; the derived
    candidates (`bench.quality_derived`) are added on reading, from those columns.
    """
    frames = quality_data.features_by_day(cache, seed, days, customers, terminals,
                                          profiles=True)
    return quality_derived.with_terminal_after_fraud(quality_derived.with_card_amounts(
        quality_derived.with_fraud_amounts(
            {day: quality_derived.with_derived(frame) for day, frame in frames.items()})))


def make_member(which: str, settings: dict):
    """One member of the `lgbm_mlp` ensemble with `settings` overridden."""
    if which == "booster":
        if "max_bin" in settings:  # a setting of the finer-histogram booster only
            return BinnedWindowBoostingClassifier(**settings)
        return WindowBoostingClassifier(**settings)
    return LEARNERS["mlp"](**settings)


def member_scores(features: dict[dt.date, pd.DataFrame], columns: list[str], which: str,
                  settings: dict, splits: list[tuple[dt.date, dt.date]]) -> dict:
    """Train one member day by day; its scores of each split's test week, and its cost."""
    model = make_member(which, settings)
    last = max(c for c, _ in splits)
    scores, cpu = {}, []
    for day in sorted(d for d in features if d <= last):
        frame = features[day]
        began = time.process_time()
        model.partial_fit(frame[columns].to_numpy(), frame["TX_FRAUD"].to_numpy())
        cpu.append(time.process_time() - began)
        for checkpoint, start in splits:
            if checkpoint == day:
                test = _week(features, start, TEST_DAYS)
                scores[f"{checkpoint}/{start}"] = fraud_scores(model, test[columns].to_numpy())
    return {"scores": scores, "cpu_seconds_per_day": float(np.mean(cpu[-30:]))}


def feature_cpu_seconds(features: dict[dt.date, pd.DataFrame], day: dt.date,
                        repeats: int = 3) -> dict[str, float]:
    """CPU seconds of the handbook features and of every extra for `day` from its history.

    Best of `repeats`; the history is the raw columns of the 37 days before `day` and the
    day itself, as the step reads them today (before carried state).
    """
    history = pd.concat([features[day - dt.timedelta(days=i)][INPUT_COLUMNS]
                         for i in range(HISTORY_DAYS, -1, -1)], ignore_index=True)
    timings = {"handbook": [], "extra": []}
    for _ in range(repeats):
        for name, compute in (("handbook", compute_features), ("extra", extra_features_of_day)):
            began = time.process_time()
            compute(history, day)
            timings[name].append(time.process_time() - began)
    return {name: round(min(values), 3) for name, values in timings.items()} | {
        "transactions": int(len(features[day]))}


def _cached_member(cache: Path, key: str, train) -> dict:
    """`train()`'s result, kept under `cache` by `key` so later runs reuse a trained member."""
    path = cache / "members" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    if path.is_file():
        saved = np.load(path)
        return {"scores": {k: saved[k] for k in saved.files if k != "cpu"},
                "cpu_seconds_per_day": float(saved["cpu"])}
    result = train()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, cpu=result["cpu_seconds_per_day"], **result["scores"])
    return result


class _Evaluator:
    """The handbook's protocol on one seed's splits; each split's frames are built once."""

    def __init__(self, features: dict[dt.date, pd.DataFrame]):
        self._features = features
        self._frames: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}

    def __call__(self, split_key: str, scores: np.ndarray) -> dict[str, float]:
        checkpoint, start = (dt.date.fromisoformat(d) for d in split_key.split("/"))
        if split_key not in self._frames:
            first = checkpoint - dt.timedelta(days=KNOWN_WINDOW_DAYS - 1)
            columns = ["TX_DATETIME", "CUSTOMER_ID", "TX_FRAUD"]
            self._frames[split_key] = (
                _week(self._features, start, TEST_DAYS)[columns],
                _week(self._features, first, (start - first).days)[columns])
        test, labelled = self._frames[split_key]
        metrics = evaluate_split(test.assign(score=scores), labelled, checkpoint, start,
                                 TEST_DAYS, KNOWN_WINDOW_DAYS)
        return {m: metrics[m] for m in METRICS}


def run(cache: Path, seeds: list[int], configs: list[str], weights: list[float],
        splits: list[tuple[dt.date, dt.date]]) -> list[dict]:
    """Every (seed, configuration, booster weight): metrics per split and cost per day.

    Members are trained once per (seed, feature set, member settings) and reused.
    """
    rows = []
    for seed in seeds:
        features = features_by_day(cache, seed)
        evaluate = _Evaluator(features)
        trained: dict[str, dict] = {}
        for name in configs:
            config = _config(name)
            columns = columns_of(config)
            members = {}
            for which in ("booster", "mlp"):
                key = json.dumps([seed, config["groups"], which, config[which],
                                  [[str(c), str(s)] for c, s in splits]], sort_keys=True)
                if key not in trained:
                    trained[key] = _cached_member(cache, key, functools.partial(
                        member_scores, features, columns, which, config[which], splits))
                members[which] = trained[key]
            for weight in weights:
                row = {"seed": seed, "config": name, "booster_weight": weight,
                       "features": len(columns),
                       "cpu_seconds_per_day": sum(m["cpu_seconds_per_day"]
                                                  for m in members.values()),
                       "splits": {}}
                for split_key in members["booster"]["scores"]:
                    mixed = (weight * members["booster"]["scores"][split_key]
                             + (1 - weight) * members["mlp"]["scores"][split_key])
                    row["splits"][split_key] = evaluate(split_key, mixed)
                rows.append(row)
            print(seed, name, json.dumps({w: _mean_row([r for r in rows if r["seed"] == seed
                                                        and r["config"] == name
                                                        and r["booster_weight"] == w])
                                          for w in weights}), flush=True)
    return rows


def _mean_row(rows: list[dict], split_keys: list[str] | None = None) -> dict[str, float]:
    """Metrics averaged over the rows and their splits (or only `split_keys`)."""
    values = {m: [] for m in METRICS}
    for row in rows:
        for key, metrics in row["splits"].items():
            if split_keys is None or key in split_keys:
                for m in METRICS:
                    values[m].append(metrics[m])
    return {m: round(float(np.mean(v)), 4) for m, v in values.items()}


def summary(rows: list[dict], split_keys: list[str] | None = None) -> list[dict]:
    """Per (configuration, weight): mean and sd over seeds of the split-averaged metrics."""
    table = []
    for name, weight in dict.fromkeys((r["config"], r["booster_weight"]) for r in rows):
        mine = [r for r in rows if r["config"] == name and r["booster_weight"] == weight]
        per_seed = [_mean_row([r], split_keys) for r in mine]
        entry = {"config": name, "booster_weight": weight, "features": mine[0]["features"],
                 "seeds": [r["seed"] for r in mine],
                 "cpu_seconds_per_day": round(float(np.mean([r["cpu_seconds_per_day"]
                                                              for r in mine])), 3)}
        for m in METRICS:
            values = [s[m] for s in per_seed]
            entry[m] = [round(float(np.mean(values)), 4),
                        round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else 0.0,
                        round(float(np.min(values)), 4)]
        table.append(entry)
    return table


def best_on_validation(rows: list[dict]) -> tuple[str, float]:
    """The configuration and booster weight with the largest sum of the three metrics'
    validation means (each seed's mean over the two weeks, then over seeds 0-4)."""
    complete = [e for e in summary(rows) if sorted(e["seeds"]) == VALIDATION_SEEDS]
    best = max(complete, key=lambda e: sum(e[m][0] for m in METRICS))
    return best["config"], best["booster_weight"]


def _pm(triple: list[float]) -> str:
    mean, sd, low = triple
    return f"{mean:.3f} ± {sd:.3f} (min {low:.3f})"


def _table(entries: list[dict], extra_header: str = "") -> list[str]:
    header = ["configuration", "booster weight", "inputs", "ROC AUC", "AP", "CP@100",
              "partial_fit CPU s/day"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in entries:
        lines.append("| " + " | ".join([f"`{e['config']}`", f"{e['booster_weight']:g}",
                                        str(e["features"]), *(_pm(e[m]) for m in METRICS),
                                        f"{e['cpu_seconds_per_day']:.2f}"]) + " |")
    return lines


def markdown_section(results: dict) -> str:
    """The QUALITY.md section of this script: validation choices, then the fresh-seed report."""
    out = ["## Extra features and learner settings", "",
           "Written by `python -m bench.quality_features` from "
           "`bench/quality_results_features.json`. Memory engine (the step's `partial_fit` "
           "sequence on in-memory features), 183 simulated days, 5,000 customers, 10,000 "
           "terminals. Feature groups: " + "; ".join(
               f"`{g}` = {', '.join(c)}" for g, c in GROUPS.items()) + ". Definitions: "
           "`trainer/features/profiles.py`. A configuration `all-x` is every group but `x`; "
           "`+booster:k=v` / `+mlp:k=v` override a member's settings of the "
           "`lgbm_mlp` ensemble (the default learner when these runs were made); `max_bin` "
           "makes the booster `trainer.learners.binned_boosting`'s. "
           "`all_spell+booster:fraud_window_days=84` at weight 0.7 is the learner "
           "`lgbm_mlp_profiles`, the default of new chains; "
           "`all_spell+booster:fraud_window_days=84,max_bin=1023` at 0.8 is "
           "`lgbm_mlp_profiles_binned`, a registry learner, not the default. Metrics: mean "
           "± sd over seeds (min = worst seed).", ""]
    if results.get("validation"):
        rows = results["validation"]
        out += ["### Validation (seeds 0-4, weeks 07-11 and 07-18; all choices made here)", "",
                "Each seed's metrics are the mean of its two validation weeks. Rule (set after "
                "seeds 0-1 of `base` and `all`, before the other runs): the configuration "
                "and booster weight with the largest sum of the three metrics' means over "
                "seeds 0-4 is reported "
                "(`best_on_validation`); rows are sorted by validation AP.", ""]
        out += _table(sorted(summary(rows), key=lambda e: -e["average_precision"][0]))
        out += ["", "Commands (in order):", "", "```"]
        out += results.get("validation_commands", []) + ["```", ""]
    report = results.get("report")
    if report:
        headline = f"{HEADLINE_SPLIT[0]}/{HEADLINE_SPLIT[1]}"
        out += [f"### Report (seeds {report['seeds']}, never used for a choice)", ""]
        if report["seeds"] != REPORT_SEEDS:
            out += [f"**Incomplete:** the targets name seeds {REPORT_SEEDS}; only "
                    f"{report['seeds']} were run (time ran out on the shared machine).", ""]
        out += [
                f"Chosen: `{report['chosen']}`, booster weight {report['chosen_weight']:g}; "
                + ("`base` at weight 0.5 is `lgbm_mlp`, the old default, measured in the same "
                   f"run ({report['wall_seconds'] / 60:.1f} min wall)."
                   if not report.get("earlier_command") else
                   f"measured in {report['wall_seconds'] / 60:.1f} min wall; the other rows "
                   "are the earlier report run's (`" + report["earlier_command"] + "`), the "
                   "same deterministic replay on the same seeds, kept rather than trained "
                   "again; `base` at weight 0.5 is `lgbm_mlp`, "
                   "`all_spell+booster:fraud_window_days=84` at 0.7 is `lgbm_mlp_profiles`."),
                "",
                "Headline split (checkpoint 2018-07-31, test 08-08..08-14, 7-day known "
                "window):", ""]
        out += _table(summary(report["rows"], [headline]))
        out += ["", "Prequential (mean of the four test weeks from 08-08, 08-15, 08-22, "
                "08-29, each scored by the checkpoint 8 days before):", ""]
        out += _table(summary(report["rows"]))
        out += ["", "Headline split per seed (chosen configuration):", "",
                "| seed | ROC AUC | AP | CP@100 | above handbook best on all three |",
                "|---|---|---|---|---|"]
        for row in report["rows"]:
            if row["config"] != report["chosen"]:
                continue
            m = row["splits"][headline]
            above = all(m[k] > HANDBOOK_BEST[k] for k in METRICS)
            out.append(f"| {row['seed']} | " + " | ".join(f"{m[k]:.3f}" for k in METRICS)
                       + f" | {'yes' if above else 'NO'} |")
        timing = report["feature_cpu_seconds"]
        out += ["", f"Cost of a default-size day ({timing['transactions']:,} transactions, "
                f"seed {report['seeds'][0]}, {HEADLINE_SPLIT[0]}), CPU seconds, best of 3: "
                f"handbook features from the 38 days' raw rows {timing['handbook']:.3f}, every "
                f"extra candidate from the same rows {timing['extra']:.3f}; `partial_fit` as in "
                "the tables. The step's other costs (checkpoint, scoring, reports) are in "
                "the step engine's table above."]
        out += ["", "Targets of the feature engine: mean " + ", ".join(
            f"{k} >= {v}" for k, v in TARGETS.items()) + "; every seed above " + ", ".join(
            f"{k} {v}" for k, v in HANDBOOK_BEST.items()) + ".", "", "```",
            report["command"], "```", ""]
    return "\n".join(out)


def _load() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}


def _save(results: dict) -> None:
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("validate", "report", "markdown"))
    parser.add_argument("--configs", nargs="+", default=["base", "all"])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--chosen", default=None,
                        help="report: the chosen configuration, or 'best' for the one "
                             "`best_on_validation` picks from the saved validation runs")
    parser.add_argument("--chosen-weight", type=float, default=0.5)
    parser.add_argument("--keep-earlier", action="store_true",
                        help="report: keep the saved report's rows of other configurations "
                             "instead of training `base` again")
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "fraudpipe-quality-cache")
    args = parser.parse_args(argv)
    results = _load()
    began = time.perf_counter()
    if args.phase == "validate":
        seeds = args.seeds or VALIDATION_SEEDS
        rows = run(args.cache, seeds, args.configs, args.weights, VALIDATION_SPLITS)
        results = _load()  # another run may have saved while this one trained
        kept = [r for r in results.get("validation", [])
                if (r["seed"], r["config"], r["booster_weight"]) not in
                {(x["seed"], x["config"], x["booster_weight"]) for x in rows}]
        results["validation"] = kept + rows
        results.setdefault("validation_commands", []).append(
            f"nice -n {os.nice(0)} .venv/bin/python -m bench.quality_features validate "
            f"--seeds {' '.join(map(str, seeds))} --configs {' '.join(args.configs)} "
            f"--weights {' '.join(map(str, args.weights))}"
            f"  # {time.perf_counter() - began:.0f} s")
    elif args.phase == "report":
        if not args.chosen:
            parser.error("report needs --chosen (a configuration, or 'best')")
        requested = args.chosen
        if args.chosen == "best":
            args.chosen, args.chosen_weight = best_on_validation(results["validation"])
        seeds = args.seeds or REPORT_SEEDS
        chosen = run(args.cache, seeds, [args.chosen], [args.chosen_weight],
                     PREQUENTIAL_SPLITS)
        earlier = results.get("report", {})
        if args.keep_earlier:
            # The earlier report's rows of other configurations: the same deterministic
            # replay on the same seeds, not trained again.
            old = [r for r in earlier.get("rows", [])
                   if (r["config"], r["booster_weight"]) != (args.chosen, args.chosen_weight)
                   and r["seed"] in seeds]
        else:
            old = run(args.cache, seeds, ["base"], [0.5], PREQUENTIAL_SPLITS)
        timing = feature_cpu_seconds(features_by_day(args.cache, seeds[0]), HEADLINE_SPLIT[0])
        results["report"] = {"rows": old + chosen, "feature_cpu_seconds": timing,
                             "earlier_command": earlier.get("command")
                             if args.keep_earlier else None,
                             "chosen": args.chosen,
                             "chosen_weight": args.chosen_weight, "seeds": seeds,
                             "wall_seconds": time.perf_counter() - began,
                             "command": f"nice -n {os.nice(0)} .venv/bin/python -m "
                                        f"bench.quality_features report --chosen {requested}"
                                        + ("" if seeds == REPORT_SEEDS else
                                           f" --seeds {' '.join(map(str, seeds))}")
                                        + ("" if requested == "best" else
                                           f" --chosen-weight {args.chosen_weight}")
                                        + (" --keep-earlier" if args.keep_earlier else "")}
    _save(results)
    from bench.quality import write_quality_md

    write_quality_md()
    print(markdown_section(results))


if __name__ == "__main__":
    main()
