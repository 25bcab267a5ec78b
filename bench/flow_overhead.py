"""Orchestration overhead of the train flow's local backend, per dataset.

Simulates N small days (handbook simulator, 200 customers / 400 terminals), ingests and
queues them outside the measurement, then runs `train_flow(backend="local")` against a
temporary Prefect server (`prefect_test_harness`, SQLite) and a private redis-server on a
free port. Overhead = flow wall time - sum of the steps' own `seconds` (what `run_step`
measures), divided by the number of days: the cost of leases, heartbeats, task runs,
state reporting, progress updates and publishing the artifacts.

Usage:
    .venv/bin/python bench/flow_overhead.py [--days 30] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' private redis-server helper


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--terminals", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from prefect.testing.utilities import prefect_test_harness
    from redis_server import RedisServer

    from flows.train import train_flow
    from trainer.backlog import queue_trainable
    from trainer.data.ingest import ingest_path
    from trainer.data.simulator import SimulationConfig, simulate_config, write_day
    from trainer.queue.settings import RedisSettings
    from trainer.queue.work_queue import WorkQueue
    from trainer.share.layout import create_share
    from trainer.share.lineage import verify

    work = Path(tempfile.mkdtemp(prefix="fraudpipe-bench-"))
    config = SimulationConfig(start=dt.date(2018, 4, 1), days=args.days,
                              customers=args.customers, terminals=args.terminals, seed=3)
    for day, frame in simulate_config(config):
        write_day(frame, work / "landing", day)
    share = create_share(work / "share", "fraudpipe bench")[0]
    ingest_path(work / "landing", share)
    server = RedisServer(work / "redis")
    server.start()
    try:
        url = server.url_for_db(0)
        queue_trainable(share, WorkQueue(RedisSettings.from_url(url)))
        with prefect_test_harness(server_startup_timeout=120):
            started = time.perf_counter()
            result = train_flow(storage=str(share.root), redis_url=url)
            wall = time.perf_counter() - started
    finally:
        server.stop()
    steps = [s["seconds"] for s in result["trained"]]
    assert len(steps) == args.days and len(verify(share)) == args.days
    figures = {
        "days": args.days,
        "flow_wall_seconds": round(wall, 2),
        "sum_step_seconds": round(sum(steps), 2),
        "overhead_seconds_per_dataset": round((wall - sum(steps)) / args.days, 3),
        "median_step_seconds": round(sorted(steps)[len(steps) // 2], 3),
        "work_dir": str(work),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
