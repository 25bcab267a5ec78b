"""Features on the share from the raw history: the reference path, and the features cache.

``features_for_day`` computes a day's features (``trainer.features.compute``) from its
dataset and the ``HISTORY_DAYS`` days before it, or returns the cached
``features/<date>.parquet`` when it records the same ``FEATURES_VERSION`` and the same
input hashes. The evaluation uses it for its testing days, and a training step's features
(``trainer.features.carried``, from the carried state) must equal it; the step rebuilds its
state through the same reading of the history.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainer.data.schema import COLUMNS
from trainer.errors import DatasetValidationError, IncompleteHistoryError
from trainer.features.compute import (
    FEATURES_VERSION,
    HISTORY_DAYS,
    INPUT_COLUMNS,
    OUTPUT_COLUMNS,
    compute_features,
    features_of_columns,
)
from trainer.share.files import atomic_path, sha256_file
from trainer.share.layout import Share
from trainer.share.manifest import manifest_key, read_manifest

#: Key of the cache file's Parquet key-value metadata that records what it was built from.
CACHE_METADATA_KEY = b"fraudpipe.features"


def history_days(day: dt.date, days: int = HISTORY_DAYS) -> list[dt.date]:
    """The days whose transactions `day`'s features read: the 37 (`days`) before it and itself."""
    return [day - dt.timedelta(days=back) for back in range(days, -1, -1)]


def days_before(day: dt.date, days: int | None = None) -> list[dt.date]:
    """The ``HISTORY_DAYS`` days before `day` (or `days` of them), oldest first."""
    return history_days(day)[:-1] if days is None else [
        day - dt.timedelta(days=back) for back in range(days, 0, -1)]


def _require_dataset(share: Share, day: dt.date) -> Path:
    path = share.training_dataset(day)
    if not path.is_file():
        raise DatasetValidationError(
            f"{path}: no training dataset for {day.isoformat()}; ingest it first (fraudpipe ingest)"
        )
    return path


#: The Arrow types of ``INPUT_COLUMNS`` in a dataset that ingest wrote (``trainer.data.schema``).
CANONICAL_INPUT_SCHEMA = pa.schema(
    [
        ("TRANSACTION_ID", pa.int64()),
        ("TX_DATETIME", pa.timestamp("ns")),
        ("CUSTOMER_ID", pa.int64()),
        ("TERMINAL_ID", pa.int64()),
        ("TX_AMOUNT", pa.float64()),
        ("TX_FRAUD", pa.int64()),
    ]
)


def _read_table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path, columns=INPUT_COLUMNS)
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise DatasetValidationError(
            f"{path}: cannot read columns {INPUT_COLUMNS} as Parquet: {exc}"
        ) from exc


def read_transactions(path: Path) -> pd.DataFrame:
    """The columns features need from one dataset file on the share."""
    return _read_table(path).to_pandas()


def check_history(share: Share, day: dt.date, days: int = HISTORY_DAYS) -> dict[str, str]:
    """Date -> sha256 of the days `day`'s features read, after checking they are complete.

    Every day of the window that the ingest manifest lists must still be on the share with
    the content recorded there: a day silently missing from the 37-day history would give
    a different model. Days the manifest does not list were never ingested (a gap).
    `days`: that many days before `day` instead (the card inputs read 50).

    Raises:
        IncompleteHistoryError: a listed day is missing or changed; the message names the
            file and the source to re-ingest it from.
    """
    _require_dataset(share, day)
    manifest = read_manifest(share)
    hashes = {}
    for d in history_days(day, days):
        path = share.training_dataset(d)
        found = sha256_file(path) if path.is_file() else None
        checked = verified_sha256(share, manifest, d, found, needed_by=day)
        if checked is not None:
            hashes[d.isoformat()] = checked
    return hashes


def verified_sha256(share: Share, manifest: dict[str, dict], d: dt.date, found: str | None,
                    *, needed_by: dt.date) -> str | None:
    """Day `d`'s dataset sha256 after checking the file's `found` sha256 against `manifest`.

    Returns None for a day that is neither listed nor on the share (never ingested); a day
    on the share that the manifest does not list (copied by hand) counts with its `found`.

    Raises:
        IncompleteHistoryError: the manifest lists `d` and its file is missing or changed.
    """
    recorded = manifest.get(manifest_key("training", d), {})
    expected = recorded.get("dataset_sha256")
    if expected is None or found == expected:
        return found
    path = share.training_dataset(d)
    what = "is missing" if found is None else (
        f"has sha256 {found[:12]}..., the ingest manifest records {expected[:12]}...")
    source = recorded.get("source", "<its source file>")
    raise IncompleteHistoryError(
        f"{path} {what}; {needed_by}'s features need every ingested day of their "
        f"history. Re-ingest {d} from its source {source} (named in "
        f"{share.ingest_manifest}): fraudpipe ingest --source <dir>/{source} "
        f"--storage {share.root}")


def _history_tables(share: Share, day: dt.date) -> list[pa.Table]:
    """The input columns of `day` and the days before it that are on the share, in date order.

    Callers check the history first (`check_history`).
    """
    return [
        _read_table(share.training_dataset(d))
        for d in history_days(day)
        if share.training_dataset(d).is_file()
    ]


def _features_of_tables(tables: list[pa.Table], day: dt.date) -> pd.DataFrame:
    """``compute_features`` of the history `tables` (``_history_tables``), equal to the last bit.

    A training step spends most of its time here. When every day has the canonical types
    and the checks pass, the columns go from Arrow straight to numpy: no pandas frame of the
    whole history, no conversions. Anything else (and every error message) takes the
    pandas route through ``compute_features``, which is the definition.
    """
    table = pa.concat_tables(tables) if tables else None
    if table is None or not all(t.schema.equals(CANONICAL_INPUT_SCHEMA) for t in tables):
        return compute_features(_frame_of(tables), day)
    if any(table.column(name).null_count for name in INPUT_COLUMNS):
        return compute_features(_frame_of(tables), day)
    fast = features_of_columns({name: table.column(name).to_numpy() for name in INPUT_COLUMNS},
                               day)
    return fast if fast is not None else compute_features(_frame_of(tables), day)


def _frame_of(tables: list[pa.Table]) -> pd.DataFrame:
    return pd.concat([table.to_pandas() for table in tables], ignore_index=True)


def history_before(share: Share, day: dt.date, days: int | None = None) -> pd.DataFrame:
    """Training transactions of the ``HISTORY_DAYS`` days before `day` (not `day` itself).

    For datasets that are not a training day, such as an ingested testing day: pass the
    result and the dataset's rows to ``features_for_frame``. Missing days are skipped; with
    none at all the frame is empty (with the input columns). `days`: that many days before
    `day` instead (the card inputs read more).
    """
    frames = [
        read_transactions(share.training_dataset(d))
        for d in days_before(day, days)
        if share.training_dataset(d).is_file()
    ]
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype=COLUMNS[name]) for name in INPUT_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _cache_record(day: dt.date, hashes: dict[str, str]) -> dict[str, object]:
    return {"features_version": FEATURES_VERSION, "day": day.isoformat(), "inputs": hashes}


def _read_cache(path: Path, expected: dict[str, object]) -> pd.DataFrame | None:
    """The cached frame if `path` holds features built from exactly `expected`."""
    try:
        metadata = pq.read_schema(path).metadata or {}
        record = json.loads(metadata.get(CACHE_METADATA_KEY, b"null"))
        if record != expected:
            return None
        frame = pq.read_table(path).to_pandas()
    except (OSError, ValueError, pa.ArrowException):
        # A torn or foreign file is no cache; recomputing is always correct.
        return None
    if list(frame.columns) != OUTPUT_COLUMNS:
        return None
    return frame


def features_for_day(share: Share, day: dt.date, *, use_cache: bool = True) -> pd.DataFrame:
    """Features of `day`'s training dataset, from the cache when it is still valid.

    The cache ``share.features(day)`` is used only if it records the same
    ``FEATURES_VERSION`` and the same sha256 for every input dataset; otherwise the
    features are computed (and not written: see ``write_features_cache``).

    Raises:
        DatasetValidationError: `day` has no training dataset on the share.
    """
    hashes = check_history(share, day)
    if use_cache and share.features(day).is_file():
        cached = _read_cache(share.features(day), _cache_record(day, hashes))
        if cached is not None:
            return cached
    return _features_of_tables(_history_tables(share, day), day)


def write_features_cache(share: Share, day: dt.date) -> Path:
    """Compute `day`'s features and write them to ``share.features(day)`` atomically.

    The file's Parquet metadata records the features version and the inputs' sha256; the
    bytes depend only on those inputs and the library versions.
    """
    hashes = check_history(share, day)
    frame = _features_of_tables(_history_tables(share, day), day)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[CACHE_METADATA_KEY] = json.dumps(_cache_record(day, hashes), sort_keys=True).encode()
    table = table.replace_schema_metadata(metadata)
    final = share.features(day)
    with atomic_path(final) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return final
