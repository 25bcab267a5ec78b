"""The shared storage: where everything lives on the Filestore share, and safe writes.

The share is an NFS mount in a pod (`/mnt/fileserver`) and a plain directory on a laptop.
NFS gives close-to-open consistency only (nfs(5), "Data and metadata coherence";
docs/facts.md#checkpoints), so every file other readers may open is written to a temporary
name in the same directory, fsynced, renamed over the final name and the directory fsynced.
Readers never list directories to find checkpoints: they go through the lineage manifest.
The root carries a marker file, so a missing mount or a mistyped path is an error, not an
empty share (`open_share`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import LineageMissingError, NotAShareError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
#: mkstemp creates 0600 files; pods of other steps (same group, maybe another user)
#: must read what this one wrote on the share.
FILE_MODE = 0o644


@dataclass(frozen=True)
class Share:
    """Paths of fraudpipe's files under one storage root."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> Share:
        """The share rooted at `root` (created lazily by the writers)."""
        return cls(Path(root).resolve())

    # datasets
    @property
    def training_dir(self) -> Path:
        """Validated training datasets, one Parquet file per day."""
        return self.root / "datasets" / "training"

    @property
    def testing_dir(self) -> Path:
        """Validated testing datasets (ingested with `--testing`)."""
        return self.root / "datasets" / "testing"

    @property
    def quarantine_dir(self) -> Path:
        """Files that failed validation, each beside its `.reason.txt`."""
        return self.root / "datasets" / "quarantine"

    @property
    def ingest_manifest(self) -> Path:
        """JSON record of every ingested file: date -> source name and content sha256."""
        return self.root / "datasets" / "ingested.json"

    def training_dataset(self, day: dt.date) -> Path:
        """The training dataset of `day`."""
        return self.training_dir / f"{day.isoformat()}.parquet"

    def training_lock(self, day: dt.date) -> Path:
        """Lock file of one training day: a step holds it shared, an ingest exclusive."""
        return self.root / "datasets" / ".locks" / f"{day.isoformat()}.lock"

    # days that arrived without labels, and the labels that come later
    @property
    def arrived_dir(self) -> Path:
        """Validated days that arrived without labels: scored at once, trained when labelled."""
        return self.root / "datasets" / "arrived"

    def arrived_dataset(self, day: dt.date) -> Path:
        """The unlabelled dataset of `day` (canonical columns without TX_FRAUD)."""
        return self.arrived_dir / f"{day.isoformat()}.parquet"

    @property
    def labels_dir(self) -> Path:
        """Labels received for arrived days, one Parquet file per transaction day."""
        return self.root / "datasets" / "labels"

    def labels(self, day: dt.date) -> Path:
        """The labels received so far for the transactions of `day`."""
        return self.labels_dir / f"{day.isoformat()}.parquet"

    def testing_dataset(self, name: str) -> Path:
        """The testing dataset called `name`."""
        return self.testing_dir / f"{name}.parquet"

    # features cache
    @property
    def features_dir(self) -> Path:
        """The features cache that `fraudpipe features` writes (Argo runs)."""
        return self.root / "features"

    def features(self, day: dt.date) -> Path:
        """The cached features of `day`."""
        return self.features_dir / f"{day.isoformat()}.parquet"

    # carried feature state (per-entity window aggregates after a trained day)
    @property
    def feature_state_dir(self) -> Path:
        """The feature state each trained day leaves for the next step."""
        return self.output_dir / "feature_state"

    def feature_state(self, day: dt.date) -> Path:
        """The feature state after training through `day`."""
        return self.feature_state_dir / f"{day.isoformat()}.parquet"

    # outputs
    @property
    def output_dir(self) -> Path:
        """Checkpoints, lineage, reports and scores."""
        return self.root / "output"

    def checkpoint(self, day: dt.date) -> Path:
        """The checkpoint trained through `day`."""
        return self.output_dir / f"model_cpt_{day.isoformat()}.skops"

    @property
    def lineage(self) -> Path:
        """The lineage manifest: the record of what is trained."""
        return self.output_dir / "lineage.json"

    @property
    def lineage_lock(self) -> Path:
        """The lock file the lineage commit holds."""
        return self.output_dir / ".lineage.lock"

    @property
    def report_txt(self) -> Path:
        """The report in the GKE sample's format."""
        return self.output_dir / "report.txt"

    @property
    def report_json(self) -> Path:
        """The same report as JSON, per step."""
        return self.output_dir / "report.json"

    @property
    def scores_dir(self) -> Path:
        """Per-day fraud scores and card ranks."""
        return self.output_dir / "scores"

    def scores(self, day: dt.date) -> Path:
        """The scores of `day`, written before training on it."""
        return self.scores_dir / f"{day.isoformat()}.parquet"

    @property
    def marker(self) -> Path:
        """The identity file that says this directory is a fraudpipe share."""
        return self.root / MARKER_NAME

    def resolve(self, relative: str | os.PathLike[str]) -> Path:
        """A path inside the share; refuses anything that escapes the root."""
        path = (self.root / relative).resolve()
        if path != self.root and self.root not in path.parents:
            raise ValueError(f"path {relative!s} escapes the storage root {self.root}")
        return path

    def training_dates(self) -> list[dt.date]:
        """Dates of the validated training datasets on the share, oldest first."""
        if not self.training_dir.is_dir():
            return []
        days = []
        for path in self.training_dir.glob("*.parquet"):
            with contextlib.suppress(ValueError):
                days.append(dt.date.fromisoformat(path.stem))
        return sorted(days)


#: Name of the share's identity file, at the storage root.
MARKER_NAME = "fraudpipe-share.json"
MARKER_FORMAT = 1

_WHAT_TO_CHECK = ("check the path for a typo; in a pod, that the Filestore volume is mounted "
                  "there (the PVC is Bound to the right volume, `mount | grep {root}`); a new "
                  "share is created by `fraudpipe ingest` or `fraudpipe init --storage {root}`")


def _write_marker(share: Share, created_by: str) -> None:
    body = {"format": MARKER_FORMAT, "created_by": created_by,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    atomic_write_text(share.marker, json.dumps(body, indent=1, sort_keys=True) + "\n")


def _checkpoint_files(share: Share) -> list[str]:
    if not share.output_dir.is_dir():
        return []
    return sorted(p.name for p in share.output_dir.glob("model_cpt_*.skops") if p.is_file())


def _has_legacy_record(share: Share) -> bool:
    """True for shares written before the marker existed (they hold a record of work)."""
    return (share.ingest_manifest.is_file() or share.lineage.is_file()
            or bool(_checkpoint_files(share)))


def _check_lineage_present(share: Share) -> None:
    """Checkpoints without `lineage.json` are a lost record, never a fresh start."""
    if share.lineage.is_file():
        return
    orphans = _checkpoint_files(share)
    if orphans:
        raise LineageMissingError(
            f"{share.lineage} is missing but {share.output_dir} holds {len(orphans)} "
            f"checkpoint(s) ({orphans[0]} ... {orphans[-1]}): the record of the chain is "
            f"lost, and training now would start a new chain over them. Restore "
            f"lineage.json from a backup or snapshot of the share, or rebuild it with "
            f"`fraudpipe lineage --repair --storage {share.root}`; nothing was changed")


def open_share(root: str | os.PathLike[str], *, lineage_may_be_missing: bool = False) -> Share:
    """The existing share at `root`, or a `NotAShareError` saying what to check.

    Every command except the ones that create a share opens it through here, so a
    mistyped path or an unmounted volume stops the command instead of looking like an
    empty share (and, for training, starting a new chain). Shares created before the
    marker existed are recognised by their ingest manifest or lineage and get the marker.

    Args:
        root: the storage root.
        lineage_may_be_missing: skip the lost-lineage check (for the repair that rebuilds it).

    Raises:
        NotAShareError: `root` does not exist, is not a directory, or is not a share.
        LineageMissingError: the share holds checkpoints but no `output/lineage.json`.
    """
    share = Share.at(root)
    hint = _WHAT_TO_CHECK.format(root=share.root)
    if not share.root.exists():
        raise NotAShareError(f"storage root {share.root} does not exist; {hint}")
    if not share.root.is_dir():
        raise NotAShareError(f"storage root {share.root} is a file, not a directory; {hint}")
    # The lost-lineage check comes first: a refused share is left exactly as it was.
    if not lineage_may_be_missing:
        _check_lineage_present(share)
    if not share.marker.is_file():
        if not _has_legacy_record(share):
            raise NotAShareError(
                f"{share.root} is not a fraudpipe share (no {MARKER_NAME}, no "
                f"datasets/ingested.json, no output/lineage.json, no checkpoint); {hint}")
        try:
            _write_marker(share, "recognised an existing share")
        except OSError as exc:  # a read-only mount: still a share, marked on a later write
            log.warning("%s: existing share recognised, but its marker %s could not be "
                        "written (%s)", share.root, MARKER_NAME, exc)
        else:
            log.info("%s: existing share recognised (it has a lineage, an ingest manifest "
                     "or checkpoints); wrote its marker %s", share.root, MARKER_NAME)
    return share


def create_share(root: str | os.PathLike[str], created_by: str) -> tuple[Share, bool]:
    """The share at `root`, created (directory and marker) when it is not one yet.

    Args:
        root: the storage root; created with its parents when missing.
        created_by: what created it, recorded in the marker (e.g. "fraudpipe ingest").

    Returns:
        The share, and True when this call created it.

    Raises:
        NotAShareError: `root` is a file.
    """
    share = Share.at(root)
    if share.root.exists() and not share.root.is_dir():
        raise NotAShareError(f"storage root {share.root} is a file, not a directory")
    if share.marker.is_file() or _has_legacy_record(share):
        return open_share(root), False
    share.root.mkdir(parents=True, exist_ok=True)
    _write_marker(share, created_by)
    return share, True


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


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Exclusive lock on `path` across processes and pods, and across threads.

    fcntl locks go through NFS's lock manager, but they belong to the process, so
    threads of one process would all pass; a per-path thread lock covers that case.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(str(path.resolve()), threading.Lock())
    with thread_lock, open(path, "a+") as handle:
        fcntl.lockf(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def shared_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Shared lock on `path`: any number of holders, but no `try_exclusive_lock` meanwhile.

    A training step holds its day's lock this way for its whole run, so an ingest cannot
    replace the dataset it is training on (two steps of one day may still overlap: the
    lineage's compare-and-swap settles them).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.lockf(handle.fileno(), fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def try_exclusive_lock(path: str | os.PathLike[str]) -> Iterator[bool]:
    """Exclusive lock on `path` without waiting; yields False when someone holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_UN)
