"""The column mapping requests are read with: the one the share's files were read with."""

from __future__ import annotations

from pathlib import Path

from trainer.data.mapping import MAPPING_FILE_NAME, ColumnMapping, resolve_mapping
from trainer.share.layout import Share
from trainer.share.manifest import read_manifest


def serving_mapping(share: Share, mapping_file: str | Path | None = None) -> ColumnMapping:
    """`mapping_file`, else the share's mapping file, else its latest ingest's, else default.

    A share fed with ``fraudpipe ingest --mapping FILE`` has no mapping file at its root,
    but its manifest records the mapping of every ingested day: the newest is the one the
    user's files are in now.
    """
    if mapping_file is not None or (share.root / MAPPING_FILE_NAME).is_file():
        return resolve_mapping(share, mapping_file)
    entries = [entry for entry in read_manifest(share).values()
               if isinstance(entry, dict) and isinstance(entry.get("mapping"), dict)]
    if not entries:
        return ColumnMapping()
    latest = max(entries, key=lambda entry: str(entry.get("ingested_at", "")))["mapping"]
    return ColumnMapping(columns=dict(latest.get("columns", {})),
                         timezone=latest.get("timezone", "UTC"),
                         origin=f"{share.ingest_manifest} (latest ingest)")
