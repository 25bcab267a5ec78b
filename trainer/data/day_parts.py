"""A day built from every file that holds its rows, and when a day is over (closed).

Each source file's rows of one day are a *part* of the day. `merge_part` adds a part to a
day already on the share: rows whose ids the day does not hold are merged in (the day is
sorted again as validation sorts it, so the parts of a day give the bytes one file of
all its rows gives); rows it holds with the same values change nothing; a row whose id
the day holds with other values is a conflict, refused naming both files and the ids. A
file of the same name as a part replaces that part. The ingest manifest lists the parts
of each day (`parts`: source, source_sha256, rows); a day of several parts keeps each
part's rows in `datasets/parts/<kind>-<day>/<source stem>.parquet`, so that a part can be
replaced.

A day is *closed* (`is_closed`) when its rows can be taken as all there: a file named
after the day delivered it whole, `fraudpipe close` said so (`datasets/closing.json`), or
the share holds a row later than the day's end (midnight in the share's zone: times are
stored in it) plus the lateness allowed (`lateness_hours` in the same file, default 0).
A training dataset the manifest has no entry for (copied in, an older writer) is taken
as whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trainer.data.schema import date_from_name
from trainer.share.files import atomic_path, atomic_write_text, read_json_record
from trainer.share.layout import Share
from trainer.share.locks import file_lock
from trainer.share.manifest import manifest_key, read_manifest

ID = "TRANSACTION_ID"
SORT_KEYS = ["TX_DATETIME", ID]


def closing_path(share: Share) -> Path:
    """The record of explicit closes and the allowed lateness."""
    return share.ingest_manifest.with_name("closing.json")


def read_closing(share: Share) -> dict:
    """{"lateness_hours": float, "closed": {ISO date: {"by", "at"}}}."""
    return {"lateness_hours": 0.0, "closed": {}} | read_json_record(
        closing_path(share), "record of closed days")


def close_days(share: Share, days: list[dt.date], *, lateness_hours: float | None = None,
               by: str = "fraudpipe close") -> dict:
    """Record `days` as closed (and the allowed lateness, if given); return the record."""
    with file_lock(share.ingest_lock):
        record = read_closing(share)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for day in days:
            record["closed"][day.isoformat()] = {"by": by, "at": at}
        if lateness_hours is not None:
            record["lateness_hours"] = float(lateness_hours)
        atomic_write_text(closing_path(share), json.dumps(record, indent=2, sort_keys=True)
                          + "\n")
    return record


def _latest_day(share: Share) -> dt.date | None:
    days = list(share.training_dates())
    for path in share.arrived_dir.glob("*.parquet") if share.arrived_dir.is_dir() else []:
        with contextlib.suppress(ValueError):
            days.append(dt.date.fromisoformat(path.stem))
    return max(days) if days else None


def _last_time(share: Share, day: dt.date) -> pd.Timestamp | None:
    for path in (share.arrived_dataset(day), share.training_dataset(day)):
        if path.is_file():
            column = pq.read_table(path, columns=["TX_DATETIME"]).column(0)
            return pd.Timestamp(pc.max(column).as_py())
    return None


def sources_of(entry: dict) -> list[str]:
    """The source file names of a manifest entry: its parts, else its one source."""
    parts = entry.get("parts") or []
    return [p["source"] for p in parts] or ([entry["source"]] if entry.get("source") else [])


def is_closed(share: Share, day: dt.date, manifest: dict | None = None) -> bool:
    """True when `day` is over (see the module doc)."""
    closing = read_closing(share)
    if day.isoformat() in closing["closed"]:
        return True
    manifest = read_manifest(share) if manifest is None else manifest
    entries = [manifest.get(manifest_key(kind, day)) for kind in ("arrived", "training")]
    for entry in entries:
        if entry and any(date_from_name(name) == day for name in sources_of(entry)):
            return True
    if not any(entries) and share.training_dataset(day).is_file():
        return True  # a dataset no ingest recorded (copied in, an older writer): taken whole
    latest = _latest_day(share)
    if latest is None or latest <= day:
        return False
    end = pd.Timestamp(day + dt.timedelta(days=1))
    lateness = float(closing.get("lateness_hours") or 0)
    if lateness <= 0:
        return True  # a later day's rows are all after the day's end
    last = _last_time(share, latest)
    return last is not None and last >= end + pd.Timedelta(hours=lateness)


def part_path(share: Share, kind: str, day: dt.date, source: str) -> Path:
    """Where a day of several parts keeps the rows of the part from `source`."""
    return (share.ingest_manifest.parent / "parts" / f"{kind}-{day.isoformat()}"
            / f"{Path(source).stem}.parquet")


def _write_part(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _holder(share: Share, kind: str, day: dt.date, parts: list[dict], ids: set) -> str:
    """The part (source name) that holds the first of `ids`, for the message."""
    for part in parts:
        path = part_path(share, kind, day, part["source"])
        if path.is_file():
            held = set(pq.read_table(path, columns=[ID]).column(0).to_pylist())
            if held & ids:
                return part["source"]
    return parts[0]["source"]


def merge_part(share: Share, kind: str, day: dt.date, recorded: dict, output: Path,
               new: pd.DataFrame, source: str, source_sha256: str
               ) -> tuple[pd.DataFrame | None, list[dict], str | None]:
    """Merge the part `new` (canonical rows of `day` from `source`) into the day on the share.

    The caller holds the ingest lock, writes the day, then `write_parts(share, kind,
    day, merged.attrs["part_rows"])`.

    Returns:
        (the merged day, its parts, None); (None, parts, None) when nothing changes (the
        rows are all there, identical); or (None, parts, the reason it is refused).
    """
    existing = pq.read_table(output).to_pandas()
    parts = [dict(p) for p in recorded.get("parts") or []] or [
        {"source": recorded.get("source", "?"), "source_sha256": recorded.get("source_sha256"),
         "rows": len(existing)}]
    stem = Path(source).stem
    replaced = [p for p in parts if Path(p["source"]).stem == stem]
    others = existing
    if replaced:
        path = part_path(share, kind, day, replaced[0]["source"])
        old_ids = set(pq.read_table(path, columns=[ID]).column(0).to_pylist())
        others = existing[~existing[ID].isin(old_ids)]
        parts = [p for p in parts if p not in replaced]
    if list(new.columns) != list(existing.columns):
        return None, parts, (
            f"{source}: its rows of {day} have the columns {', '.join(new.columns)}, the day "
            f"on the share (from {', '.join(p['source'] for p in parts)}) has "
            f"{', '.join(existing.columns)}; the parts of one day must have the same columns. "
            "The file's rows of the day were left out; the day is as it was")
    overlap = new[new[ID].isin(set(others[ID]))]
    if len(overlap):
        theirs = others[others[ID].isin(set(overlap[ID]))].set_index(ID).sort_index()
        ours = overlap.set_index(ID).sort_index()
        differs = ~((ours == theirs) | (ours.isna() & theirs.isna())).all(axis=1)
        if differs.any():
            ids = [str(i) for i in ours.index[differs]]
            holder = _holder(share, kind, day, parts, set(ours.index[differs]))
            return None, parts, (
                f"{source}: {len(ids)} row(s) of {day} conflict with {holder}: TRANSACTION_ID "
                f"{', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''} hold other values "
                "there. The file's rows of the day were left out and the day is as it was; "
                "fix the file that is wrong and ingest it again")
    added = new[~new[ID].isin(set(others[ID]))]
    if not replaced and added.empty:
        return None, parts, None
    pending = {source: new}
    if len(parts) == 1 and not part_path(share, kind, day, parts[0]["source"]).is_file():
        pending[parts[0]["source"]] = others
    parts.append({"source": source, "source_sha256": source_sha256, "rows": len(new)})
    merged = pd.concat([others, added], ignore_index=True)
    merged = merged.sort_values(SORT_KEYS, kind="mergesort").reset_index(drop=True)
    merged.attrs["part_rows"] = pending
    return merged, parts, None


def write_parts(share: Share, kind: str, day: dt.date, pending: dict[str, pd.DataFrame]
                ) -> None:
    """Keep each part's rows (source name -> rows), once the merged day is written."""
    for source, rows in pending.items():
        _write_part(part_path(share, kind, day, source), rows)
