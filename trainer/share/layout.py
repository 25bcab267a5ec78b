"""The share's layout: where each of fraudpipe's files lives under one storage root.

The share is an NFS mount in a pod (`/mnt/fileserver`) and a plain directory on a laptop.
Readers never list directories to find checkpoints: they go through the lineage
(`trainer.share.lineage`). The root carries a marker file, so a missing mount or a
mistyped path is an error, not an empty share (`open_share`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import LineageMissingError, NotAShareError
from trainer.share.files import atomic_write_text
from trainer.share.locks import file_lock

log = logging.getLogger(__name__)


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

    @property
    def ingest_lock(self) -> Path:
        """The lock file held while the ingest manifest and the datasets it lists change."""
        return self.ingest_manifest.with_name(".ingest.lock")

    def dataset(self, kind: str, day: dt.date) -> Path:
        """The dataset of `day` of one kind: "training", "arrived" or "testing"."""
        if kind == "testing":
            return self.testing_dataset(day.isoformat())
        if kind == "arrived":
            return self.arrived_dataset(day)
        return self.training_dataset(day)

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
        # The first commit of a chain publishes its checkpoint, then writes lineage.json,
        # both under the lineage lock: wait for a commit in flight before calling it lost.
        with file_lock(share.lineage_lock):
            if share.lineage.is_file():
                return
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
