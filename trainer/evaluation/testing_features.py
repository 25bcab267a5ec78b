"""A testing dataset's features, computed once and kept on the share.

Every step reports its model on the newest testing dataset (the GKE sample's "Accuracy on
testing data"). The model changes each day but the testing rows' features do not: they
depend only on the testing file and the 37 training days before it. Computing them meant
reading those 37 days raw, every step. They are kept in
``features/testing/<name>.<inputs>.parquet``, whose Parquet metadata records what they
were built from: the features version, the testing file's sha256 and each history day's
sha256 as the ingest manifest records it (a day re-ingested changes it). A cache that
records anything else is ignored and rewritten; recomputing is always correct.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainer.features.cards import CARD_HISTORY_DAYS
from trainer.features.compute import FEATURES_VERSION
from trainer.features.from_history import features_of_rows
from trainer.features.store import days_before, history_before
from trainer.share.files import atomic_path, sha256_file
from trainer.share.layout import Share
from trainer.share.manifest import manifest_key, read_manifest

CACHE_METADATA_KEY = b"fraudpipe.testing_features"


def cache_path(share: Share, dataset: Path, profiles: bool, cards: bool = False) -> Path:
    """Where the features of testing file `dataset` are kept (one file per input set)."""
    inputs = "cards" if cards else "profiles" if profiles else "handbook"
    return share.features_dir / "testing" / f"{dataset.stem}.{inputs}.parquet"


def _history_record(share: Share, day: dt.date, days: int | None = None) -> dict[str, str]:
    """Date -> sha256 of each training day `history_before(share, day)` reads.

    The manifest's record for an ingested day (no file is hashed); a day on the share that
    the manifest does not list is hashed.
    """
    manifest = read_manifest(share)
    record = {}
    for d in days_before(day, days):
        path = share.training_dataset(d)
        if not path.is_file():
            continue
        listed = manifest.get(manifest_key("training", d), {}).get("dataset_sha256")
        record[d.isoformat()] = listed or sha256_file(path)
    return record


def _read_cache(path: Path, expected: dict) -> pd.DataFrame | None:
    try:
        metadata = pq.read_schema(path).metadata or {}
        if json.loads(metadata.get(CACHE_METADATA_KEY, b"null")) != expected:
            return None
        return pq.read_table(path).to_pandas()
    except (OSError, ValueError, pa.ArrowException):
        return None  # a torn or foreign file is no cache


def testing_features(share: Share, dataset: Path, rows: pd.DataFrame, *,
                     profiles: bool, cards: bool = False) -> pd.DataFrame:
    """``features_of_rows`` of testing file `dataset` (its `rows`), cached on the share.

    Args:
        share: the storage root.
        dataset: the testing dataset file `rows` were read from.
        rows: its transactions.
        profiles: with the profile columns (a learner that reads them).
        cards: also with the card columns (`trainer.features.cards`), from the
            ``CARD_HISTORY_DAYS`` training days before the rows.
    """
    day = rows["TX_DATETIME"].min().date()
    expected = {"features_version": FEATURES_VERSION, "profiles": profiles,
                "testing_sha256": sha256_file(dataset), "day": day.isoformat(),
                "history": _history_record(share, day)}
    if cards:  # its history is longer; other input sets keep their record as it was
        expected["cards"] = True
        expected["history"] = _history_record(share, day, CARD_HISTORY_DAYS)
    path = cache_path(share, dataset, profiles, cards)
    if path.is_file():
        cached = _read_cache(path, expected)
        if cached is not None:
            return cached
    frame = features_of_rows(history_before(share, day, CARD_HISTORY_DAYS if cards else None),
                             rows, profiles=profiles, cards=cards)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({
        **(table.schema.metadata or {}),
        CACHE_METADATA_KEY: json.dumps(expected, sort_keys=True).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return frame
