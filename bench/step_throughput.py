"""One warm-start step on days of 10k, 100k and 1M transactions, beside the sample and a floor.

    .venv/bin/python -m bench step [--seed S] [--quick] [--sizes 10k,100k] [--repeats 3]

For each size the handbook simulator (docs/facts.md#simulated-transactions) is scaled to that many
transactions
a day: customers and terminals grow with the day size and the radius shrinks by the square
root, so each customer still sees about 100 terminals. The share holds the measured day D
and its 37 days of history (what D's features read), plus the day before D trained as the
chain's head, so the step is a real warm start (this setup runs in the parent process).
Then, each case in a fresh Python process
with single-threaded libraries (pinned to one CPU with FRAUDPIPE_BENCH_PIN=1), repeated,
interleaved, and reported as the median:

- fraudpipe: `run_step(share, D)`: features from the head's carried feature state, D and
  its six boundary days (`trainer.features.carried`), score with the head, partial_fit,
  skops checkpoint and feature state, lineage commit, reports;
- fraudpipe, raw history: the same step with its features computed the way every step did
  before the state existed, from D and its 37 days of raw history (the reference path,
  `features_for_day`, and the profile columns' raw reference when the chain's learner
  reads them: `trainer.features.from_history.features_of_day`), so old and new are
  measured in the same run;
- the sample: `bench.sample_logic.train_dataset` on D's pickle, from its own checkpoint of
  the day before, with the day before's pickle as its testing dataset;
- the floor: what any step must do, on that day alone: read D's input columns from
  Parquet, score them with the head model and `partial_fit` it (the head checkpoint is
  loaded and D's features computed beforehand, outside the timing);
- read history: only reading the input columns of D and its 37 days (the old floor, what
  the raw path must read at least).

For the two step cases the child also reports the bytes of dataset files read (a step
reads a file once, to check its sha256 and parse its columns; the raw path hashes each
of its 38 files and parses them again), and for the state path the state file's size and
its entities (bytes per customer and terminal).

Peak RSS is the child's own `ru_maxrss`, which includes the interpreter and libraries; the
`import_rss_mib` field is what the child held after its imports, before the work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: Transactions a day of the handbook's default simulation (docs/facts.md#simulated-transactions).
HANDBOOK_TX_PER_DAY = 9_600
DEFAULT_CUSTOMERS, DEFAULT_TERMINALS, DEFAULT_RADIUS = 5_000, 10_000, 5.0
START = dt.date(2018, 4, 1)
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Case name -> child kind, in the order each repeat runs them.
CASES = {"fraudpipe": "step", "fraudpipe_raw_history": "step_raw", "sample": "sample",
         "floor": "floor", "read_history": "read_history"}

SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
QUICK_SIZES = {"2k": 2_000}

#: Single-threaded libraries in the children: the target is "on one core".
ONE_THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                         "MKL_NUM_THREADS", "ARROW_NUM_THREADS")}


def scaled_config(tx_per_day: int, days: int, seed: int):
    """A simulation with about `tx_per_day` transactions a day and the handbook's density."""
    from trainer.data.simulator import SimulationConfig

    factor = tx_per_day / HANDBOOK_TX_PER_DAY
    return SimulationConfig(start=START, days=days,
                            customers=max(3, round(DEFAULT_CUSTOMERS * factor)),
                            terminals=max(2, round(DEFAULT_TERMINALS * factor)),
                            radius=DEFAULT_RADIUS / factor**0.5, seed=seed)


# --- children: each case runs in its own process -----------------------------------------


def _pin_to_one_cpu() -> int:
    """Pin to one CPU only when asked: on a shared, loaded machine pinning every case to
    the same core makes them queue behind other people's work; the one-thread library
    settings already keep a step on one core at a time (its CPU time is reported)."""
    if os.environ.get("FRAUDPIPE_BENCH_PIN") != "1":
        return -1
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    return cpus[-1]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _prepare(work: Path, tx_per_day: int, history: int, seed: int) -> dict:
    """Simulate history + 2 days into `work/share` (Parquet) and the last two as pickles."""
    from trainer.data.parquet import canonical_parquet_bytes
    from trainer.data.simulator import simulate_config, write_day
    from trainer.share.files import atomic_write_bytes
    from trainer.share.layout import create_share

    share = create_share(work / "share", "fraudpipe bench")[0]
    share.training_dir.mkdir(parents=True, exist_ok=True)
    config = scaled_config(tx_per_day, history + 2, seed)
    days = []
    for day, frame in simulate_config(config):
        atomic_write_bytes(share.training_dataset(day), canonical_parquet_bytes(frame))
        if day >= START + dt.timedelta(days=history):
            write_day(frame, work / "sample", day, fmt="pkl")
        days.append({"date": day.isoformat(), "rows": len(frame)})
    return {"days": days, "customers": config.customers, "terminals": config.terminals,
            "radius": round(config.radius, 4)}


def _read_history(share_root: Path, day: dt.date) -> dict:
    import pandas as pd
    import pyarrow.parquet as pq

    from trainer.features.compute import INPUT_COLUMNS
    from trainer.features.store import history_days
    from trainer.share.layout import Share

    share = Share.at(share_root)
    paths = [share.training_dataset(d) for d in history_days(day)]
    frame = pd.concat([pq.read_table(p, columns=INPUT_COLUMNS).to_pandas()
                       for p in paths if p.is_file()], ignore_index=True)
    return {"rows_read": len(frame)}


def _floor_setup(share, day: dt.date):
    """The head model, its learner and D's features: what the floor takes as given."""
    from trainer.evaluation.scoring import model_inputs
    from trainer.features.from_history import features_of_day
    from trainer.learners.registry import uses_profiles
    from trainer.share.checkpoints import load_checkpoint
    from trainer.share.lineage import Lineage

    head = Lineage.load(share).head_entry
    model = load_checkpoint(share.root / head.checkpoint, head.sha256)
    frame = features_of_day(share, day, profiles=uses_profiles(head.learner), use_cache=False)
    return (model, head.learner, frame, model_inputs(frame, head.learner),
            frame["TX_FRAUD"].to_numpy())


def _floor(share, day: dt.date, model, learner: str, frame, X, y) -> dict:
    """Read D's input columns, score D with the head, partial_fit on D."""
    import pyarrow.parquet as pq

    from trainer.evaluation import scoring
    from trainer.features.compute import INPUT_COLUMNS

    table = pq.read_table(share.training_dataset(day), columns=INPUT_COLUMNS)
    columns = {name: table.column(name).to_numpy() for name in INPUT_COLUMNS}
    scoring.score_day(model, frame, learner)
    model.partial_fit(X, y)
    return {"rows_read": len(columns["TRANSACTION_ID"])}


def _raw_carried(share, day: dt.date, profiles: bool):
    """The step's features the way they were computed before the state: 38 raw days."""
    from trainer.features.carried import CarriedFeatures
    from trainer.features.from_history import features_of_day
    from trainer.features.store import history_days
    from trainer.share.files import sha256_bytes

    frame = features_of_day(share, day, profiles=profiles, use_cache=False)
    read = [d for d in history_days(day) if share.training_dataset(d).is_file()]
    return CarriedFeatures(frame, None, b"", sha256_bytes(b""), [d.isoformat() for d in read],
                           sum(share.training_dataset(d).stat().st_size for d in read), None)


def _recording_step(kind: str, share, day: dt.date) -> dict:
    """`run_step` with its features' source chosen by `kind`, and what it read."""
    import trainer.step as step_module
    from trainer.step import run_step

    real, seen = step_module.carried_features, {}

    def recorded(share_, day_, head_day, head_sha, *, profiles, **more):
        # `more`: the card inputs' flag, for a step that has it (the raw path has none).
        result = _raw_carried(share_, day_, profiles) if kind == "step_raw" else real(
            share_, day_, head_day, head_sha, profiles=profiles, **more)
        seen.update(days_read=len(result.days_read), bytes_read=result.bytes_read,
                    state_rebuilt=result.rebuilt)
        if result.state is not None:
            seen.update(state_bytes=len(result.state_bytes),
                        state_customers=len(result.state.customers.ids),
                        state_terminals=len(result.state.terminals.ids))
        return result

    step_module.carried_features = recorded
    result = run_step(share, day, learner=os.environ.get(LEARNER_ENV) or None)
    if result.status != "trained":
        raise SystemExit(f"step on {day} was {result.status}, expected trained")
    return {"transactions": result.metrics["transactions"],
            "step_seconds": round(result.seconds, 4), **seen}


def _sample_step(work: Path, day: dt.date) -> dict:
    """The sample's training of `day`, continuing from its checkpoint of the day before."""
    from bench import sample_logic

    sample = work / "sample"
    previous = day - dt.timedelta(days=1)
    checkpoint = sample / f"model_cpt_{previous.isoformat()}.pkl"
    testing = min(sample.glob("????-??-??.pkl"))  # the day before D, as in `_prepare`
    return sample_logic.train_dataset(sample / f"{day.isoformat()}.pkl", testing,
                                      sample, checkpoint if checkpoint.is_file() else None)


def _head_step(work: Path, day: dt.date) -> None:
    """Train the chain's head `day` (its feature state built from raw days): setup."""
    from trainer.share.layout import create_share
    from trainer.step import run_step

    share = create_share(work / "share", "fraudpipe bench")[0]
    result = run_step(share, day, learner=os.environ.get(LEARNER_ENV) or None)
    if result.status != "trained":
        raise SystemExit(f"step on {day} was {result.status}, expected trained")


#: The learner of the measured chain (`python -m bench step --learner`); the default's if unset.
LEARNER_ENV = "FRAUDPIPE_BENCH_LEARNER"


def child(kind: str, args: argparse.Namespace) -> dict:
    """Run one case in this process and return its figures."""
    cpu = _pin_to_one_cpu()
    from bench import sample_logic  # noqa: F401
    from trainer.share.layout import create_share
    from trainer.step import run_step  # noqa: F401 - imports are not part of the timing

    import_rss = _rss_mib()
    work, day = Path(args.work), dt.date.fromisoformat(args.day) if args.day else None
    share = create_share(work / "share", "fraudpipe bench")[0]
    given = _floor_setup(share, day) if kind == "floor" else ()
    started, started_cpu = time.perf_counter(), time.process_time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if kind in ("step", "step_raw"):
        detail = _recording_step(kind, share, day)
    elif kind == "floor":
        detail = _floor(share, day, *given)
    elif kind == "read_history":
        detail = _read_history(share.root, day)
    elif kind == "sample":
        detail = _sample_step(work, day)
    else:
        raise SystemExit(f"unknown child kind {kind!r}")
    return {"kind": kind, "seconds": round(time.perf_counter() - started, 4),
            "cpu_seconds": round(time.process_time() - started_cpu, 4),
            # The kernel's part of it: pages faulted in (fresh memory) and system time.
            "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - usage.ru_minflt,
            "system_seconds": round(resource.getrusage(resource.RUSAGE_SELF).ru_stime
                                    - usage.ru_stime, 4),
            "peak_rss_mib": round(_rss_mib(), 1), "import_rss_mib": round(import_rss, 1),
            "cpu": cpu, **detail}


def run_child(kind: str, work: Path, day: dt.date | None = None) -> dict:
    """Run `kind` in a fresh interpreter; returns the JSON it printed."""
    command = [sys.executable, "-m", "bench.step_throughput", "--child", kind,
               "--work", str(work)]
    if day is not None:
        command += ["--day", day.isoformat()]
    env = {**os.environ, **ONE_THREAD_ENV}
    done = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the parent: data, repeats, medians --------------------------------------------------


def summarise(runs: list[dict], transactions: int) -> dict:
    """Median figures of repeated runs of one case."""
    seconds = statistics.median(r["seconds"] for r in runs)
    return {"median_seconds": round(seconds, 3),
            "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 3),
            "median_peak_rss_mib": round(statistics.median(r["peak_rss_mib"] for r in runs), 1),
            "import_rss_mib": round(statistics.median(r["import_rss_mib"] for r in runs), 1),
            "tx_per_s": round(transactions / seconds) if seconds else None,
            "runs": [{k: r[k] for k in ("seconds", "cpu_seconds", "peak_rss_mib")} for r in runs]}


def prepared(data_dir: Path, tx_per_day: int, history: int, seed: int) -> tuple[Path, dict]:
    """The simulated share for one size, reused across runs when already there."""
    work = data_dir / f"tx{tx_per_day}-h{history}-s{seed}"
    marker = work / "prepared.json"
    if marker.is_file():
        return work, json.loads(marker.read_text())
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    info = _prepare(work, tx_per_day, history, seed)
    marker.write_text(json.dumps(info))
    return work, info


def _record_hashes(share) -> None:
    """Write the ingest manifest's sha256 per day, as `fraudpipe ingest` would have.

    The data here is written straight to the share (ingesting 39M rows would only slow
    the setup); a real share has it, and the step checks each file it reads against it.
    """
    from trainer.share.files import atomic_write_text, sha256_file

    if share.ingest_manifest.is_file():
        return
    manifest = {day.isoformat(): {"dataset_sha256": sha256_file(share.training_dataset(day))}
                for day in share.training_dates()}
    atomic_write_text(share.ingest_manifest, json.dumps(manifest, indent=1))


def _restore(snapshot: Path, output: Path) -> None:
    shutil.rmtree(output, ignore_errors=True)
    shutil.copytree(snapshot, output)


def measure_size(name: str, tx_per_day: int, *, data_dir: Path, seed: int, repeats: int,
                 history: int) -> dict:
    """Every case for one day size; see the module docstring."""
    from trainer.share.layout import create_share

    began = time.perf_counter()
    work, info = prepared(data_dir, tx_per_day, history, seed)
    day = dt.date.fromisoformat(info["days"][-1]["date"])
    head = day - dt.timedelta(days=1)
    share = create_share(work / "share", "fraudpipe bench")[0]
    shutil.rmtree(share.output_dir, ignore_errors=True)
    shutil.rmtree(share.features_dir, ignore_errors=True)
    for stale in (work / "sample").glob("model_cpt_*"):
        stale.unlink()
    _record_hashes(share)
    # Setup in this process: only the measured cases below need a fresh interpreter each.
    _head_step(work, head)                  # the chain's head (its state built from raw)
    _sample_step(work, head)                # the sample's checkpoint of the day before
    snapshot = work / "output-snapshot"
    shutil.rmtree(snapshot, ignore_errors=True)
    shutil.copytree(share.output_dir, snapshot)

    cases: dict[str, list[dict]] = {case: [] for case in CASES}
    for _ in range(repeats):  # interleaved, so machine noise hits every case alike
        for case, kind in CASES.items():
            _restore(snapshot, share.output_dir)
            cases[case].append(run_child(kind, work, day))
    transactions = cases["fraudpipe"][0]["transactions"]
    state = cases["fraudpipe"][0]
    result = {"size": name, "tx_per_day_target": tx_per_day, "transactions": transactions,
              "day": day.isoformat(), "history_days": history,
              "history_rows": sum(d["rows"] for d in info["days"][1:-1]),
              "simulation": {k: info[k] for k in ("customers", "terminals", "radius")},
              **{case: summarise(runs, transactions) for case, runs in cases.items()},
              "bytes_read": {case: cases[case][0]["bytes_read"]
                             for case in ("fraudpipe", "fraudpipe_raw_history")},
              "days_read": {case: cases[case][0]["days_read"]
                            for case in ("fraudpipe", "fraudpipe_raw_history")},
              "state": {"bytes": state["state_bytes"], "customers": state["state_customers"],
                        "terminals": state["state_terminals"],
                        "bytes_per_entity": round(state["state_bytes"] / (
                            state["state_customers"] + state["state_terminals"]), 1),
                        "rebuilt": state["state_rebuilt"]}}
    from trainer.share.lineage import Lineage

    # The default learner is another engineer's choice and changes; say which one ran.
    result["learner"] = Lineage.load(share).head_entry.learner
    for case in ("fraudpipe", "fraudpipe_raw_history"):
        result[f"{case}_over_floor"] = round(result[case]["median_seconds"]
                                             / result["floor"]["median_seconds"], 2)
        result[f"{case}_over_floor_cpu"] = round(result[case]["median_cpu_seconds"]
                                                 / result["floor"]["median_cpu_seconds"], 2)
    result["wall_seconds_for_this_size"] = round(time.perf_counter() - began, 1)
    return result


def table(results: list[dict]) -> str:
    """A Markdown table of `run`'s results."""
    lines = ["| day size | history rows | case | median s | CPU s | tx/s | peak RSS MiB |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        for case in CASES:
            c = r[case]
            lines.append(f"| {r['transactions']:,} | {r['history_rows']:,} | {case} | "
                         f"{c['median_seconds']} | {c['median_cpu_seconds']} | "
                         f"{c['tx_per_s']:,} | {c['median_peak_rss_mib']} |")
    return "\n".join(lines)


def run(*, seed: int = 0, quick: bool = False, sizes: list[str] | None = None,
        repeats: int | None = None, data_dir: Path | None = None,
        history: int | None = None) -> dict:
    """Measure every size; returns the JSON document written to results/step.json."""
    from trainer.features.compute import HISTORY_DAYS

    table_of_sizes = QUICK_SIZES if quick else SIZES
    chosen = sizes or list(table_of_sizes)
    known = {**SIZES, **QUICK_SIZES}
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise SystemExit(f"--sizes: unknown {unknown}; expected some of {list(known)}")
    data_dir = data_dir or Path(os.environ.get("FRAUDPIPE_BENCH_DATA", "/tmp/fraudpipe-bench"))
    results = []
    for name in chosen:
        results.append(measure_size(
            name, known[name], data_dir=data_dir, seed=seed,
            repeats=repeats or (1 if quick else 3),
            history=history if history is not None else (3 if quick else HISTORY_DAYS)))
        print(table(results[-1:]), flush=True)
    return {"benchmark": "step", "seed": seed, "quick": quick, "sizes": results}


def main(argv: list[str] | None = None) -> int:
    """Entry point for the children (`--child KIND`) and for a direct run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child")
    parser.add_argument("--work")
    parser.add_argument("--day")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0
    print(json.dumps(run(seed=args.seed), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
