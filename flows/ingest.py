"""The `ingest` flow: landing area -> validated Parquet on the share -> dates on the queue.

The landing area is any fsspec URL: a local directory by default, `gs://bucket/prefix`
on GCP (that needs `gcsfs`, which fraudpipe does not depend on: the error says so). The
flow copies the landing files to a private local staging directory, so the trainer's
ingestion only ever reads local files, then lets `trainer.data.ingest` validate, convert and
write them (a file whose content is already on the share is "unchanged", so re-running
is idempotent). A file that does not validate is copied to `datasets/quarantine/` with
its reason and stays in the landing area (input is never deleted); the others go on.
Finally every ingested day that is not trained yet is pushed on the queue (pushing a
known day is a no-op).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from flows.errors import LandingError, refused
from flows.params import Connections, expands_groups
from flows.summary import IngestedDay, QuarantinedFile, RefusedFile, RunSummary, entry_of
from flows.train import finish
from trainer.backlog import queue_trainable
from trainer.data.ingest import IngestResult, ingest_path
from trainer.errors import FraudpipeError
from trainer.queue.work_queue import WorkQueue
from trainer.share.layout import Share
from trainer.share.lineage import Lineage


def landing_filesystem(landing: str):
    """The fsspec file system and path of `landing`, with an install hint if missing."""
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(landing)
    except ImportError as exc:
        protocol = landing.split("://", 1)[0] if "://" in landing else "file"
        package = {"gs": "gcsfs", "gcs": "gcsfs", "s3": "s3fs", "az": "adlfs",
                   "abfs": "adlfs"}.get(protocol, f"the fsspec driver for {protocol}://")
        raise LandingError(
            f"landing {landing!r}: reading {protocol}:// URLs needs {package}, which is not "
            f"installed (pip install {package}); fraudpipe does not depend on it") from exc
    except ValueError as exc:
        raise LandingError(f"landing {landing!r}: {exc}") from exc


def check_landing(landing: str, parameter: str = "landing") -> None:
    """Refuse a landing area that is not a directory, before anything runs.

    Raises:
        LandingError: naming the parameter and the path, and what to do.
    """
    fs, root = landing_filesystem(landing)
    if not fs.isdir(root):
        what = "is a file" if fs.exists(root) else "no such directory"
        raise LandingError(
            f"{parameter} {landing!r}: {what}; expected a directory that the day files "
            f"land in (create it and put the files there, e.g. with `fraudpipe simulate "
            f"--out DIR`)")


def stage_landing(landing: str, staging: Path) -> dict[str, str]:
    """Copy the landing area's visible files into `staging`; returns name -> landing path."""
    fs, root = landing_filesystem(landing)
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError as exc:
        raise LandingError(f"landing {landing!r}: no such directory") from exc
    staged: dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: e["name"]):
        name = PurePosixPath(entry["name"]).name
        if entry.get("type") != "file" or name.startswith("."):
            continue  # producers write hidden temp files; sub-directories are not days
        fs.get_file(entry["name"], str(staging / name))
        staged[name] = entry["name"]
    return staged


@task(name="ingest-landing", cache_policy=NO_CACHE)
def ingest_landing(landing: str, storage_root: str, allow_pickle: bool = False) -> IngestResult:
    """Stage the landing files and ingest them (`trainer.data.ingest.ingest_path`).

    Returns:
        Its `IngestResult`, each entry's source named by its landing path.
    """
    logger = get_run_logger()
    staging = Path(tempfile.mkdtemp(prefix="fraudpipe-staging-"))
    try:
        staged = stage_landing(landing, staging)
        logger.info("staged %d file(s) from %s", len(staged), landing)
        result = ingest_path(staging, Share.at(storage_root), allow_pickle=allow_pickle)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for entries in (result.ingested, result.unchanged, result.quarantined, result.refused):
        for entry in entries:
            entry["source"] = staged.get(Path(entry["source"]).name, entry["source"])
    for entry in result.quarantined:
        logger.warning("quarantined %s: %s", entry["source"], entry["reason"])
    logger.info("%d ingested, %d unchanged, %d quarantined, %d refused",
                len(result.ingested), len(result.unchanged), len(result.quarantined),
                len(result.refused))
    return result


@task(name="queue-days", cache_policy=NO_CACHE)
def queue_days(storage_root: str, queue: WorkQueue, lineage: Lineage | None = None,
               manifest: dict | None = None, days: list[str] | None = None) -> list[str]:
    """Push the trainable days on the queue (`trainer.backlog.queue_trainable`).

    `lineage` and `manifest`: the record as the flow read it (default: read here).
    `days`: the candidates, YYYY-MM-DD (default: every ingested day).
    """
    candidates = None if days is None else [dt.date.fromisoformat(d) for d in days]
    pushed = [d.isoformat() for d in queue_trainable(Share.at(storage_root), queue, candidates,
                                                     lineage=lineage, manifest=manifest)]
    get_run_logger().info("queued %d new day(s): %s", len(pushed), ", ".join(pushed) or "none")
    return pushed


def run_ingest(share: Share, summary: RunSummary, landing: str, *,
               allow_pickle: bool = False) -> None:
    """Ingest the landing area onto the share; record what came in `summary`."""
    result = ingest_landing(landing, str(share.root), allow_pickle)
    summary.ingested += [entry_of(IngestedDay, e) for e in result.ingested]
    summary.quarantined += [entry_of(QuarantinedFile, e) for e in result.quarantined]
    summary.refused += [entry_of(RefusedFile, e) for e in result.refused]


@flow(name="ingest", log_prints=True)
@expands_groups
def ingest_flow(landing: str, connections: Connections,
                allow_pickle: bool = False) -> dict | State:
    """Ingest the landing area's new files and queue their dates.

    Args:
        landing: fsspec URL or local directory of the incoming files.
        connections: the share and the queue (`flows.params.Connections`).
        allow_pickle: also read `.pkl` files (the GKE sample's format; they can run code).

    Returns:
        The run's summary; a Failed state naming the cause when the share or the landing
        area cannot be used.
    """
    try:
        share = connections.share()
        check_landing(landing)
    except FraudpipeError as exc:
        return refused(exc)
    queue = connections.queue()
    summary = RunSummary(flow="ingest")
    run_ingest(share, summary, landing, allow_pickle=allow_pickle)
    summary.queued += queue_days(str(share.root), queue)
    return finish(summary, share)
