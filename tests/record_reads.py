"""Count the reads of the share's record in one daily pipeline run, and the modules it runs.

Every read of `output/lineage.json` (each `Lineage.load` is one) and of
`datasets/ingested.json` (each `read_manifest` is one) goes through `Path.read_text` or
`Path.read_bytes`; a counting wrapper around both tallies them by file. Counting files,
not functions, gives the same figure for any version of the code. The same run records
which of fraudpipe's modules (trainer, flows, blocks, workflows) have a function called
while the flow runs, through a profile hook (module bodies run by an import do not count):
the modules the daily pipeline's call path enters.

    python tests/record_reads.py     # standalone: its own redis-server and Prefect server

The test is tests/integration/test_record_reads.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

#: (parent directory, name) of each record file -> its label in the counts.
RECORD_FILES = {("output", "lineage.json"): "lineage", ("datasets", "ingested.json"): "manifest"}
DAYS = 4
#: fraudpipe's packages: a module of these counts as entered when one of its functions runs.
PACKAGES = ("trainer", "flows", "blocks", "workflows")
ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def counting_record_reads() -> Iterator[Counter]:
    """Within the block, count reads of the record files (Counter: label -> reads)."""
    counts: Counter = Counter()
    originals = {name: getattr(Path, name) for name in ("read_text", "read_bytes")}

    def counted(name: str):
        original = originals[name]

        def read(self: Path, *args, **kwargs):
            label = RECORD_FILES.get((self.parent.name, self.name))
            if label:
                counts[label] += 1
            return original(self, *args, **kwargs)

        return read

    for name in originals:
        setattr(Path, name, counted(name))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(Path, name, original)


@contextlib.contextmanager
def recording_modules_entered() -> Iterator[set[str]]:
    """Within the block, the fraudpipe modules (paths from the root) whose functions run."""
    files: set[str] = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_name != "<module>":
            files.add(frame.f_code.co_filename)

    modules: set[str] = set()
    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        yield modules
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
        prefixes = tuple(str(ROOT / package) + os.sep for package in PACKAGES)
        modules.update(str(Path(f).relative_to(ROOT)) for f in files if f.startswith(prefixes))


def simulate(landing: Path, days: int = DAYS) -> None:
    """Small simulated days (200 customers) into `landing`."""
    from trainer.data.simulator import SimulationConfig, simulate_config, write_day

    config = SimulationConfig(start=dt.date(2018, 4, 1), days=days, customers=200,
                              terminals=400, seed=7)
    for day, frame in simulate_config(config):
        write_day(frame, landing, day)


def daily_run(work: Path, redis_url: str) -> dict:
    """One daily pipeline run over `DAYS` new days: the record reads it made, the modules."""
    from flows.pipeline import daily_pipeline

    landing, storage = work / "landing", work / "share"
    simulate(landing)
    fraudpipe = Path(sys.executable).with_name("fraudpipe")
    subprocess.run([str(fraudpipe), "init", "--storage", str(storage)], check=True,
                   capture_output=True)
    with counting_record_reads() as counts, recording_modules_entered() as modules:
        state = daily_pipeline(str(landing), storage=str(storage), redis_url=redis_url,
                               retry_backoff_seconds=0.05, return_state=True)
    if not state.is_completed():
        raise RuntimeError(f"the daily pipeline did not complete: {state.message}")
    return {"days": DAYS, "lineage": counts["lineage"], "manifest": counts["manifest"],
            "modules": len(modules), "entered": sorted(modules)}


def main() -> int:
    """Run once against a private redis-server and Prefect server; print the counts."""
    from prefect.testing.utilities import prefect_test_harness

    sys.path.insert(0, str(Path(__file__).parent))
    from redis_server import RedisServer

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        try:
            with prefect_test_harness(server_startup_timeout=300):
                print(daily_run(Path(tmp), server.url_for_db(1)))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
