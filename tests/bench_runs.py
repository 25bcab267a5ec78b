"""Run a benchmark as a user runs it and read the JSON it writes (the benchmarks' smoke tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench(*args: str) -> None:
    """`python -m bench ARGS... --quick`, as a user runs it; its stderr on a failure."""
    done = subprocess.run([sys.executable, "-m", "bench", *args, "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"bench {args[0]} failed:\n{done.stderr[-3000:]}"


def load_results(results: Path, name: str) -> dict:
    document = json.loads((results / f"{name}.json").read_text())
    assert document["benchmark"] == name
    context = document["context"]
    assert context["machine"]["nproc"] >= 1 and context["machine"]["versions"]["scikit-learn"]
    assert len(context["loadavg_before"]) == 3
    return document
