"""The small shares of the share-record tests: eight simulated days, built through the CLI.

Used by tests/unit/test_share_record.py (in-process commands) and
tests/integration/test_share_record_processes.py (a held step process, a full file system).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd

from tests.cli_runner import CliResult, run_main
from tests.shares import simulate_days

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(8)]
SMALL = {"customers": 50, "terminals": 100}


def fraudpipe(*args: object) -> CliResult:
    """`fraudpipe ARGS...` in this process; (exit code, stdout, stderr)."""
    return run_main(*args)


def make_landing(out: Path) -> Path:
    """Eight small simulated days (seed 1) in the landing directory `out`."""
    simulate_days(out, 8, seed=1, **SMALL)
    return out


def make_other_landing(landing: Path, out: Path) -> Path:
    """The same eight days with other amounts in `out`: same dates and ids, other content."""
    for path in sorted(landing.glob("*.parquet")):
        frame = pd.read_parquet(path)
        frame.assign(TX_AMOUNT=frame["TX_AMOUNT"] + 1.0).to_parquet(out / path.name, index=False)
    return out


def share_with(tmp_path: Path, landing: Path, days: list[dt.date], *, train: bool = True) -> Path:
    """A share with `days` of `landing` ingested (and trained), through the CLI."""
    source = tmp_path / "in"
    source.mkdir(parents=True, exist_ok=True)
    for day in days:
        shutil.copy(landing / f"{day}.parquet", source)
    root = tmp_path / "share"
    code, _, err = fraudpipe("ingest", "--source", source, "--storage", root)
    assert code == 0, err
    if train:
        code, _, err = fraudpipe("train", "--storage", root)
        assert code == 0, err
    return root
