"""The pause of `fraudpipe serve`'s day roll: this tree's code against a baseline's.

    .venv/bin/python -m bench.serve_roll [--sizes default,100k] [--baseline main] [--repeats 3]

On the shares `python -m bench serve` builds (cached in the data directory, read only
here): the default-size share (`bench.serve_load.share_with_head`, 44 days, the handbook's
5,000 customers and 10,000 terminals, ~9,600 transactions a day) and the 100k-a-day share
(`bench.serve_sizes.big_day_share`, 37 days of history). For each size and each code
(this tree, and the baseline revision's `trainer/` exported by `git archive` and put first
on the path of a child process), in process and without HTTP:

1. a `Scorer` (replay clock, in-memory windows) loads the first served day S;
2. S's transactions (its simulated file) are recorded in the day's windows, as the
   service records the transactions it scores;
3. `tick()` runs once: the background thread's work before midnight (the baseline reads
   the next day's history files ahead; this tree also prepares their part);
4. `roll_to(S + 1)`, timed: the pause a request of the new day waits for, as CPU
   seconds of the process (`time.process_time`, no other thread running) and wall seconds;
5. the median µs of one transaction's features over the new day's history
   (`one_row_query_us`), then `tick()` once more (the background pass after the roll:
   this tree serves the day from its two parts and prepares nothing until the day's last
   transactions; the baseline reads the following day's files ahead), timed, and the
   query again;
6. the process's resident memory (VmRSS) when loaded with S's rows recorded, after the
   tick before midnight (what is kept ahead) and after the pass after the roll;
7. (this tree) S's features over its history in the two parts of a roll against one
   part, every value compared (`two_parts_check`: 0 unequal expected).

The service's setting ``freeze_gc`` is on, as `fraudpipe serve` runs: each install
(load, roll) also collects once and freezes what is left (`trainer.serving.scorer`).

Prints one JSON object per (size, code) and the load average around it. The machine is
shared: the CPU seconds move less with other people's work than the wall seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shares(data_dir: Path, sizes: list[str]) -> dict[str, tuple[Path, Path, dt.date]]:
    """(share, the served day's file, the served day) by size name (built once, cached)."""
    from bench.serve_load import share_with_head
    from bench.serve_sizes import SIZES, big_day_share

    out = {}
    for size in sizes:
        if size == "default":
            share, all_days, served = share_with_head(data_dir, days=44, customers=5000,
                                                      terminals=10000, seed=0, served=7)
            out[size] = (share, all_days / f"{served[0]}.parquet", served[0])
        else:
            out[size] = big_day_share(data_dir, SIZES[size])
    return out


def measure(share: Path, day_file: Path, day: dt.date, repeats: int) -> dict:
    """Steps 1-4 of the module doc `repeats` times with the `trainer` on the path."""
    import pandas as pd

    import trainer
    from trainer.serving.intraday import MemoryIntraday
    from trainer.serving.scorer import Scorer, ServeConfig
    from trainer.serving.share_mapping import serving_mapping
    from trainer.share.layout import Share

    frame = pd.read_parquet(day_file).sort_values(["TX_DATETIME", "TRANSACTION_ID"])
    rows = list(zip(frame["TRANSACTION_ID"].tolist(),
                    frame["TX_DATETIME"].astype("datetime64[ns]").astype("int64").tolist(),
                    frame["CUSTOMER_ID"].tolist(), frame["TERMINAL_ID"].tolist(),
                    frame["TX_AMOUNT"].astype(float).tolist(), strict=True))
    the_share = Share.at(share)
    # as `fraudpipe serve` runs; S's rows all recorded, its next day is prepared ahead at
    # the tick before the roll whatever the time of S's last transaction
    config = ServeConfig(mapping=serving_mapping(the_share), clock="replay", today=day,
                         reload_seconds=3600, freeze_gc=True,
                         **({"prepare_ahead_seconds": 86400.0}
                            if "prepare_ahead_seconds" in ServeConfig.__dataclass_fields__
                            else {}))
    runs: list[dict] = []
    for _ in range(repeats):
        scorer = Scorer(the_share, config, MemoryIntraday())
        assert scorer.load()
        scorer.intraday.add_many(day, rows, 0)
        rss = [rss_mib()]
        cpu, wall = time.process_time(), time.perf_counter()
        scorer.tick()
        ahead = (time.process_time() - cpu, time.perf_counter() - wall)
        rss.append(rss_mib())
        cpu, wall = time.process_time(), time.perf_counter()
        scorer.roll_to(day + dt.timedelta(days=1))
        roll = (time.process_time() - cpu, time.perf_counter() - wall)
        assert scorer.serving is not None and scorer.serving.day == day + dt.timedelta(days=1)
        history_rows = scorer.serving.history.prepared.rows
        query_us = [one_row_query_us(scorer.serving.history.prepared, rows)]
        cpu, wall = time.process_time(), time.perf_counter()
        scorer.tick()
        after = (time.process_time() - cpu, time.perf_counter() - wall)
        query_us.append(one_row_query_us(scorer.serving.history.prepared, rows))
        rss.append(rss_mib())
        runs.append({"ahead_cpu_s": round(ahead[0], 3), "ahead_wall_s": round(ahead[1], 3),
                     "roll_cpu_s": round(roll[0], 3), "roll_wall_s": round(roll[1], 3),
                     "next_tick_cpu_s": round(after[0], 3),
                     "next_tick_wall_s": round(after[1], 3),
                     "one_row_query_us_after_roll_then_after_next_tick": query_us,
                     "rss_mib_loaded_ahead_after": rss})
        del scorer
    return {"trainer": str(Path(trainer.__file__).parent), "served_day_rows": len(rows),
            "history_rows_after_roll": history_rows, "runs": runs,
            "roll_cpu_s_median": sorted(r["roll_cpu_s"] for r in runs)[len(runs) // 2],
            "roll_wall_s_median": sorted(r["roll_wall_s"] for r in runs)[len(runs) // 2]}


def rss_mib() -> float:
    """This process's resident memory (VmRSS), in MiB."""
    from bench.serve_load import memory_mib

    return memory_mib(os.getpid())["VmRSS"]


def one_row_query_us(history, rows: list, count: int = 2000) -> float:
    """Median µs of one transaction's features (`day_features`, profiles) after the roll.

    The served day's rows moved a day later stand for the new day's transactions, each
    alone with its card (as a first transaction of the day).
    """
    import numpy as np

    from trainer.features.compute import NS_PER_DAY
    from trainer.features.prepared import day_features, day_rows
    from trainer.serving.history import row_columns

    targets = np.array([0])
    spent = []
    for row in rows[:: max(1, len(rows) // count)][:count]:
        later = (row[0], row[1] + NS_PER_DAY, row[2], row[3], row[4])
        started = time.perf_counter()
        day_features(history, day_rows(row_columns([later]), one_card=True), targets,
                     profiles=True)
        spent.append(time.perf_counter() - started)
    return round(1e6 * sorted(spent)[len(spent) // 2], 1)


def two_parts_check(share: Path, day_file: Path, day: dt.date) -> dict:
    """Every feature of S's transactions over S's history in two parts and in one, compared.

    The parts as the roll installs them (days S-37 .. S-2, then S-1) and the one part a
    load prepares; the values must be equal bit for bit.
    """
    import numpy as np
    import pandas as pd

    from trainer.features.prepared import PreparedParts, day_features, day_rows
    from trainer.serving.history import columns_of, history_days, prepare_part
    from trainer.serving.intraday import MemoryIntraday
    from trainer.share.layout import Share

    the_share, windows, days = Share.at(share), MemoryIntraday(), history_days(day)
    whole = prepare_part(the_share, day, days, windows).prepared
    parts = PreparedParts((prepare_part(the_share, day, days[:-1], windows).prepared,
                           prepare_part(the_share, day, days[-1:], windows).prepared))
    frame = pd.read_parquet(day_file).assign(TX_FRAUD=0)
    rows, targets = day_rows(columns_of(frame)), np.arange(len(frame))
    one = day_features(whole, rows, targets, profiles=True)
    two = day_features(parts, rows, targets, profiles=True)
    return {"targets": len(frame), "columns": len(one),
            "unequal_values": sum(int(np.count_nonzero(one[k] != two[k])) for k in one)}


def exported(revision: str, into: Path) -> Path:
    """`trainer/` of `revision` (git archive) under `into`; the directory to put on the path."""
    archive = into / "trainer.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", revision, "trainer"], stdout=out,
                       check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def child(path: Path | None, args: list[str]) -> dict:
    """`measure` in a child process with `path` first on its module path (None: this tree)."""
    env = dict(os.environ)
    if path is not None:  # (`-m` puts the working directory first on the path)
        env["PYTHONPATH"] = os.pathsep.join([str(path), str(ROOT)])
    done = subprocess.run([sys.executable, "-m", "bench.serve_roll", "--child", *args],
                          env=env, cwd=path or ROOT, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Measure the roll's pause for each size, baseline and this tree, in one run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="default,100k")
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("FRAUDPIPE_BENCH_DATA",
                                                             "/tmp/fraudpipe-bench"))
    parser.add_argument("--child", nargs=3, metavar=("SHARE", "DAY_FILE", "DAY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        share, day_file, day = args.child
        print(json.dumps(measure(Path(share), Path(day_file), dt.date.fromisoformat(day),
                                 args.repeats)))
        return 0
    built = shares(Path(args.data_dir), args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-roll-") as tmp:
        baseline = exported(args.baseline, Path(tmp))
        for size, (share, day_file, day) in built.items():
            for code, path in ((f"baseline {args.baseline}", baseline), ("this tree", None)):
                load = os.getloadavg()[0]
                result = child(path, [str(share), str(day_file), day.isoformat(),
                                      "--repeats", str(args.repeats)])
                if path is None:
                    result["two_parts_against_one"] = two_parts_check(share, day_file, day)
                print(json.dumps({"size": size, "code": code, **result,
                                  "loadavg_before_after": [round(load, 2),
                                                           round(os.getloadavg()[0], 2)]}),
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
