"""A 183-day default backfill end to end: Prefect's local backend, then the bare CLI.

    .venv/bin/python -m bench backfill [--seed S] [--quick]

The handbook's default simulation (5,000 customers, 10,000 terminals, 183 days from
2018-04-01; docs/facts.md#simulated-transactions) is written once as Parquet into a landing
directory (not
timed, reused by `bench.history`). Then, each on a fresh storage root:

- Prefect: `flows.pipeline.daily_pipeline(landing, storage, redis_url, backend="local")`
  (ingest, queue, one leased and heartbeated task per day, whose step computes the day's
  features and trains it, then the report and artifacts), in a fresh process against a
  temporary Prefect server (`prefect_test_harness`, SQLite) and a private redis-server,
  or against a running server given by `--prefect-api-url` (the tests pass theirs).
  Server start-up is outside the timing: a deployment's server is already running.
- CLI: `fraudpipe ingest`, `fraudpipe train --json`, `fraudpipe report` as subprocesses.
- Work alone: `trainer.data.ingest.ingest_path` timed in-process on a third root, so that
  orchestration = Prefect wall - ingest work - the sum of the steps' own `seconds`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.step_throughput import LEARNER_ENV

REPO = Path(__file__).resolve().parents[1]
START = dt.date(2018, 4, 1)


def landing(data_dir: Path, days: int, seed: int, tx_per_day: int | None = None) -> Path:
    """The simulated days as Parquet files, written once per (days, size, seed)."""
    from bench.step_throughput import scaled_config
    from trainer.data.simulator import SimulationConfig, simulate_config, write_day

    where = data_dir / f"landing-d{days}-tx{tx_per_day or 'default'}-s{seed}"
    if (where / ".complete").is_file():
        return where
    shutil.rmtree(where, ignore_errors=True)
    config = (scaled_config(tx_per_day, days, seed) if tx_per_day
              else SimulationConfig(start=START, days=days, seed=seed))
    for day, frame in simulate_config(config):
        write_day(frame, where, day)
    (where / ".complete").write_text("")
    return where


def _prefect_child(landing_dir: Path, root: Path, api_url: str | None = None) -> dict:
    """Run the daily pipeline once; prints the figures (runs in its own process).

    Against the running Prefect API `api_url`, else a temporary server of its own.
    """
    sys.path.insert(0, str(REPO / "tests"))  # the tests' private redis-server helper
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url  # before Prefect reads its settings
    from prefect.testing.utilities import prefect_test_harness
    from redis_server import RedisServer

    from flows.pipeline import daily_pipeline
    from trainer.share.layout import Share, create_share
    from trainer.share.lineage import verify

    create_share(root, "fraudpipe bench")  # the flows open an existing share only
    server = RedisServer(root.parent / "redis")
    server.start()
    try:
        server_context = (contextlib.nullcontext() if api_url
                          else prefect_test_harness(server_startup_timeout=120))
        with server_context:
            started = time.perf_counter()
            result = daily_pipeline(landing=str(landing_dir), storage=str(root),
                                    redis_url=server.url_for_db(0), backend="local",
                                    learner=os.environ.get(LEARNER_ENV) or None)
            wall = time.perf_counter() - started
    finally:
        server.stop()
    steps = [s["seconds"] for s in result["trained"]]
    chain = verify(Share.at(root))
    return {"wall_seconds": round(wall, 2), "sum_step_seconds": round(sum(steps), 2),
            "days_trained": len(steps), "chain_length": len(chain),
            "learner": chain[-1].learner if chain else None}


def _timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


def cli_backfill(landing_dir: Path, root: Path) -> dict:
    """`fraudpipe ingest` + `train` + `report` without Prefect; wall times of each."""
    fraudpipe = str(Path(sys.executable).with_name("fraudpipe"))
    ingest, _ = _timed([fraudpipe, "ingest", "--source", str(landing_dir),
                        "--storage", str(root), "--json"])
    learner = os.environ.get(LEARNER_ENV)
    train, out = _timed([fraudpipe, "train", "--storage", str(root), "--json",
                         *(["--learner", learner] if learner else [])])
    steps = [r["seconds"] for r in json.loads(out)]
    report, _ = _timed([fraudpipe, "report", "--storage", str(root), "--json"])
    return {"ingest_seconds": round(ingest, 2), "train_seconds": round(train, 2),
            "report_seconds": round(report, 2), "wall_seconds": round(ingest + train + report, 2),
            "sum_step_seconds": round(sum(steps), 2), "days_trained": len(steps)}


def ingest_work(landing_dir: Path, root: Path) -> float:
    """Seconds `ingest_path` takes in this process: ingestion without any orchestration."""
    from trainer.data.ingest import ingest_path
    from trainer.share.layout import Share

    started = time.perf_counter()
    ingest_path(landing_dir, Share.at(root))
    return time.perf_counter() - started


def run(*, seed: int = 0, quick: bool = False, data_dir: Path | None = None,
        days: int | None = None, prefect_api_url: str | None = None) -> dict:
    """Both backfills on fresh roots; returns the JSON document for results/backfill.json.

    The Prefect part runs against `prefect_api_url` when given, else a temporary server.
    """
    data_dir = data_dir or Path(os.environ.get("FRAUDPIPE_BENCH_DATA", "/tmp/fraudpipe-bench"))
    days = days or (3 if quick else 183)
    source = landing(data_dir, days, seed, tx_per_day=1_000 if quick else None)
    work = Path(tempfile.mkdtemp(prefix="backfill-", dir=data_dir))
    try:
        server = ["--prefect-api-url", prefect_api_url] if prefect_api_url else []
        done = subprocess.run([sys.executable, "-m", "bench.backfill", "--child-prefect",
                               str(source), str(work / "prefect" / "share"), *server],
                              cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"Prefect backfill failed: {done.stderr[-3000:]}")
        prefect = json.loads(done.stdout.strip().splitlines()[-1])
        cli = cli_backfill(source, work / "cli")
        ingest = ingest_work(source, work / "ingest-only")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    orchestration = prefect["wall_seconds"] - prefect["sum_step_seconds"] - ingest
    result = {
        "benchmark": "backfill", "seed": seed, "quick": quick, "days": days,
        "prefect_local": prefect, "cli": cli, "ingest_work_seconds": round(ingest, 2),
        "prefect_orchestration_seconds": round(orchestration, 2),
        "prefect_orchestration_share": round(orchestration / prefect["wall_seconds"], 3),
        "prefect_orchestration_seconds_per_day": round(orchestration / days, 3),
        "prefect_minus_cli_seconds": round(prefect["wall_seconds"] - cli["wall_seconds"], 2),
    }
    print(table(result), flush=True)
    return result


def table(r: dict) -> str:
    """A Markdown table of `run`'s result."""
    p, c = r["prefect_local"], r["cli"]
    return "\n".join([
        "| way | days | wall s | sum of step s | ingest s | orchestration s (share) |",
        "|---|---|---|---|---|---|",
        f"| Prefect daily-pipeline, local backend | {r['days']} | {p['wall_seconds']} | "
        f"{p['sum_step_seconds']} | {r['ingest_work_seconds']} (work alone) | "
        f"{r['prefect_orchestration_seconds']} ({r['prefect_orchestration_share']:.0%}) |",
        f"| CLI ingest + train + report | {r['days']} | {c['wall_seconds']} | "
        f"{c['sum_step_seconds']} | {c['ingest_seconds']} (with start-up) | "
        f"{round(c['wall_seconds'] - c['sum_step_seconds'] - r['ingest_work_seconds'], 2)} |",
    ])


def main(argv: list[str] | None = None) -> int:
    """`--child-prefect LANDING ROOT` runs the Prefect part; otherwise the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child-prefect", nargs=2, metavar=("LANDING", "ROOT"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--prefect-api-url", help="a running Prefect API (default: a "
                                                  "temporary server)")
    args = parser.parse_args(argv)
    if args.child_prefect:
        print(json.dumps(_prefect_child(Path(args.child_prefect[0]),
                                        Path(args.child_prefect[1]), args.prefect_api_url)))
        return 0
    print(json.dumps(run(seed=args.seed, quick=args.quick,
                         prefect_api_url=args.prefect_api_url), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
