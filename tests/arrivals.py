"""Days that arrive without labels, for tests: a simulated day minus its labels, ingested.

The real ingest (`trainer.data.ingest.ingest_path`) of a file without the label column
writes `share.arrived_dataset(day)` and an ingest-manifest entry of kind "arrived".
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pandas as pd

from trainer.data.ingest import ingest_path
from trainer.share.layout import Share

#: What a bank's export cannot know: the label, and the simulator's fraud scenario.
LABEL_COLUMNS = ["TX_FRAUD", "TX_FRAUD_SCENARIO"]


def arrive(share: Share, day: dt.date, frame: pd.DataFrame) -> None:
    """Ingest `frame` without its labels as the arrived day `day`."""
    with tempfile.TemporaryDirectory() as landing:
        path = Path(landing) / f"{day.isoformat()}.parquet"
        frame.drop(columns=LABEL_COLUMNS).to_parquet(path, index=False)
        result = ingest_path(path, share)
    if [e["kind"] for e in result.ingested] != ["arrived"]:
        raise AssertionError(f"{day}: not ingested as an arrived day: {result.summary()}")


def write_labels(path, frame: pd.DataFrame, *, frauds_only: bool = False,
                 names: tuple[str, str] = ("TRANSACTION_ID", "TX_FRAUD")) -> None:
    """A label file (CSV) of `frame`'s transactions; `frauds_only` keeps the confirmed ones."""
    rows = frame[frame["TX_FRAUD"] == 1] if frauds_only else frame
    rows[["TRANSACTION_ID", "TX_FRAUD"]].set_axis(list(names), axis=1).to_csv(path, index=False)
