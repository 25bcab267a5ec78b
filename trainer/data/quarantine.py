"""The quarantine: a bad input file's copy beside the reason it was refused.

Apart from the ingest so that label files (`trainer.label_files`) quarantine the same way
without importing the ingest.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from trainer.share.files import atomic_path, atomic_write_text, sha256_file
from trainer.share.layout import Share

log = logging.getLogger(__name__)


def quarantine(path: Path, share: Share, reason: str) -> dict:
    """Copy a bad file to the quarantine under a name of its own, with its reason.

    The source is never removed (the user's input stays where it was). The copy is named
    `<UTC time>-<sha256 prefix>-<name>`, so a second bad file of the same name never
    overwrites the first; `<copy>.reason.txt` beside it says why. Both are written
    atomically.
    """
    log.warning("quarantining %s: %s", path, reason)
    try:
        digest = sha256_file(path)[:12]
    except OSError:
        digest = "unreadable"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    destination = share.quarantine_dir / f"{stamp}-{digest}-{path.name}"
    for n in range(1, 1000):
        if not destination.exists() and not destination.with_name(
                destination.name + ".reason.txt").exists():
            break
        destination = share.quarantine_dir / f"{stamp}-{digest}-{n}-{path.name}"
    copied: Path | None = destination
    try:
        with atomic_path(destination) as tmp:
            shutil.copyfile(path, tmp)
    except OSError as exc:  # unreadable source: keep the reason, say the copy failed
        reason = f"{reason} (could not copy the file: {exc})"
        copied = None
    reason_file = destination.with_name(destination.name + ".reason.txt")
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    atomic_write_text(reason_file, f"{reason}\nsource: {path.resolve()}\nquarantined_at: {at}\n")
    return {
        "source": str(path),
        "reason": reason,
        "quarantined_to": str(copied) if copied else None,
        "source_removed": False,
    }
