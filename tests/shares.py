"""Test helpers: a share with small simulated days ingested; checkpoint files and bytes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from trainer.data.ingest import ingest_path
from trainer.data.simulator import simulate, write_day
from trainer.share.checkpoints import dump_model
from trainer.share.files import atomic_write_bytes, sha256_bytes
from trainer.share.layout import Share

SAMPLE = (Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "gke-sample"
          / "datasets")


def simulate_days(out: Path, days: int, *, start: str = "2018-04-01", customers: int = 200,
                  terminals: int = 400, seed: int = 0) -> list[dt.date]:
    """Write `days` simulated days into `out` as Parquet; return their dates."""
    written = []
    for day, frame in simulate(start, days, customers=customers, terminals=terminals, seed=seed):
        write_day(frame, out, day)
        written.append(day)
    return written


def simulated_share(root: Path, days: int, **kwargs) -> Share:
    """A storage root under `root` with `days` small simulated days ingested."""
    landing = root / "landing"
    simulate_days(landing, days, **kwargs)
    share = Share.at(root / "share")
    ingest_path(landing, share)
    return share


def save_checkpoint(path: Path, model) -> str:
    """Write `model` to `path` as the step does (atomic skops bytes); return its sha256."""
    data = dump_model(model)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def model_digests_in_fresh_interpreters(training: str, runs: int = 2) -> set[str]:
    """sha256 of `dump_model(m)` after `training` (code that leaves a fitted `m`), per run.

    Each run is a new Python process, so skops' id()-based names differ between runs.
    The code may use `np` and `make_learner`.
    """
    code = ("import hashlib, numpy as np;"
            "from trainer.learners.registry import make_learner;"
            "from trainer.share.checkpoints import dump_model;"
            f"{training};"
            "print(hashlib.sha256(dump_model(m)).hexdigest())")
    return {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(runs)}
