"""One step of several code versions and learners on the same prepared day, interleaved.

    .venv/bin/python -m bench.step_compare --sizes 100k,1M --repeats 3 \\
        --case old=<checkout of the old code>:lgbm_mlp_profiles \\
        --case new=.:lgbm_mlp_profiles_sampled [--results-dir bench/results]

Each case is NAME=CODE_DIR:LEARNER: the step child of `bench.step_throughput` run from
CODE_DIR (its own `bench` and `trainer` first on PYTHONPATH, so an old commit's code runs
as it was) with LEARNER's chain. The day and its history are `bench step`'s prepared
share for that size (`bench.step_throughput.prepared`); each case first trains the day
before as its head, in its own code, and every measured run starts from a copy of that
head. Runs are interleaved (case after case, then again), so machine noise hits them
alike; the median CPU seconds (`time.process_time` of the child) and peak RSS
(`ru_maxrss`) are reported, with the load average before and after. Writes
`<results-dir>/step_compare.json`, whose per-size `<case>` entries have `bench step`'s
shape (`median_seconds`, `median_cpu_seconds`, `median_peak_rss_mib`) for `bench plot`.

Every run's outputs are fingerprinted (`outputs`: the sha256 of the day's checkpoint,
feature state and scores file, and the lineage entry's metrics), and cases of the same
learner are compared: a change meant to make the step cheaper without changing what it
computes shows "same outputs" for the old and new code, run after run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench.step_throughput import ONE_THREAD_ENV, QUICK_SIZES, SIZES, prepared

REPO = Path(__file__).resolve().parents[1]


def _child(code: Path, learner: str, work: Path, day: dt.date) -> dict:
    env = {**os.environ, **ONE_THREAD_ENV, "PYTHONPATH": str(code),
           "FRAUDPIPE_BENCH_LEARNER": learner}
    done = subprocess.run([sys.executable, "-m", "bench.step_throughput", "--child", "step",
                           "--work", str(work), "--day", day.isoformat()],
                          env=env, cwd=code, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"step in {code} ({learner}) failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def outputs(share: Path, day: dt.date) -> dict[str, str]:
    """The sha256 of what the step wrote for `day`, and of its lineage entry's metrics."""
    out = share / "output"
    found = {name: hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
             for name, path in (("checkpoint", out / f"model_cpt_{day}.skops"),
                                ("feature_state", out / "feature_state" / f"{day}.parquet"),
                                ("scores", out / "scores" / f"{day}.parquet"))}
    entries = json.loads((out / "lineage.json").read_text())["entries"]
    metrics = next(e["metrics"] for e in entries if e["date"] == day.isoformat())
    found["metrics"] = hashlib.sha256(json.dumps(metrics, sort_keys=True).encode()).hexdigest()
    return found


def same_outputs(result: dict, cases: dict[str, tuple[Path, str]]) -> list[str]:
    """Per learner, whether every run of its cases wrote the same outputs."""
    lines = []
    for learner in dict.fromkeys(learner for _, learner in cases.values()):
        names = [name for name, (_, its) in cases.items() if its == learner]
        seen = {json.dumps(run["outputs"], sort_keys=True)
                for name in names for run in result[name]["runs"]}
        lines.append(f"{learner} ({', '.join(names)}): "
                     + ("same outputs" if len(seen) == 1 else
                        f"DIFFERENT outputs ({len(seen)} variants)"))
    return lines


def _reset(share: Path, head: Path | None = None) -> None:
    shutil.rmtree(share / "output", ignore_errors=True)
    shutil.rmtree(share / "features", ignore_errors=True)
    if head is not None:
        shutil.copytree(head, share / "output")


def measure(size: str, cases: dict[str, tuple[Path, str]], repeats: int, data_dir: Path,
            seed: int) -> dict:
    """Every case on one day size; see the module docstring."""
    from trainer.features.compute import HISTORY_DAYS

    work, info = prepared(data_dir, {**SIZES, **QUICK_SIZES}[size], HISTORY_DAYS, seed)
    day = dt.date.fromisoformat(info["days"][-1]["date"])
    share = work / "share"
    heads = {}
    for name, (code, learner) in cases.items():
        heads[name] = work / f"compare-head-{name}"
        shutil.rmtree(heads[name], ignore_errors=True)
        _reset(share)
        _child(code, learner, work, day - dt.timedelta(days=1))
        shutil.copytree(share / "output", heads[name])
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (code, learner) in cases.items():
            _reset(share, heads[name])
            run = _child(code, learner, work, day)
            run["outputs"] = outputs(share, day)
            runs[name].append(run)
    result = {"size": size, "transactions": runs[next(iter(cases))][0]["transactions"],
              "day": day.isoformat(), "repeats": repeats,
              "loadavg_before": [round(x, 2) for x in load_before],
              "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    for name, (code, learner) in cases.items():
        mine = runs[name]
        result[name] = {
            "code": str(code), "learner": learner,
            "median_seconds": statistics.median(r["seconds"] for r in mine),
            "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in mine),
            "median_peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in mine),
            "runs": [{k: r[k] for k in ("seconds", "cpu_seconds", "peak_rss_mib", "outputs",
                                        "minor_faults", "system_seconds") if k in r}
                     for r in mine]}
        faults = [r["minor_faults"] for r in mine if "minor_faults" in r]
        print(f"{size} {name:10s} {learner:28s} CPU s {result[name]['median_cpu_seconds']:.3f}"
              f"  peak RSS MiB {result[name]['median_peak_rss_mib']:.0f}"
              + (f"  page faults {statistics.median(faults):.0f}" if faults else ""), flush=True)
    result["same_outputs"] = same_outputs(result, cases)
    for line in result["same_outputs"]:
        print(f"{size} {line}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse the cases, measure every size, write `step_compare.json`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1M", help="10k, 100k, 1M (2k: a smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", action="append", required=True, metavar="NAME=DIR:LEARNER")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=Path(
        os.environ.get("FRAUDPIPE_BENCH_DATA", "/tmp/fraudpipe-bench")))
    parser.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    cases = {}
    for text in args.case:
        name, _, rest = text.partition("=")
        code, _, learner = rest.rpartition(":")
        if not name or not code or not learner:
            parser.error(f"--case {text!r}: expected NAME=CODE_DIR:LEARNER")
        cases[name] = (Path(code).resolve(), learner)
    sizes = [measure(s, cases, args.repeats, args.data_dir, args.seed)
             for s in args.sizes.split(",")]
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / "step_compare.json"
    out.write_text(json.dumps({"benchmark": "step_compare", "cases": list(cases),
                               "sizes": sizes}, indent=1) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
