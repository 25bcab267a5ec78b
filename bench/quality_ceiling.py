"""How high the handbook's metrics can go on the simulator, before any model is trained.

The feature-engine targets ask for mean ROC AUC >= 0.900 and CP@100 >= 0.325 on the
headline split of fresh seeds. Part of every test week's frauds carries no signal in any
input a model may use, so those targets have a ceiling. This script measures it per seed,
for each split of the quality benchmarks, with two scorings of the test week:

* ``perfect``: the label itself (plus a tiny seeded noise to break ties): the metric's
  absolute maximum (CP@100 is below 1 because fewer than 100 cards are defrauded a day).
* ``knowable``: every fraud that the inputs can reveal ranks first, every other
  transaction after it in random order. A fraud is knowable when its amount is above 220
  (the simulator's scenario 1 rule, visible in the amount), when it comes from a
  compromised card (scenario 3: a third of the card's amounts multiplied by 5; counted
  knowable even when the multiplied amount looks ordinary, so this is generous), or when
  it comes from a compromised terminal (scenario 2) that already has a fraud in the
  delayed window ``(t - 37 days, t - 7 days]``. The rest, a compromised terminal's frauds
  before any of its labels arrives (labels come 7 days late: docs/facts.md#features-and-
  evaluation), look like any genuine transaction: no input differs, so a model ranks them
  among the genuines, which is what the random order stands for (metrics averaged over
  ``RANDOM_ORDERS`` orders). For CP@100 and AP this is a generous bound. For ROC AUC it
  is a rough one: some 90 unknowable frauds decide most of it, and where a model happens
  to rank them above the median genuine it beats the ceiling (seed 11: by 0.011).

Two corrections (checked independently of the first version of this script):

* The ``frauds`` and ``knowable`` counts are also given after the known-compromised
  filter (``*_after_filter``), the rows the metrics are computed on: after it about 22%
  of the frauds are unknowable, not the 16-17% the counts before it suggest.
* ``informed``: the ``knowable`` ranking with what that ceiling itself knows put to use.
  Every fraud at a terminal with a fraud already known in the delayed window is knowable,
  so a row at such a terminal that is not a knowable fraud is genuine: it ranks last,
  below the rows whose fraud no input can reveal. This oracle's ROC AUC (~0.904 on the
  report seeds) is what a model could reach by that reasoning alone; it is an expected
  value of random orders too, not a bound.

A third oracle, ``strict``, is the ``knowable`` one without the compromised terminal's
frauds whose own spell shows no fraud old enough for its label to be known (no scenario-2
fraud of the same terminal at least 7 days before the row and at most 27 calendar days
before it, `spell_visible`): the ``knowable`` rule counts them because the terminal has
*some* known fraud, but when that fraud belongs to another scenario or an earlier spell,
every input of the row is the same as at any terminal that once met a fraud (thousands of
genuine rows a week), so no model can rank them first. ``strict`` is still generous: it
ranks every compromised card's fraud first, even where the x5 amount looks ordinary.

The scenario of each fraud comes from the simulator (``TX_FRAUD_SCENARIO``); no model reads
it. Computing a ceiling on the report seeds chooses nothing: it bounds what any choice can
reach.

Usage:
    nice -n 15 .venv/bin/python -m bench.quality_ceiling [--seeds 0 1 2 3 4 10 11 12 13 14]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.quality_data import simulation
from bench.quality_features import (
    REPORT_SEEDS,
    TARGETS,
    VALIDATION_SEEDS,
    _Evaluator,
    features_by_day,
)
from bench.quality_tune import (
    HEADLINE_SPLIT,
    KNOWN_WINDOW_DAYS,
    METRICS,
    PREQUENTIAL_SPLITS,
    TEST_DAYS,
    VALIDATION_SPLITS,
    _week,
)
from trainer.evaluation.split import filter_known_compromised, known_compromised_by_test_day
from trainer.features.profiles import LOOKBACK_DAYS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "quality_results_ceiling.json"
NS_PER_DAY = 86_400 * 10**9
#: Calendar days a compromised terminal stays compromised (docs/facts.md, section 2).
SPELL_DAYS = 28
#: Scenario 1 of the simulator: every amount above this is a fraud (docs/facts.md).
FRAUD_AMOUNT = 220.0
TERMINAL_SCENARIO, CARD_SCENARIO = 2, 3
#: The metrics the strict oracle bounds (for ROC AUC no oracle here is a bound).
STRICT_METRICS = ("average_precision", "card_precision_at_100")
#: Random orders of the unknowable rows averaged per split: one order moves ROC AUC by
#: up to about 0.005 (some 80 frauds placed among 58,000 genuines), the mean of 20 by ~0.001.
RANDOM_ORDERS = 20


def knowable_frauds(test: pd.DataFrame, scenarios: np.ndarray) -> np.ndarray:
    """True for the test rows whose fraud the inputs can reveal (see the module docstring)."""
    fraud = test["TX_FRAUD"].to_numpy() == 1
    terminal_known = test["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"].to_numpy() < LOOKBACK_DAYS
    return fraud & ((test["TX_AMOUNT"].to_numpy() > FRAUD_AMOUNT)
                    | (scenarios == CARD_SCENARIO)
                    | ((scenarios == TERMINAL_SCENARIO) & terminal_known))


def spell_visible(test: pd.DataFrame, scenarios: np.ndarray, every: pd.DataFrame) -> np.ndarray:
    """True for the terminal frauds whose spell has a fraud at least 7 days old.

    A spell is 28 calendar days, so a scenario-2 fraud of the same terminal at most 27
    calendar days before the row and at least 7 days before it belongs to the same spell
    (two spells of one terminal overlapping are rare at 2 of 10,000 terminals a day).
    `every` holds the simulation's rows with TX_DATETIME, TERMINAL_ID, TX_FRAUD_SCENARIO.
    """
    frauds = every[every["TX_FRAUD_SCENARIO"] == TERMINAL_SCENARIO]
    times = frauds["TX_DATETIME"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    order = np.lexsort((times, frauds["TERMINAL_ID"].to_numpy()))
    terminals, times = frauds["TERMINAL_ID"].to_numpy()[order], times[order]
    row_times = test["TX_DATETIME"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    row_terminals = test["TERMINAL_ID"].to_numpy()
    visible = np.zeros(len(test), dtype=bool)
    for i in np.flatnonzero(scenarios == TERMINAL_SCENARIO):
        lo, hi = np.searchsorted(terminals, row_terminals[i], side="left"), np.searchsorted(
            terminals, row_terminals[i], side="right")
        earlier = times[lo:hi]
        known = earlier <= row_times[i] - 7 * NS_PER_DAY
        same_spell = row_times[i] // NS_PER_DAY - earlier // NS_PER_DAY < SPELL_DAYS
        visible[i] = bool((known & same_spell).any())
    return visible


def strict_frauds(test: pd.DataFrame, scenarios: np.ndarray, knowable: np.ndarray,
                  visible: np.ndarray) -> np.ndarray:
    """`knowable` without the terminal frauds whose own spell no input shows yet."""
    return knowable & ~((scenarios == TERMINAL_SCENARIO)
                        & (test["TX_AMOUNT"].to_numpy() <= FRAUD_AMOUNT) & ~visible)


def informed_tiers(test: pd.DataFrame, knowable: np.ndarray) -> np.ndarray:
    """The informed oracle's ranking: 2 knowable frauds, 1 rows that may hide a fraud no
    input reveals, 0 rows genuine for sure (at a terminal with a known fraud, yet not a
    knowable fraud: every fraud at such a terminal is knowable)."""
    terminal_known = test["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"].to_numpy() < LOOKBACK_DAYS
    return np.where(knowable, 2.0, np.where(terminal_known, 0.0, 1.0))


def seed_ceilings(cache: Path, seed: int) -> dict[str, dict]:
    """Split key -> the two ceilings' metrics and the test week's fraud counts."""
    features = features_by_day(cache, seed)
    scenarios_by_day = {day: frame[["TRANSACTION_ID", "TX_DATETIME", "TERMINAL_ID",
                                    "TX_FRAUD_SCENARIO"]]
                        for day, frame in simulation(seed, len(features))}
    every = pd.concat(scenarios_by_day.values(), ignore_index=True)
    evaluate = _Evaluator(features)
    out = {}
    for checkpoint, start in dict.fromkeys([*VALIDATION_SPLITS, *PREQUENTIAL_SPLITS]):
        test = _week(features, start, TEST_DAYS)
        scenarios = test[["TRANSACTION_ID"]].merge(
            _week(scenarios_by_day, start, TEST_DAYS)[["TRANSACTION_ID", "TX_FRAUD_SCENARIO"]],
            on="TRANSACTION_ID", how="left", validate="one_to_one")["TX_FRAUD_SCENARIO"].to_numpy()
        knowable = knowable_frauds(test, scenarios)
        rng = np.random.default_rng([seed, start.toordinal()])
        key = f"{checkpoint}/{start}"
        draws = [evaluate(key, knowable + rng.random(len(test)) * 1e-3)
                 for _ in range(RANDOM_ORDERS)]
        out[key] = {
            "perfect": evaluate(key, test["TX_FRAUD"].to_numpy() + rng.random(len(test)) * 1e-3),
            "knowable": {m: _mean([d[m] for d in draws]) for m in METRICS},
            "frauds": int(test["TX_FRAUD"].sum()), "knowable_frauds": int(knowable.sum()),
        }
        tiers = informed_tiers(test, knowable)
        informed = [evaluate(key, tiers + rng.random(len(test)) * 1e-3)
                    for _ in range(RANDOM_ORDERS)]
        out[key]["informed"] = {m: _mean([d[m] for d in informed]) for m in METRICS}
        strict = strict_frauds(test, scenarios, knowable, spell_visible(test, scenarios, every))
        draws = [evaluate(key, strict + rng.random(len(test)) * 1e-3)
                 for _ in range(RANDOM_ORDERS)]
        out[key]["strict"] = {m: _mean([d[m] for d in draws]) for m in METRICS}
        out[key]["strict_frauds"] = int(strict.sum())
        out[key].update(_after_filter(features, test, knowable, checkpoint, start))
    return out


def _after_filter(features: dict, test: pd.DataFrame, knowable: np.ndarray,
                  checkpoint, start) -> dict[str, int]:
    """Frauds and knowable frauds among the rows the known-compromised filter keeps."""
    first = checkpoint - dt.timedelta(days=KNOWN_WINDOW_DAYS - 1)
    labelled = _week(features, first, (start - first).days)[
        ["TX_DATETIME", "CUSTOMER_ID", "TX_FRAUD"]]
    excluded = known_compromised_by_test_day(labelled, checkpoint, start, TEST_DAYS,
                                             KNOWN_WINDOW_DAYS)
    kept = filter_known_compromised(test.assign(KNOWABLE=knowable), start, excluded)
    return {"frauds_after_filter": int(kept["TX_FRAUD"].sum()),
            "knowable_frauds_after_filter": int(kept["KNOWABLE"].sum())}


def _mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 4)


def markdown_section(results: dict) -> str:
    """The QUALITY.md section: the headline split's ceilings per seed, then the means."""
    headline = f"{HEADLINE_SPLIT[0]}/{HEADLINE_SPLIT[1]}"
    validation = [f"{c}/{s}" for c, s in VALIDATION_SPLITS]
    seeds = sorted(results["seeds"], key=int)
    out = ["## How high the metrics can go", "",
           "Written by `python -m bench.quality_ceiling` (definitions in its docstring). "
           "`perfect` scores each test transaction by its label; `knowable` ranks first "
           "the frauds some input reveals (an amount above 220, a compromised card, a "
           "compromised terminal with a fraud already known in the delayed window) and "
           "the rest at random among the genuines: a compromised terminal's frauds before "
           "its first label arrives (7 days late) look like genuine transactions in every "
           "input. For CP@100 and AP `knowable` is a generous bound; for ROC AUC a rough "
           "one (the ~90 unknowable frauds decide much of it, so a model that ranks them "
           "above the median genuine by chance can pass it by about 0.01).", "",
           "",
           "Corrections (second version of the script): `frauds` and `knowable` count the "
           "test week before the known-compromised filter; the metrics are computed after "
           "it, where the `after filter` columns count (about 22% of the frauds there are "
           "unknowable, not 16-17%). `informed ROC AUC` is the same oracle when it also "
           "uses what it knows: a row at a terminal with a known fraud that is not a "
           "knowable fraud must be genuine, so it ranks last; that lifts the oracle's AUC "
           "(the knowable AUC is an expected value, not a bound). A dash: the seed was not "
           "rerun with the corrected script.",
           "",
           "Headline split (checkpoint 2018-07-31, test 08-08..08-14), and the mean of the "
           "two validation weeks:", "",
           "| seed | frauds | knowable | frauds after filter | knowable after filter "
           "| knowable ROC AUC | informed ROC AUC | knowable AP | knowable CP@100 "
           "| perfect CP@100 | validation: knowable AUC / AP / CP@100 |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for seed in seeds:
        split = results["seeds"][seed][headline]
        k = split["knowable"]
        v = [_mean([results["seeds"][seed][s]["knowable"][m] for s in validation])
             for m in METRICS]
        after = ("frauds_after_filter" in split)
        share = (f" ({1 - split['knowable_frauds_after_filter'] / split['frauds_after_filter']:.0%}"
                 " unknowable)") if after else ""
        out.append(f"| {seed} | {split['frauds']} | {split['knowable_frauds']} | "
                   + (f"{split['frauds_after_filter']} | "
                      f"{split['knowable_frauds_after_filter']}{share} | " if after else "- | - | ")
                   + f"{k['auc_roc']:.3f} | "
                   + (f"{split['informed']['auc_roc']:.3f} | " if "informed" in split else "- | ")
                   + f"{k['average_precision']:.3f} | "
                   f"{k['card_precision_at_100']:.3f} | "
                   f"{split['perfect']['card_precision_at_100']:.3f} | "
                   + " / ".join(f"{x:.3f}" for x in v) + " |")
    out.append("")
    for name, group in (("validation seeds", VALIDATION_SEEDS), ("report seeds", REPORT_SEEDS)):
        have = [str(s) for s in group if str(s) in results["seeds"]]
        if not have:
            continue
        means = {m: _mean([results["seeds"][s][headline]["knowable"][m] for s in have])
                 for m in METRICS}
        out.append(f"- Mean of the knowable ceiling on the headline split, {name} "
                   f"{', '.join(have)}: " + ", ".join(
                       f"{m} {means[m]:.3f} (target {TARGETS[m]})" for m in METRICS) + ".")
    for name, group in (("validation seeds", VALIDATION_SEEDS), ("report seeds", REPORT_SEEDS)):
        have = [str(s) for s in group if "informed" in results["seeds"].get(str(s), {}).get(
            headline, {})]
        if have:
            informed = _mean([results["seeds"][s][headline]["informed"]["auc_roc"]
                              for s in have])
            out.append(f"- Informed oracle's ROC AUC on the headline split, {name} "
                       f"{', '.join(have)}: {informed:.3f}.")
    out += _strict_table(results, seeds)
    stale = [s for s in seeds if "informed" not in results["seeds"][s][headline]]
    if stale:
        out.append(f"- **Not rerun with the corrections:** seeds {', '.join(stale)} (time ran "
                   "out on the shared machine); their after-filter counts and informed AUC "
                   "are missing, their other figures are the first version's, unchanged by "
                   "the corrections (seed 0's rerun reproduced them exactly).")
    commands = results.get("commands", [results["command"]])
    out += ["", "```", *commands, "```", ""]
    return "\n".join(out)


def strict_share(splits: dict, keys: list[str], metric: str) -> float:
    """The strict oracle's `metric` over the knowable one's, each the mean over `keys`.

    `splits` is one seed's results (split key -> its oracles' metrics).
    """
    return float(np.mean([splits[k]["strict"][metric] for k in keys])
                 / np.mean([splits[k]["knowable"][metric] for k in keys]))


def _strict_table(results: dict, seeds: list[str]) -> list[str]:
    """The strict oracle against the knowable one: headline and the prequential weeks."""
    have = [s for s in seeds if all("strict" in results["seeds"][s].get(f"{c}/{t}", {})
                                    for c, t in PREQUENTIAL_SPLITS)]
    if not have:
        return []
    out = ["", "The `strict` oracle (module docstring): the knowable one without the terminal "
           "frauds whose own spell shows no known fraud yet. Prequential: the mean of the "
           "four test weeks from 08-08. `strict / knowable`: the largest fraction of the "
           "knowable ceiling a model can reach if it ranks those frauds where their inputs "
           "put them, among the genuines (and everything else perfectly).", "",
           "| seed | headline: knowable frauds dropped (before the filter) | strict AP "
           "| strict CP@100 "
           "| prequential strict AP | prequential strict CP@100 | prequential strict / "
           "knowable AP | prequential strict / knowable CP@100 |",
           "|---|---|---|---|---|---|---|---|"]
    ratios: dict[str, dict[str, float]] = {m: {} for m in STRICT_METRICS}
    for seed in have:
        weeks = [results["seeds"][seed][f"{c}/{t}"] for c, t in PREQUENTIAL_SPLITS]
        head = results["seeds"][seed][f"{HEADLINE_SPLIT[0]}/{HEADLINE_SPLIT[1]}"]
        row = [seed, str(head["knowable_frauds"] - head["strict_frauds"]),
               f"{head['strict']['average_precision']:.3f}",
               f"{head['strict']['card_precision_at_100']:.3f}"]
        for m in STRICT_METRICS:
            row.append(f"{np.mean([w['strict'][m] for w in weeks]):.3f}")
        for m in STRICT_METRICS:
            ratios[m][seed] = strict_share(results["seeds"][seed],
                                           [f"{c}/{t}" for c, t in PREQUENTIAL_SPLITS], m)
            row.append(f"{ratios[m][seed]:.3f}")
        out.append("| " + " | ".join(row) + " |")
    for name, group in (("validation seeds", VALIDATION_SEEDS), ("report seeds", REPORT_SEEDS)):
        mine = [str(s) for s in group if str(s) in have]
        if mine:
            out.append(f"| **mean, {name}** | | | | | | " + " | ".join(
                f"**{np.mean([ratios[m][s] for s in mine]):.3f}**" for m in STRICT_METRICS)
                + " |")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+",
                        default=[*VALIDATION_SEEDS, *REPORT_SEEDS])
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "fraudpipe-quality-cache")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    # Seeds run before keep their figures; the seeds of this run replace theirs.
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"seeds": {}}
    for seed in args.seeds:
        results["seeds"][str(seed)] = seed_ceilings(args.cache, seed)
    command = ("nice -n 10 .venv/bin/python -m bench.quality_ceiling --seeds "
               + " ".join(map(str, args.seeds)) + f"  # {time.perf_counter() - began:.0f} s")
    results["commands"] = [*results.get("commands", [results.get("command", "")]), command]
    results["command"] = command
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    from bench.quality import write_quality_md

    write_quality_md()
    print(markdown_section(results))


if __name__ == "__main__":
    main()
