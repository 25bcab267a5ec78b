"""Late rows of a trained day: merged aside, applied when the day is trained again.

A part of a day (`trainer.data.day_parts`) can come after the day was trained: a file
later than the allowed lateness, a re-sent month, the day's own file sent again with
more rows. Its rows belong to the day ("a day is built from every file that holds its
rows"), but the lineage records what the day was trained on, so its dataset cannot change
while the day is on the chain. When the file only adds rows (`adds_rows_only`: every row
the day was trained on is still there, unchanged), the ingest merges it as usual (same
checks: identical rows change nothing, rows that conflict are refused naming both files)
into a copy of the day kept aside,
`datasets/late/<kind>-<day>.parquet`: the day as it will be. The day's manifest entry
records it under `held` (dataset_sha256, rows, frauds, parts, sources, held_at). More
late parts merge into the same copy.

The copy replaces the day's dataset once the day is off the chain (`apply_held`), which
`fraudpipe relabel` (or the daily pipeline's `apply_late_labels`) and any rewind
(`trainer.replay.rewind_for_replay`) do; the day is then trained again like a late
label's day. Until then `fraudpipe days`, `fraudpipe labels` and the run's headline
count the held rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from trainer.data.parquet import canonical_parquet_bytes
from trainer.data.schema import LABEL
from trainer.errors import FraudpipeError
from trainer.share.files import atomic_write_bytes, sha256_bytes, sha256_file
from trainer.share.layout import Share
from trainer.share.manifest import manifest_key, parse_key, read_manifest, write_manifest

ID = "TRANSACTION_ID"


def held_path(share: Share, kind: str, day: dt.date) -> Path:
    """Where the day as it will be with its late rows is kept aside."""
    return share.ingest_manifest.parent / "late" / f"{kind}-{day.isoformat()}.parquet"


def held_base(share: Share, kind: str, day: dt.date, recorded: dict | None
              ) -> tuple[Path, dict | None]:
    """The dataset a new part of the day merges into, and its record (parts).

    The held copy when the day has late rows already (so that late parts are checked
    against each other), else the day's dataset and manifest entry.
    """
    held = (recorded or {}).get("held")
    path = held_path(share, kind, day)
    if held and path.is_file():
        return path, {**(recorded or {}), "parts": held["parts"]}
    return share.dataset(kind, day), recorded


def adds_rows_only(dataset: Path, day: pd.DataFrame) -> bool:
    """True when `day` holds every row of `dataset` unchanged (it may hold more)."""
    old = pq.read_table(dataset).to_pandas()
    if list(old.columns) != list(day.columns):
        return False
    kept = day[day[ID].isin(set(old[ID]))]
    if len(kept) != len(old):
        return False
    theirs, ours = old.set_index(ID).sort_index(), kept.set_index(ID).sort_index()
    return bool(((theirs == ours) | (theirs.isna() & ours.isna())).all(axis=None))


def hold(share: Share, kind: str, day: dt.date, merged: pd.DataFrame, parts: list[dict],
         source: str) -> dict | None:
    """Keep `merged` (the day with a late part) aside; the caller holds the ingest lock.

    Returns:
        The manifest entry's `held` record, or None when the copy aside already holds
        exactly these rows (nothing changed).
    """
    data = canonical_parquet_bytes(merged)
    digest = sha256_bytes(data)
    manifest = read_manifest(share)
    key = manifest_key(kind, day)
    entry = manifest[key]
    before = entry.get("held") or {}
    if before.get("dataset_sha256") == digest:
        return None
    atomic_write_bytes(held_path(share, kind, day), data)
    trained_sources = {p.get("source") for p in entry.get("parts") or []} or {
        entry.get("source")}
    entry["held"] = {
        "dataset_sha256": digest, "rows": len(merged),
        "frauds": int(merged[LABEL].sum()) if LABEL in merged else None,
        "parts": parts,
        "sources": sorted({p["source"] for p in parts} - trained_sources | {source}),
        "held_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_manifest(share, manifest)
    return entry["held"]


def held_days(share: Share, manifest: dict | None = None) -> list[dict]:
    """Days with late rows kept aside, oldest first.

    Each: date, kind, rows (late rows: the copy's rows minus the day's), sources (the
    late files), path (the copy).

    Args:
        share: the storage root.
        manifest: the ingest manifest, if the caller has read it. Without it, a share
            with no copy aside answers without reading the manifest (a daily run asks
            once, and almost always there is none); pass it where the answer decides
            what to write (a listing on NFS may lag another client's write).
    """
    if manifest is None:
        folder = held_path(share, "training", dt.date.min).parent
        if not folder.is_dir() or not any(folder.glob("*.parquet")):
            return []
        manifest = read_manifest(share)
    found = []
    for key, entry in manifest.items():
        parsed = parse_key(key)
        if parsed is None or not entry.get("held"):
            continue
        kind, day = parsed
        found.append({"date": day.isoformat(), "kind": kind,
                      "rows": int(entry["held"]["rows"]) - int(entry.get("rows") or 0),
                      "sources": entry["held"]["sources"],
                      "path": str(held_path(share, kind, day))})
    return sorted(found, key=lambda d: d["date"])


def promote(share: Share, kind: str, day: dt.date) -> dict | None:
    """Make the copy aside the day's dataset.

    The caller holds the ingest lock and has checked that the day is off the chain.

    Returns:
        The day's new manifest entry, or None when it holds nothing aside.

    Raises:
        FraudpipeError: the copy aside is missing or not the one recorded.
    """
    manifest = read_manifest(share)
    key = manifest_key(kind, day)
    entry = manifest.get(key) or {}
    held = entry.get("held")
    if not held:
        return None
    path = held_path(share, kind, day)
    if not path.is_file() or sha256_file(path) != held["dataset_sha256"]:
        raise FraudpipeError(
            f"{path}: the late rows of {day} kept aside are missing or changed (expected "
            f"sha256 {held['dataset_sha256']}); ingest the late file(s) "
            f"{', '.join(held['sources'])} again")
    atomic_write_bytes(share.dataset(kind, day), path.read_bytes())
    parts = held["parts"]
    # One part: the day's file sent again with more rows; it is the day's source now.
    whole = ({"source": parts[0]["source"], "source_sha256": parts[0]["source_sha256"]}
             if len(parts) == 1 else {"parts": parts})
    entry = {**{k: v for k, v in entry.items() if k not in ("held", "parts")}, **whole,
             "dataset_sha256": held["dataset_sha256"], "rows": held["rows"],
             "frauds": held["frauds"],
             "late_parts_applied": [*entry.get("late_parts_applied", []), {
                 "sources": held["sources"], "held_at": held["held_at"],
                 "previous_sha256": entry.get("dataset_sha256"),
                 "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}]}
    manifest[key] = entry
    write_manifest(share, manifest)
    path.unlink()
    return entry
