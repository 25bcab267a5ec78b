"""Modelled wall time and node-hours of a 183-day backfill on Argo, from measured steps.

    .venv/bin/python -m bench argo [--quick]

Nothing here runs on a cluster: the model combines the step times measured on this
machine (results/step.json, results/history.json) with stated assumptions about Argo and
GKE. The chain is serial (one warm-start line: each day starts from the previous
checkpoint), so with `k` days per step the workflow runs ceil(183 / k) training pods one
after the other (each inside its own chain link, a steps node that starts no pod), then
one report pod:

    wall = node_start + pods * (pod_overhead + process_start) + 183 * step + report pod

- `step`: the measured median wall time of one day's step at that day size, features
  computed inside the step from the carried feature state (the workflow has no features
  stage: the chain's pods are all the pods).
- `process_start`: measured here, a fresh interpreter importing the CLI and the step.
- `pod_overhead`: ASSUMED 10 s a pod on a node that is already up: scheduling, the Argo
  executor's init/wait containers, and the controller noticing the pod ended. Sources: a
  user's sequential steps in argoproj/argo-workflows#6262 spent 281 s for 133 s inside
  pods over 14 steps (about 10.6 s a step); argoproj/argo-workflows#12381 explains up to
  10 s by the controller's default requeue time (DEFAULT_REQUEUE_TIME).
- `node_start`: ASSUMED 90 s, once, for the cluster autoscaler to add a Spot node and pull
  the step image. GKE documents that resuming a suspended standby node takes about 30-35 s
  and is faster than provisioning a new node ("startup latency reduction strategies",
  docs.cloud.google.com/kubernetes-engine/docs/concepts/startup-latency-reduction-strategies);
  90 s is our assumption beyond that lower bound, not a measured figure.
- node-hours: one Spot node is up for the whole wall time plus ASSUMED 10 minutes before
  the autoscaler removes it (the cluster autoscaler's default scale-down-unneeded-time).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.step_throughput import REPO_ROOT

DAYS = 183
DAYS_PER_STEP = (1, 7, 30)
POD_OVERHEAD_SECONDS = 10.0
NODE_START_SECONDS = 90.0
SCALE_DOWN_SECONDS = 600.0


def process_start_seconds(repeats: int = 3) -> float:
    """Median wall time of a fresh interpreter that imports the CLI and the step."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import trainer.cli, trainer.step"],
                       cwd=REPO_ROOT, check=True)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def model(step_seconds: float, days_per_step: int, process_start: float,
          days: int = DAYS) -> dict:
    """Wall time and node-hours of one backfill; see the module docstring."""
    pods = math.ceil(days / days_per_step)
    per_pod = POD_OVERHEAD_SECONDS + process_start
    wall = NODE_START_SECONDS + pods * per_pod + days * step_seconds + per_pod
    return {"days_per_step": days_per_step, "training_pods": pods,
            "wall_seconds": round(wall, 1), "wall_minutes": round(wall / 60, 2),
            "overhead_share": round(1 - days * step_seconds / wall, 3),
            "node_hours": round((wall + SCALE_DOWN_SECONDS) / 3600, 3)}


def step_times(results_dir: Path) -> dict[str, float]:
    """Measured step wall time (median) per day size, from earlier results."""
    times: dict[str, float] = {}
    history = results_dir / "history.json"
    if history.is_file():
        last = json.loads(history.read_text())["days"][-1]
        times[f"{last['transactions']:,} tx/day (default simulation, day {last['day_index']})"] = (
            last["median_seconds"])
    step = results_dir / "step.json"
    if step.is_file():
        for size in json.loads(step.read_text())["sizes"]:
            times[f"{size['transactions']:,} tx/day"] = size["fraudpipe"]["median_seconds"]
    if not times:
        raise SystemExit(f"{results_dir}: neither step.json nor history.json; run "
                         "`python -m bench step` and `python -m bench history` first")
    return times


def run(*, results_dir: Path, quick: bool = False) -> dict:
    """The model for every measured day size; returns results/argo.json's document."""
    start = process_start_seconds(1 if quick else 3)
    rows = []
    for size, seconds in step_times(results_dir).items():
        for k in DAYS_PER_STEP:
            rows.append({"day_size": size, "step_seconds": seconds,
                         **model(seconds, k, start)})
    result = {"benchmark": "argo", "quick": quick, "days": DAYS,
              "assumptions": {"pod_overhead_seconds": POD_OVERHEAD_SECONDS,
                              "node_start_seconds": NODE_START_SECONDS,
                              "scale_down_seconds": SCALE_DOWN_SECONDS},
              "process_start_seconds": round(start, 2), "rows": rows}
    print(table(result), flush=True)
    return result


def table(r: dict) -> str:
    """A Markdown table of `run`'s result."""
    lines = ["| day size | step s | days/step | pods | wall min | overhead share | node-hours |",
             "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['day_size']} | {row['step_seconds']} | {row['days_per_step']} | "
                     f"{row['training_pods']} | {row['wall_minutes']} | "
                     f"{row['overhead_share']:.0%} | {row['node_hours']} |")
    return "\n".join(lines)
