"""The share's record of labels: every label received, by transaction day, with its file.

`datasets/labels/<day>.parquet` holds each label received for a transaction of that day:
TRANSACTION_ID, TX_FRAUD, SOURCE (the label file's name), ROW (its row in the file) and
ARRIVED_AT (when it was stored). Nothing is overwritten by another file: two files that
label one transaction two ways are both kept, and the transaction's label is a conflict
until one of them is withdrawn or re-delivered agreeing (`effective_labels`). A file of
the same name as one stored before replaces its rows (a corrected re-delivery).

`datasets/labels/files.json` records each label file by name: the version stored (sha256,
arrived_at, days) and the version in quarantine (sha256, reason, the copy, the ids it
names that could be read, and their days). Labels whose transaction is on no day yet wait
in `datasets/labels/unfiled.parquet` and are filed when their day arrives.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainer.data.schema import LABEL
from trainer.share.files import atomic_path, atomic_write_text, read_json_record
from trainer.share.layout import Share

ID = "TRANSACTION_ID"

#: Columns of `share.labels(day)`: the label, the file and row it came from, when it came.
STORED_COLUMNS = [ID, LABEL, "SOURCE", "ROW", "ARRIVED_AT"]


def arrived_dates(share: Share) -> list[dt.date]:
    """Dates of the days that arrived without labels, oldest first."""
    days = []
    for path in share.arrived_dir.glob("*.parquet") if share.arrived_dir.is_dir() else []:
        with contextlib.suppress(ValueError):
            days.append(dt.date.fromisoformat(path.stem))
    return sorted(days)


def now() -> str:
    """The current UTC time as stored in ARRIVED_AT."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _new_empty_labels() -> pd.DataFrame:
    return pd.DataFrame({ID: pd.Series(dtype=object), LABEL: pd.Series(dtype="int64"),
                         "SOURCE": pd.Series(dtype=str), "ROW": pd.Series(dtype="int64"),
                         "ARRIVED_AT": pd.Series(dtype=object)})


_EMPTY_LABELS = _new_empty_labels()


def empty_labels() -> pd.DataFrame:
    """A frame of `STORED_COLUMNS` with no row (a copy: the caller may change it)."""
    # Copying a built frame is ~25x cheaper than building one, and `fraudpipe days` and
    # the run's days table ask for one per day without labels.
    return _EMPTY_LABELS.copy()


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return empty_labels()
    frame = pq.read_table(path).to_pandas()
    if "ARRIVED_AT" not in frame:  # stored before arrival times were kept
        frame["ARRIVED_AT"] = None
    return frame[STORED_COLUMNS]


def _write(path: Path, frame: pd.DataFrame) -> None:
    if frame.empty and not path.is_file():
        return
    frame = frame[STORED_COLUMNS].sort_values([ID, "SOURCE", "ROW"], kind="stable",
                                              ignore_index=True)
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)


def read_stored_labels(share: Share, day: dt.date) -> pd.DataFrame:
    """Every label received for `day` (`STORED_COLUMNS`); empty when none."""
    return _read(share.labels(day))


def write_stored_labels(share: Share, day: dt.date, frame: pd.DataFrame) -> None:
    """Replace the labels of `day`; the caller holds `label_lock`."""
    _write(share.labels(day), frame)


def unfiled_path(share: Share) -> Path:
    """Labels whose transaction is on no day of the share yet."""
    return share.labels_dir / "unfiled.parquet"


def read_unfiled(share: Share) -> pd.DataFrame:
    """The labels waiting for their transaction's day (ids as text)."""
    return _read(unfiled_path(share))


def write_unfiled(share: Share, frame: pd.DataFrame) -> None:
    """Replace the waiting labels; the caller holds `label_lock`."""
    frame = frame.assign(**{ID: frame[ID].astype(str)})
    if frame.empty and unfiled_path(share).is_file():
        unfiled_path(share).unlink()
        return
    _write(unfiled_path(share), frame)


def label_lock(share: Share) -> Path:
    """The lock every writer of the label record holds."""
    return share.labels_dir / ".labels.lock"


def files_path(share: Share) -> Path:
    """The record of label files by name."""
    return share.labels_dir / "files.json"


def read_files(share: Share) -> dict[str, dict]:
    """{file name: {"stored": {...} | None, "quarantined": {...} | None}}."""
    return read_json_record(files_path(share), "record of label files")


def write_files(share: Share, record: dict[str, dict]) -> None:
    """Replace the record of label files; the caller holds `label_lock`."""
    record = {k: v for k, v in record.items() if v.get("stored") or v.get("quarantined")}
    atomic_write_text(files_path(share), json.dumps(record, indent=2, sort_keys=True) + "\n")


def labelled_dates(share: Share) -> list[dt.date]:
    """Days with a label file on the share, oldest first."""
    days = []
    for path in share.labels_dir.glob("*.parquet") if share.labels_dir.is_dir() else []:
        with contextlib.suppress(ValueError):
            days.append(dt.date.fromisoformat(path.stem))
    return sorted(days)


def effective_labels(stored: pd.DataFrame) -> tuple[dict[str, int], list]:
    """The label of each transaction (by id as text), and the ids labelled two ways.

    A conflicting transaction has no label: it is listed (in its stored type) instead.
    """
    if stored.empty:
        return {}, []
    keys = stored[ID].astype(str)
    kinds = stored.groupby(keys, sort=True)[LABEL].agg(["nunique", "first"])
    agreed = kinds[kinds["nunique"] == 1]["first"]
    clashing = set(kinds.index[kinds["nunique"] > 1])
    native = stored.drop_duplicates(ID)
    conflicts = sorted((t.item() if hasattr(t, "item") else t)
                       for t, k in zip(native[ID], native[ID].astype(str), strict=True)
                       if k in clashing)
    return {str(k): int(v) for k, v in agreed.items()}, conflicts


def conflict_detail(stored: pd.DataFrame, tx: object) -> str:
    """Each file, row and label of one conflicting transaction, in words."""
    rows = stored[stored[ID].astype(str) == str(tx)]
    return "; ".join(f"{r.SOURCE} row {r.ROW}: {r.TX_FRAUD}" for r in rows.itertuples())


def quarantined_days(share: Share) -> dict[str, list[str]]:
    """Day (ISO) -> the quarantined label files naming one of its transactions."""
    days: dict[str, list[str]] = {}
    for name, record in sorted(read_files(share).items()):
        held = record.get("quarantined") or {}
        for day in held.get("days", []):
            days.setdefault(day, []).append(name)
    return days


def unplaced_quarantine(share: Share) -> list[str]:
    """Quarantined label files none of whose ids could be read: they may name any day."""
    return sorted(name for name, record in read_files(share).items()
                  if (record.get("quarantined") or {}).get("ids_unreadable"))
