"""`python -m bench [step|history|backfill|queue|argo|serve|all] [--seed S] [--quick]`.

Each benchmark prints a Markdown table and writes `<results-dir>/<name>.json` (default
`bench/results/`), with the machine, library versions and load average recorded beside the
figures. `--quick` runs the tiniest form (seconds, not minutes): a smoke test, not a
measurement. `plot` draws `bench/step_vs_size.png` from <results-dir>/step.json and
`bench/step_vs_chain.png` from <results-dir>/history.json, with history_raw.json beside it
when there (`bench history` run on the code before the carried state, same session); the
cases of <results-dir>/step_compare.json (`python -m bench.step_compare`: old and new code
on the same day) are drawn on the size plot too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
NAMES = ("step", "history", "backfill", "queue", "argo", "serve")
#: What `all` runs: `serve` needs its own quiet session (a service and its load on 2 cores).
ALL = ("step", "history", "backfill", "queue", "argo")
#: (label, file in the results directory) of the runs `plot` draws against chain length.
HISTORY_PLOT = (("carried feature state", "history.json"),
                ("carried feature state", "history_lgbm_mlp.json"),
                ("carried feature state", "history_sampled.json"),
                ("raw 37-day history (before the state)", "history_raw.json"))


def machine() -> dict:
    """Where and with what the figures were measured."""
    from trainer.versions import library_versions

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    memory_kib = next(int(line.split()[1]) for line in
                      Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
    versions = library_versions()
    for name in ("prefect", "redis"):
        from importlib.metadata import version

        versions[name] = version(name)
    redis_server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    versions["redis-server"] = redis_server.stdout.split()[2] if redis_server.stdout else "?"
    return {"nproc": os.cpu_count(), "cpu_model": cpu,
            "memory_gib": round(memory_kib / 2**20, 1), "kernel": platform.release(),
            "versions": versions}


def queue(quick: bool) -> dict:
    """bench/queue_throughput.py, run as it is, its JSON lines collected."""
    done = subprocess.run([sys.executable, str(BENCH / "queue_throughput.py"),
                           "--items", "400" if quick else "20000"],
                          capture_output=True, text=True, cwd=BENCH.parent)
    if done.returncode != 0:
        raise RuntimeError(f"queue_throughput.py failed: {done.stderr[-2000:]}")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        print(row, flush=True)
    return {"benchmark": "queue", "quick": quick, "rows": rows}


def run_one(name: str, args: argparse.Namespace) -> dict:
    """Run benchmark `name`, returning its JSON document with the context added."""
    data_dir = Path(args.data_dir) if args.data_dir else None
    load_before = os.getloadavg()
    started = time.perf_counter()
    if name == "step":
        from bench import step_throughput

        result = step_throughput.run(seed=args.seed, quick=args.quick, data_dir=data_dir,
                                     sizes=args.sizes.split(",") if args.sizes else None,
                                     repeats=args.repeats)
    elif name == "history":
        from bench import history

        result = history.run(seed=args.seed, quick=args.quick, data_dir=data_dir,
                             repeats=args.repeats)
    elif name == "backfill":
        from bench import backfill

        result = backfill.run(seed=args.seed, quick=args.quick, data_dir=data_dir,
                              prefect_api_url=args.prefect_api_url)
    elif name == "queue":
        result = queue(args.quick)
    elif name == "serve":
        from bench import serve_load

        result = serve_load.run(seed=args.seed, quick=args.quick, data_dir=data_dir,
                                rate=args.rate, seconds=args.seconds,
                                only=tuple(args.phases.split(",")) if args.phases
                                else serve_load.PHASES)
    else:
        from bench import argo_estimate

        result = argo_estimate.run(results_dir=Path(args.results_dir), quick=args.quick)
    result["context"] = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the chosen benchmarks, write their JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", default="all", choices=(*NAMES, "all", "plot"))
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    parser.add_argument("--quick", action="store_true", help="tiniest form (smoke test)")
    parser.add_argument("--results-dir", default=str(BENCH / "results"))
    parser.add_argument("--data-dir", help="simulated data cache (default /tmp/fraudpipe-bench"
                                           " or $FRAUDPIPE_BENCH_DATA)")
    parser.add_argument("--sizes", help="step: comma-separated day sizes (10k,100k,1M)")
    parser.add_argument("--repeats", type=int, help="step/history: runs per case")
    parser.add_argument("--rate", type=float, help="serve: open-loop requests per second "
                                                    "(default 300)")
    parser.add_argument("--seconds", type=float, help="serve: seconds per loop (default 60)")
    parser.add_argument("--phases", help="serve: comma-separated phases to run (default all: "
                                         "closed,open,search,reload,batch,day_100k)")
    parser.add_argument("--prefect-api-url", help="backfill: a running Prefect API to run "
                                                  "the flow against (default: a temporary "
                                                  "server)")
    parser.add_argument("--learner", help="step, history, backfill: the measured chain's learner "
                                          "(default: the default learner of a new chain)")
    args = parser.parse_args(argv)
    if args.learner:
        from bench.step_throughput import LEARNER_ENV
        from trainer.learners.registry import learner_inputs

        learner_inputs(args.learner)  # an unknown name fails here, not in a child
        os.environ[LEARNER_ENV] = args.learner  # the children inherit it
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    if args.which == "plot":
        from bench import plot

        compare = results_dir / "step_compare.json"
        print(plot.draw(results_dir / "step.json", BENCH / "step_vs_size.png",
                        compare if compare.is_file() else None))
        runs = [(label, results_dir / name) for label, name in HISTORY_PLOT
                if (results_dir / name).is_file()]
        if runs:
            print(plot.draw_history(runs, BENCH / "step_vs_chain.png"))
        return 0
    for name in ALL if args.which == "all" else (args.which,):
        print(f"== {name}", flush=True)
        result = run_one(name, args)
        # a run of some phases only is kept beside the full run's figures
        out = f"{name}-{args.phases.replace(',', '-')}" if args.phases else name
        (results_dir / f"{out}.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
