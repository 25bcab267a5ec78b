"""History independence: one step's time and peak memory at day 10, 38, 84 and 180.

    .venv/bin/python -m bench history [--seed S] [--quick]

The handbook's default 183-day simulation (the landing directory `bench.backfill` writes)
is copied onto a storage root. For each day N (0-based from 2018-04-01), the chain is
trained through day N-1 with `fraudpipe train --through`, outside the timing; then the
step on day N runs in a fresh single-threaded process, several times, each from the same
saved `output/` (lineage, checkpoints, reports), and the median is reported.

A step must not cost more as the chain grows: the lineage, the reports and the scores of
earlier days are the only things that grow. Day 10 reads 11 days of transactions, days
60 and 180 read the full 38, so the feature part of day 10 is cheaper by construction;
`history_rows` counts the rows of each day's 37-day history, `days_read` and
`bytes_read` what the step read (the day, its boundary days and nothing else once the
carried state holds the rest). Day 38 is the first with the
full history, so day 38 against day 180 isolates the cost of a longer chain; day 84 is
where the default booster's 84-day memory of frauds is full, so day 84 against day 180
shows whether the step stays flat once every bounded state is full.

The chain's learner is `python -m bench history --learner NAME`'s (the default learner
of a new chain without it), for the training outside the timing and the timed steps alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import shutil
from pathlib import Path

from bench.step_throughput import LEARNER_ENV, run_child, summarise

DAYS = (10, 38, 84, 180)
QUICK_DAYS = (2, 6)


def _ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator to 3 places; None when the first day's figure is not positive.

    A `--quick` day is small enough that its step may peak at the RSS of its imports
    (0.1 MiB resolution): a ratio to zero is no figure, not a crash.
    """
    return round(numerator / denominator, 3) if denominator > 0 else None


def run(*, seed: int = 0, quick: bool = False, data_dir: Path | None = None,
        repeats: int | None = None) -> dict:
    """Measure each day of `DAYS`; returns the JSON document for results/history.json."""
    from bench.backfill import START, landing
    from trainer.cli import main as fraudpipe_main
    from trainer.features.store import history_days
    from trainer.share.layout import create_share

    data_dir = data_dir or Path(os.environ.get("FRAUDPIPE_BENCH_DATA", "/tmp/fraudpipe-bench"))
    days, total = (QUICK_DAYS, 7) if quick else (DAYS, 183)
    repeats = repeats or (1 if quick else 5)
    source = landing(data_dir, total, seed, tx_per_day=1_000 if quick else None)
    work = data_dir / f"history-d{total}-s{seed}{'-quick' if quick else ''}"
    shutil.rmtree(work, ignore_errors=True)
    share = create_share(work / "share", "fraudpipe bench")[0]
    share.training_dir.mkdir(parents=True)
    for path in source.glob("*.parquet"):
        shutil.copyfile(path, share.training_dir / path.name)

    snapshot = work / "output-snapshot"
    rows = []
    for n in days:
        day = START + dt.timedelta(days=n)
        learner = os.environ.get(LEARNER_ENV)
        # `fraudpipe train` in this process: setup, not measured (its imports are paid once).
        with contextlib.redirect_stdout(io.StringIO()):
            status = fraudpipe_main(["train", "--storage", str(share.root), "--through",
                                     (day - dt.timedelta(days=1)).isoformat(), "--json",
                                     *(["--learner", learner] if learner else [])])
        if status != 0:
            raise SystemExit(f"fraudpipe train through the day before {day} exited {status}")
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.copytree(share.output_dir, snapshot)
        runs = []
        for _ in range(repeats):
            shutil.rmtree(share.output_dir)
            shutil.copytree(snapshot, share.output_dir)
            runs.append(run_child("step", work, day))
        # Leave the step's output in place: the next day's training continues from it.
        history_rows = sum(
            len_rows(share.training_dataset(d)) for d in history_days(day)
            if share.training_dataset(d).is_file())
        rows.append({"day_index": n, "date": day.isoformat(), "chain_length_before": n,
                     "transactions": runs[0]["transactions"], "history_rows": history_rows,
                     "days_read": runs[0].get("days_read"),
                     "bytes_read": runs[0].get("bytes_read"),
                     **summarise(runs, runs[0]["transactions"])})
        print(f"day {n}: {rows[-1]['median_seconds']} s, "
              f"{rows[-1]['median_peak_rss_mib']} MiB", flush=True)
    from trainer.share.lineage import Lineage

    first, last = rows[0], rows[-1]
    result = {
        "benchmark": "history", "seed": seed, "quick": quick, "days": rows,
        "learner": Lineage.load(share).head_entry.learner,
        "last_over_first_seconds": round(last["median_seconds"] / first["median_seconds"], 3),
        "last_over_first_cpu_seconds": round(
            last["median_cpu_seconds"] / first["median_cpu_seconds"], 3),
        "last_over_first_peak_rss": round(
            last["median_peak_rss_mib"] / first["median_peak_rss_mib"], 3),
        "last_over_first_peak_rss_above_imports": _ratio(
            last["median_peak_rss_mib"] - last["import_rss_mib"],
            first["median_peak_rss_mib"] - first["import_rss_mib"]),
    }
    print(table(result), flush=True)
    return result


def len_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def table(r: dict) -> str:
    """A Markdown table of `run`'s result."""
    lines = ["| day | chain length before | day's tx | rows in its 37-day history | files "
             "(MB) the step read | median s | CPU s | peak RSS MiB (imports) |",
             "|---|---|---|---|---|---|---|---|"]
    for d in r["days"]:
        read = ("n/a" if d.get("days_read") is None
                else f"{d['days_read']} ({d['bytes_read'] / 1e6:.1f})")
        lines.append(f"| {d['day_index']} ({d['date']}) | {d['chain_length_before']} | "
                     f"{d['transactions']:,} | {d['history_rows']:,} | {read} | "
                     f"{d['median_seconds']} | "
                     f"{d['median_cpu_seconds']} | {d['median_peak_rss_mib']} "
                     f"({d['import_rss_mib']}) |")
    return "\n".join(lines)
