"""Shares of a large day for `python -m bench serve`: the batch and the memory figures.

A day of 100,000 transactions (the batch target's size) or 1,000,000 (the memory figure
at the 1M size) is simulated at the handbook's density (`bench.step_throughput`'s
``scaled_config``: customers and terminals scaled with the day's size, the radius so each
customer keeps about 100 terminals), with ``HISTORY_DAYS`` days before it. The history
days are ingested; the chain is trained on the first day only: the service's cost
depends on the history it holds and the model's size, not on how long the chain is, and
a full chain at these sizes would take hours here. The served day is left out.

    .venv/bin/python -m bench.serve_sizes --tx-per-day 100000   # prepare only (cached)
    .venv/bin/python -m bench.serve_sizes --tx-per-day 1000000 --measure

``--measure`` starts `fraudpipe serve` on the share (the served day's history loaded) and
prints its seconds to ready and its memory (VmRSS, VmHWM) as JSON: the 1M figure of
`bench/RESULTS.md` (`python -m bench serve` measures the 100k day itself).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path

from bench.step_throughput import START, scaled_config
from trainer.features.compute import HISTORY_DAYS

#: Day sizes by name, as `bench step` names them.
SIZES = {"100k": 100_000, "1M": 1_000_000}


def big_day_share(data_dir: Path, tx_per_day: int, seed: int = 0) -> tuple[Path, Path, dt.date]:
    """(share, the served day's Parquet file, the served day), built once and cached."""
    from trainer.cli import main

    config = scaled_config(tx_per_day, HISTORY_DAYS + 1, seed)
    where = data_dir / f"serve-day{tx_per_day}-s{seed}"
    served = START + dt.timedelta(days=HISTORY_DAYS)
    share, landing = where / "share", where / "landing"
    day_file = where / f"{served}.parquet"
    if (where / ".complete").is_file():
        return share, day_file, served
    shutil.rmtree(where, ignore_errors=True)
    assert main(["simulate", "--out", str(where / "all"), "--start", START.isoformat(),
                 "--days", str(config.days), "--customers", str(config.customers),
                 "--terminals", str(config.terminals), "--radius", str(config.radius),
                 "--seed", str(seed)]) == 0
    (where / "all" / day_file.name).rename(day_file)
    (where / "all").rename(landing)
    assert main(["ingest", "--source", str(landing), "--storage", str(share)]) == 0
    assert main(["train", "--storage", str(share), "--through", START.isoformat()]) == 0
    shutil.rmtree(landing)  # the share holds the ingested copies
    (where / ".complete").write_text("")
    return share, day_file, served


def main(argv: list[str] | None = None) -> int:
    """Prepare a large-day share (cached under the data directory)."""
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tx-per-day", type=int, default=SIZES["100k"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("FRAUDPIPE_BENCH_DATA",
                                                             "/tmp/fraudpipe-bench"))
    parser.add_argument("--measure", action="store_true",
                        help="start the service on it: seconds to ready and memory")
    args = parser.parse_args(argv)
    share, _, day = big_day_share(Path(args.data_dir), args.tx_per_day, args.seed)
    print(share)
    if args.measure:
        import json
        import sys

        from bench.serve_load import memory_mib, start_service, stop

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from redis_server import free_port

        load = os.getloadavg()[0]
        process, ready = start_service(share, day, free_port())
        try:
            print(json.dumps({"tx_per_day": args.tx_per_day, "start_to_ready_seconds": ready,
                              "memory_ready_mib": memory_mib(process.pid),
                              "loadavg_before_after": [round(load, 2),
                                                       round(os.getloadavg()[0], 2)]}))
        finally:
            stop(process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
