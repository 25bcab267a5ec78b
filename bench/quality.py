"""Model quality: every candidate learner through the pipeline's own step, several seeds.

For each seed the handbook simulation (183 days from 2018-04-01 at default size) is
ingested once onto a cached storage root with every day's features cached
(`bench.quality_data.prepared_share`). Each (seed, candidate) run copies that root and
calls `trainer.step.run_step` day by day from 2018-04-01 through 2018-08-21: load the
head checkpoint, features, score, `partial_fit` on the day, skops checkpoint, CAS commit.
Then `trainer.evaluation.checkpoint.evaluate_checkpoint` scores

* the headline split (docs/facts.md#features-and-evaluation): checkpoint 2018-07-31, test
08-08..08-14, 7-day
  known window;
* the prequential protocol: test weeks from 08-08, 08-15, 08-22 and 08-29, each scored
  by the checkpoint of 8 days before.

The table (mean ± sd over seeds, the step's wall time per day, the checkpoint size) is
printed beside the handbook's published rows, saved as JSON and written to
`bench/QUALITY.md`. Hyper-parameters are not chosen here: see `bench.quality_tune`,
which uses validation weeks before the test weeks only.

Usage:
    .venv/bin/python -m bench.quality [--seeds 0 1 2] [--candidates ...] [--jobs 2]
    .venv/bin/python -m bench.quality --quick      # one small seed, two learners
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench.quality_data import START, copy_share, features_by_day, prepared_share
from bench.quality_table import markdown, print_table
from bench.quality_tune import HEADLINE_SPLIT, PREQUENTIAL_SPLITS, replay
from trainer.evaluation.prequential import METRICS, evaluate_splits, mean_over_splits
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.registry import LEARNERS, uses_profiles
from trainer.share.lineage import Lineage
from trainer.step import run_step

HERE = Path(__file__).resolve().parent
#: Step times are read from this many last days, when every windowed state is full.
STEADY_DAYS = 30


def run_candidate(task: dict) -> dict:
    """One candidate on one seed: the chain through `last_day`, then its evaluations."""
    logging.disable(logging.INFO)
    share = copy_share(Path(task["prepared"]), Path(task["workdir"]))
    last = dt.date.fromisoformat(task["last_day"])
    seconds, cpu_seconds = [], []
    day = START
    began = time.perf_counter()
    while day <= last:
        cpu_began = time.process_time()
        seconds.append(run_step(share, day, learner=task["candidate"]).seconds)
        # CPU time too: on a shared machine wall time mostly measures the neighbours.
        cpu_seconds.append(time.process_time() - cpu_began)
        day += dt.timedelta(days=1)
    lineage = Lineage.load(share)
    checkpoint = share.root / lineage.entry_for(HEADLINE_SPLIT[0]).checkpoint
    # The same code as `fraudpipe evaluate --prequential` (trainer.evaluation.prequential).
    splits = {key: {k: v for k, v in metrics.items() if k != "learner"}
              for key, metrics in evaluate_splits(share, [
                  (dt.date.fromisoformat(c), dt.date.fromisoformat(s))
                  for c, s in task["splits"]]).items()}
    steady = seconds[-STEADY_DAYS:]
    return {"seed": task["seed"], "candidate": task["candidate"], "splits": splits,
            "step_seconds_mean": float(np.mean(steady)), "step_seconds_max": float(max(steady)),
            "step_cpu_seconds_mean": float(np.mean(cpu_seconds[-STEADY_DAYS:])),
            "checkpoint_bytes": checkpoint.stat().st_size,
            "total_seconds": time.perf_counter() - began}


def run_candidate_in_memory(task: dict) -> dict:
    """One candidate on one seed with `bench.quality_tune.replay` instead of the step.

    Same `partial_fit` calls on the same features in the same order; the step only adds
    a skops round trip between days, and `tests/unit/test_model_learners.py` checks that
    a reloaded learner trains to the same bytes as one kept in memory. Step times here
    are `partial_fit` alone; the step engine measures the whole step.
    """
    candidate = task["candidate"]
    features = features_by_day(Path(task["cache"]), task["seed"], task["days"],
                               task["customers"], task["terminals"],
                               profiles=uses_profiles(candidate))
    splits = [(dt.date.fromisoformat(a), dt.date.fromisoformat(b)) for a, b in task["splits"]]
    result = replay(LEARNERS[candidate], features, splits, size_on=HEADLINE_SPLIT[0],
                    learner=candidate)
    return {"seed": task["seed"], "candidate": task["candidate"], "splits": result["splits"],
            "step_seconds_mean": result["seconds_per_day"],
            "step_seconds_max": result["seconds_per_day"],
            "step_cpu_seconds_mean": result["cpu_seconds_per_day"],
            "checkpoint_bytes": result["checkpoint_bytes"]}


def _prepare(args_tuple) -> str:
    cache, seed, days, customers, terminals = args_tuple
    return str(prepared_share(Path(cache), seed, days, customers, terminals))


def summarise(runs: list[dict], candidates: list[str]) -> dict:
    """Mean and sd over seeds per candidate: headline, prequential mean, cost."""
    headline_key = f"{HEADLINE_SPLIT[0]}/{HEADLINE_SPLIT[1]}"
    summary = {}
    for name in candidates:
        mine = [r for r in runs if r["candidate"] == name]
        if not mine:
            continue
        row: dict = {"seeds": sorted(r["seed"] for r in mine)}
        for m in METRICS:
            head = [r["splits"][headline_key][m] for r in mine]
            row[m] = [float(np.mean(head)), float(np.std(head, ddof=1)) if len(head) > 1 else 0.0]
            pre = [mean_over_splits(r["splits"])[m] for r in mine]
            row[f"prequential_{m}"] = [float(np.mean(pre)),
                                       float(np.std(pre, ddof=1)) if len(pre) > 1 else 0.0]
        row["step_seconds_mean"] = float(np.mean([r["step_seconds_mean"] for r in mine]))
        row["step_seconds_max"] = float(max(r["step_seconds_max"] for r in mine))
        row["step_cpu_seconds_mean"] = float(np.mean([r["step_cpu_seconds_mean"]
                                                       for r in mine]))
        row["checkpoint_bytes"] = int(np.mean([r["checkpoint_bytes"] for r in mine]))
        summary[name] = row
    return summary


#: The handbook's best batch models, anywhere (prequential, tuned): every report seed is
#: to beat all three.
HANDBOOK_BEST = {"auc_roc": 0.879, "average_precision": 0.687, "card_precision_at_100": 0.305}


def _per_seed_notes(saved: dict) -> list[str]:
    """One line per (seed, learner) of a report run: headline metrics, above the handbook?"""
    headline = "/".join(d.isoformat() for d in HEADLINE_SPLIT)
    notes = [f"Seeds {saved['meta']['seeds']} through the step (never used for a "
             "choice): `nice -n 10 .venv/bin/python -m bench.quality --engine step --seeds "
             "10 11 12 13 14 --candidates lgbm_mlp_profiles lgbm_mlp --out "
             "bench/quality_results_step_report.json`; other jobs shared the machine."]
    for run in sorted(saved["runs"], key=lambda r: (r["candidate"], r["seed"])):
        m = run["splits"][headline]
        below = [k for k in METRICS if m[k] <= HANDBOOK_BEST[k]]
        notes.append(f"Report seed {run['seed']}, {run['candidate']}, headline split: AUC "
                     f"{m['auc_roc']:.4f}, AP {m['average_precision']:.4f}, CP@100 "
                     f"{m['card_precision_at_100']:.4f}; "
                     + ("above the handbook's best on all three." if not below else
                        f"NOT above the handbook's best on {', '.join(below)}."))
    return notes


def write_quality_md() -> None:
    """bench/QUALITY.md from every engine's saved results (memory first, then step).

    ``quality_results_step_report.json`` (``--out``) is the step engine on the report
    report seeds 10-14, a section of its own after the step engine's.
    """
    sections, runs, report_notes = [], {}, []
    for engine in ("memory", "step", "step_report"):
        path = HERE / f"quality_results_{engine}.json"
        if engine == "step_report" and path.is_file():
            saved = json.loads(path.read_text())
            sections.append((saved["summary"], saved["meta"]))
            report_notes = _per_seed_notes(saved)
        elif path.is_file():
            saved = json.loads(path.read_text())
            sections.append((saved["summary"], saved["meta"]))
            runs[engine] = {(r["seed"], r["candidate"]): r for r in saved["runs"]}
    notes = []
    for key in sorted(set(runs.get("memory", {})) & set(runs.get("step", {}))):
        memory, step = runs["memory"][key], runs["step"][key]
        same = (memory["checkpoint_bytes"] == step["checkpoint_bytes"] and all(
            memory["splits"][split][m] == step["splits"][split][m]
            for split in memory["splits"] for m in METRICS))
        notes.append(f"Seed {key[0]}, {key[1]}: the step engine's metrics and 2018-07-31 "
                     f"checkpoint size {'equal' if same else 'DIFFER FROM'} the memory "
                     f"engine's.")
    text = markdown(sections, notes + report_notes)
    features = HERE / "quality_results_features.json"
    if features.is_file():
        from bench.quality_features import markdown_section

        text = text.rstrip("\n") + "\n\n" + markdown_section(json.loads(features.read_text()))
        from bench.quality_sampling import markdown_section as sampling_section

        text = text.rstrip("\n") + "\n\n" + sampling_section(json.loads(features.read_text()))
    gap = HERE / "quality_results_gap.json"
    if gap.is_file():
        from bench.quality_gap import markdown_section as gap_section

        text = text.rstrip("\n") + "\n\n" + gap_section(
            json.loads(gap.read_text()),
            json.loads(features.read_text()) if features.is_file() else None)
    ceiling = HERE / "quality_results_ceiling.json"
    if ceiling.is_file():
        from bench.quality_ceiling import markdown_section as ceiling_section

        text = text.rstrip("\n") + "\n\n" + ceiling_section(json.loads(ceiling.read_text()))
        if features.is_file():
            from bench.quality_fraction import markdown_section as fraction_section

            text = text.rstrip("\n") + "\n\n" + fraction_section(
                json.loads(features.read_text()), json.loads(ceiling.read_text()))
        step_report = HERE / "quality_results_step_cards_report.json"
        if step_report.is_file():
            from bench.quality_fraction import step_section

            text = text.rstrip("\n") + "\n\n" + step_section(
                json.loads(step_report.read_text()), json.loads(ceiling.read_text()))
    caps = HERE / "quality_results_caps.json"
    if caps.is_file():
        from bench.bounded_caps import markdown_section as caps_section

        text = text.rstrip("\n") + "\n\n" + caps_section(json.loads(caps.read_text()))
    (HERE / "QUALITY.md").write_text(text)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print the table; write JSON and (unless --quick) QUALITY.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--candidates", nargs="+", default=sorted(LEARNERS),
                        choices=sorted(LEARNERS))
    parser.add_argument("--days", type=int, default=183)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--engine", choices=("step", "memory"), default="step",
                        help="step: the pipeline's run_step on a storage root (default); "
                             "memory: the same partial_fit sequence in memory (faster)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes")
    parser.add_argument("--quick", action="store_true",
                        help="seed 0, 1,000 customers, 2,000 terminals, sgd and the default, "
                             "headline split only; writes no QUALITY.md")
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "fraudpipe-quality-cache")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results (default bench/quality_results.json, or the "
                             "cache dir with --quick)")
    args = parser.parse_args(argv)
    splits = PREQUENTIAL_SPLITS
    if args.quick:
        args.seeds, args.customers, args.terminals = [0], 1_000, 2_000
        args.candidates = sorted({"sgd", DEFAULT_LEARNER})
        splits = [HEADLINE_SPLIT]
    last_day = max(c for c, _ in splits)
    needed = (max(s for _, s in splits) - START).days + 7
    if args.days < needed:
        parser.error(f"--days {args.days} is too short: the splits need {needed} days")
    args.cache.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        prepared = {s: None for s in args.seeds}
        if args.engine == "step":
            prepared = dict(zip(args.seeds, pool.map(_prepare, [
                (str(args.cache), s, args.days, args.customers, args.terminals)
                for s in args.seeds]), strict=True))
        tasks = [{"seed": s, "candidate": c, "prepared": prepared[s], "cache": str(args.cache),
                  "days": args.days, "customers": args.customers, "terminals": args.terminals,
                  "workdir": str(args.cache / "runs" / f"s{s}_c{args.customers}" / c),
                  "last_day": last_day.isoformat(),
                  "splits": [(a.isoformat(), b.isoformat()) for a, b in splits]}
                 for c in args.candidates for s in args.seeds]
        # Slow candidates first so the two processes finish together.
        tasks.sort(key=lambda t: t["candidate"].startswith("lgbm"), reverse=True)
        worker = run_candidate if args.engine == "step" else run_candidate_in_memory
        runs = list(pool.map(worker, tasks))
    summary = summarise(runs, args.candidates)
    meta = {"engine": args.engine, "seeds": args.seeds, "days": args.days,
            "customers": args.customers, "terminals": args.terminals,
            "default_learner": DEFAULT_LEARNER,
            "wall_seconds": time.perf_counter() - began,
            "headline_split": [d.isoformat() for d in HEADLINE_SPLIT],
            "prequential_splits": [[a.isoformat(), b.isoformat()] for a, b in splits]}
    results = {"meta": meta, "summary": summary, "runs": runs}
    print_table(summary, meta)
    out = args.out or (args.cache / "quality_quick.json" if args.quick
                       else HERE / f"quality_results_{args.engine}.json")
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if not args.quick:
        write_quality_md()
    return results


if __name__ == "__main__":
    main()
