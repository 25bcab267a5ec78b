"""Count the reads of the share's record in one daily pipeline run: lineage and manifest.

Every read of `output/lineage.json` (each `Lineage.load` is one) and of
`datasets/ingested.json` (each `read_manifest` is one) goes through `Path.read_text` or
`Path.read_bytes`; a counting wrapper around both tallies them by file. Counting files,
not functions, gives the same figure for any version of the code:

    python tests/record_reads.py     # standalone: its own redis-server and Prefect server

The test is tests/integration/test_record_reads.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

#: (parent directory, name) of each record file -> its label in the counts.
RECORD_FILES = {("output", "lineage.json"): "lineage", ("datasets", "ingested.json"): "manifest"}
DAYS = 4


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


def simulate(landing: Path, days: int = DAYS) -> None:
    """Small simulated days (200 customers) into `landing`."""
    from trainer.data.simulator import SimulationConfig, simulate_config, write_day

    config = SimulationConfig(start=dt.date(2018, 4, 1), days=days, customers=200,
                              terminals=400, seed=7)
    for day, frame in simulate_config(config):
        write_day(frame, landing, day)


def daily_run(work: Path, redis_url: str) -> dict[str, int]:
    """One daily pipeline run over `DAYS` new days; the record reads it made."""
    from flows.pipeline import daily_pipeline

    landing, storage = work / "landing", work / "share"
    simulate(landing)
    fraudpipe = Path(sys.executable).with_name("fraudpipe")
    subprocess.run([str(fraudpipe), "init", "--storage", str(storage)], check=True,
                   capture_output=True)
    with counting_record_reads() as counts:
        state = daily_pipeline(str(landing), storage=str(storage), redis_url=redis_url,
                               retry_backoff_seconds=0.05, return_state=True)
    if not state.is_completed():
        raise RuntimeError(f"the daily pipeline did not complete: {state.message}")
    return {"days": DAYS, "lineage": counts["lineage"], "manifest": counts["manifest"]}


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
