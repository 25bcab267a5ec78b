"""The ingest manifest: the record of every dataset day the share holds and where it came from.

`datasets/ingested.json` maps each training date ("2018-04-01"), each arrived date
("arrived/2018-04-01") and each testing date ("testing/2018-04-05") to: the source file
name and its sha256, the number of days that file holds (`source_days`), the sha256 of the
Parquet written (`dataset_sha256`, the hash the lineage records for the day), rows,
frauds (None for an arrived day), ingested_at, the column mapping used (`mapping`), the
columns dropped (`dropped_columns`) and the type of each id column (`id_types`: "int64"
or "string"). Writers hold `Share.ingest_lock` while they read, change and write it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from trainer.share.files import atomic_write_text, read_json_record
from trainer.share.layout import Share

#: The kinds of dataset day the manifest records.
KINDS = ("training", "arrived", "testing")


def manifest_key(kind: str, day: dt.date) -> str:
    """The manifest key of a day: its date for training, "<kind>/<date>" otherwise."""
    return day.isoformat() if kind == "training" else f"{kind}/{day.isoformat()}"


def parse_key(key: str) -> tuple[str, dt.date] | None:
    """The (kind, day) of a manifest key; None for a key this module does not write."""
    kind, _, date = key.rpartition("/")
    kind = kind or "training"
    if kind not in KINDS:
        return None
    try:
        return kind, dt.date.fromisoformat(date)
    except ValueError:
        return None


def dataset_of_key(share: Share, key: str) -> Path | None:
    """The dataset file a manifest key stands for; None for a key of no dataset."""
    parsed = parse_key(key)
    return share.dataset(*parsed) if parsed else None


def read_manifest(share: Share) -> dict[str, dict]:
    """The ingest manifest: {manifest_key: entry}; empty before the first ingestion.

    Raises:
        FraudpipeError: the file does not parse as a JSON object.
    """
    return read_json_record(share.ingest_manifest, "ingest manifest")


def write_manifest(share: Share, manifest: dict) -> None:
    """Replace the ingest manifest atomically; the caller holds `share.ingest_lock`."""
    atomic_write_text(share.ingest_manifest, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
