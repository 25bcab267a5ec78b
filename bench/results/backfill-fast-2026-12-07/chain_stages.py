"""Train a whole chain in this process as `fraudpipe train` does; stage CPU over all steps.

    .venv/bin/python chain_stages.py SHARE THROUGH > out.json

The stages are `bench.step_stages`' (its wrappers, `time.process_time`), summed over the
steps; each step's wall and CPU and its checkpoint sha256 are listed too. Run from the
checkout to time (its `.venv`: the editable install puts its `bench` and `trainer` first).
"""

import datetime as dt
import json
import sys
import time

from bench.step_stages import _instrument

totals = _instrument()  # before the step's modules bind the wrapped callables

from trainer.backlog import train_all  # noqa: E402
from trainer.share.layout import Share  # noqa: E402

rows = []
last = [time.process_time(), time.perf_counter()]


def on_step(index, count, result):
    """Record one step: its own seconds, the CPU and wall since the previous one."""
    cpu, wall = time.process_time(), time.perf_counter()
    rows.append({"date": str(result.date), "seconds": result.seconds,
                 "cpu_between": cpu - last[0], "wall_between": wall - last[1],
                 "sha": result.checkpoint_sha256})
    last[:] = [cpu, wall]


wall0, cpu0 = time.perf_counter(), time.process_time()
results = train_all(Share.at(sys.argv[1]), through=dt.date.fromisoformat(sys.argv[2]),
                    on_step=on_step)
print(json.dumps({"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0,
                  "sum_seconds": sum(r.seconds for r in results), "stages": totals,
                  "rows": rows}))
