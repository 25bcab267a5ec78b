"""CPU of the daily pipeline's end-of-run artifacts on a trained share, per part.

    .venv/bin/python -m bench.run_artifacts_cost --storage ROOT [--code <other checkout>]

After the steps, every `daily-pipeline` run builds its artifacts (`flows.artifacts.
build_artifacts`): the outcome of every saved list (`trainer.outcomes.record_outcomes`,
which reads each listed day's labels and writes its outcome), the days table
(`flows.artifacts.days_table`), today's alerts (`trainer.report.card_alerts` of the head
day) and the metrics plot. Their cost grows with the days on the share and counts in the
backfill's orchestration (the run's wall time outside the steps). Each part is timed with
`time.process_time` in a fresh process (wall seconds beside it), `--repeats` times;
"outcomes, first" removes `output/outcomes/` first (a new share, as in a backfill), then
"outcomes, again" records them once more (every later run). The share is changed only
there: its outcome files are rewritten. With `--code`, that checkout's modules are timed.
A trained share: e.g. `fraudpipe ingest` then `fraudpipe train` on `bench backfill`'s
landing directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("outcomes, first", "outcomes, again", "days table", "alerts", "plot")


def child(root: Path) -> dict[str, tuple[float, float]]:
    """Time each part once in this process; {part: (cpu s, wall s)}."""
    from flows import artifacts
    from trainer.outcomes import record_outcomes
    from trainer.report import card_alerts
    from trainer.share.layout import Share
    from trainer.share.lineage import Lineage
    from trainer.share.manifest import read_manifest

    share = Share.at(root)
    lineage, manifest = Lineage.load(share), read_manifest(share)
    artifacts.metrics_png(lineage.chain())  # imports matplotlib outside the timing
    head = lineage.head_entry
    if head is None:
        raise SystemExit(f"{root}: nothing trained")
    shutil.rmtree(share.output_dir / "outcomes", ignore_errors=True)
    work = {"outcomes, first": lambda: record_outcomes(share),
            "outcomes, again": lambda: record_outcomes(share),
            "days table": lambda: artifacts.days_table(share, lineage, manifest),
            "alerts": lambda: card_alerts(share, head.date),
            "plot": lambda: artifacts.metrics_png(lineage.chain())}
    figures = {}
    for part in PARTS:
        cpu, wall = time.process_time(), time.perf_counter()
        work[part]()
        figures[part] = (time.process_time() - cpu, time.perf_counter() - wall)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the children and print the medians (or, with --child, time once)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", type=Path, required=True, help="a trained share")
    parser.add_argument("--code", type=Path, default=REPO,
                        help="the checkout whose modules are timed (default: this one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.storage)))
        return 0
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve())}
    runs = []
    for _ in range(args.repeats):
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                               "--storage", str(args.storage)], env=env, cwd=args.code,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"child failed: {done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{args.code.resolve()}, {args.storage}, median of {args.repeats}, "
          f"load {[round(x, 2) for x in os.getloadavg()]}")
    for part in PARTS:
        cpu = statistics.median(r[part][0] for r in runs)
        wall = statistics.median(r[part][1] for r in runs)
        print(f"  {part:18s} CPU {cpu:6.3f} s  wall {wall:6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
