"""Days that arrive without labels, for tests: a simulated day minus its labels.

Stands in for the ingest of unlabelled files (`share.arrived_dataset(day)` plus an
ingest-manifest entry of kind "arrived") until that ingest is on main; small on purpose,
so the tests can switch to the real one.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from trainer.data.ingest import (
    _write_manifest,
    canonical_parquet_bytes,
    manifest_key,
    read_manifest,
)
from trainer.storage import Share, atomic_write_bytes, sha256_bytes

#: What a bank's export cannot know: the label, and the simulator's fraud scenario.
LABEL_COLUMNS = ["TX_FRAUD", "TX_FRAUD_SCENARIO"]


def arrive(share: Share, day: dt.date, frame: pd.DataFrame) -> None:
    """Write `frame` without its labels as the arrived dataset of `day`, with its entry."""
    data = canonical_parquet_bytes(frame.drop(columns=LABEL_COLUMNS))
    atomic_write_bytes(share.arrived_dataset(day), data)
    manifest = read_manifest(share)
    manifest[manifest_key("arrived", day)] = {
        "source": f"{day.isoformat()}.parquet", "dataset_sha256": sha256_bytes(data),
        "rows": len(frame), "ingested_at": "2026-12-01T00:00:00+00:00"}
    _write_manifest(share, manifest)


def write_labels(path, frame: pd.DataFrame, *, frauds_only: bool = False,
                 names: tuple[str, str] = ("TRANSACTION_ID", "TX_FRAUD")) -> None:
    """A label file (CSV) of `frame`'s transactions; `frauds_only` keeps the confirmed ones."""
    rows = frame[frame["TX_FRAUD"] == 1] if frauds_only else frame
    rows[["TRANSACTION_ID", "TX_FRAUD"]].set_axis(list(names), axis=1).to_csv(path, index=False)
