"""Safe writes and content hashes for files other readers may open on the share.

The share is an NFS mount in a pod and a plain directory on a laptop. NFS gives
close-to-open consistency only (nfs(5), "Data and metadata coherence";
docs/facts.md#checkpoints), so every file other readers may open is written to a temporary
name in the same directory, fsynced, renamed over the final name and the directory fsynced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from trainer.errors import FraudpipeError

CHUNK = 1 << 20
#: mkstemp creates 0600 files; pods of other steps (same group, maybe another user)
#: must read what this one wrote on the share.
FILE_MODE = 0o644


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(final: str | os.PathLike[str], data: bytes, mode: int = FILE_MODE) -> Path:
    """Write `data` to a fsynced temporary file beside `final`; return its path.

    `publish_temp` later renames it over `final`. Splitting the two lets a caller move
    the file into place only while it holds a lock (the lineage commit does).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{final.name}.", dir=final.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return Path(tmp_name)


def publish_temp(tmp: Path, final: str | os.PathLike[str]) -> None:
    """Rename a fsynced temporary file over `final` and fsync the directory."""
    final = Path(final)
    os.replace(tmp, final)
    _fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success it replaces `final` atomically.

    The caller writes the temporary file however it likes (Parquet, skops, text). On
    exit the file is fsynced, renamed over `final` and the directory fsynced; on error the
    temporary file is removed and `final` is untouched. A crash leaves at most a
    `.tmp-*` file, never a partial file under the final name.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{final.name}.", dir=final.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        publish_temp(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(final: str | os.PathLike[str], data: bytes, mode: int = FILE_MODE) -> None:
    """Write `data` to `final` atomically (temp + fsync + rename + fsync dir)."""
    tmp = write_temp(final, data, mode)
    try:
        publish_temp(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def records_json(document: dict, records_key: str, records: list[dict]) -> str:
    """`document` with `records` under `records_key` as JSON text, one record per line.

    Readable and diffable like an indented file, but encoded by json's C encoder (an
    indent switches it to the pure-Python one, ~10x slower): the lineage and the report
    are rewritten after every step and grow with the chain.
    """
    lines = ",\n".join(json.dumps(record, sort_keys=True) for record in records)
    values = {key: json.dumps(value, sort_keys=True) for key, value in document.items()}
    values[records_key] = f"[\n{lines}\n]" if records else "[]"
    return "{" + ", ".join(f"{json.dumps(key)}: {values[key]}" for key in sorted(values)) + "}\n"


def atomic_write_text(final: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `final` atomically."""
    atomic_write_bytes(final, text.encode("utf-8"))


def read_json_record(path: Path, what: str) -> dict:
    """The JSON object in the share's record file `path`; {} when the file does not exist.

    Raises:
        FraudpipeError: the file cannot be read or holds no JSON object (`what` names the
            record in the message, e.g. "ingest manifest").
    """
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise FraudpipeError(f"{path}: unreadable {what} ({exc})") from exc
    if not isinstance(record, dict):
        raise FraudpipeError(f"{path}: the {what} is not a JSON object")
    return record
