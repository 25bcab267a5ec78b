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

import shutil
import tempfile
from pathlib import Path, PurePosixPath

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from flows.errors import LandingError, refused
from flows.resolve import resolve_queue, resolve_share
from flows.summary import RunSummary
from flows.train import finish
from trainer.backlog import queue_trainable
from trainer.data.ingest import ingest_path
from trainer.errors import FraudpipeError
from trainer.share.layout import Share


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
def ingest_landing(landing: str, storage_root: str, allow_pickle: bool = False) -> dict:
    """Stage, validate and convert the landing files onto the share; quarantine bad ones.

    Returns:
        `IngestResult.to_json()`.
    """
    logger = get_run_logger()
    share = Share.at(storage_root)
    staging = Path(tempfile.mkdtemp(prefix="fraudpipe-staging-"))
    try:
        staged = stage_landing(landing, staging)
        logger.info("staged %d file(s) from %s", len(staged), landing)
        result = ingest_path(staging, share, allow_pickle=allow_pickle).to_json()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for entry in result["quarantined"]:
        name = Path(entry["source"]).name
        entry["source"] = staged.get(name, entry["source"])
        logger.warning("quarantined %s: %s", entry["source"], entry["reason"])
    for kind in ("ingested", "unchanged", "refused"):
        for entry in result[kind]:
            entry["source"] = staged.get(Path(entry["source"]).name, entry["source"])
    logger.info("%d ingested, %d unchanged, %d quarantined, %d refused",
                len(result["ingested"]), len(result["unchanged"]),
                len(result["quarantined"]), len(result["refused"]))
    return result


def run_ingest(share: Share, summary: RunSummary, landing: str, *, queue_block: str | None,
               redis_url: str | None, allow_pickle: bool = False) -> None:
    """The body of the ingest flow, shared with the daily pipeline."""
    queue = resolve_queue(queue_block, redis_url)
    result = ingest_landing(landing, str(share.root), allow_pickle)
    summary.ingested.extend(result["ingested"])
    summary.quarantined.extend(result["quarantined"])
    summary.refused.extend(result["refused"])
    pushed = queue_trainable(share, queue)
    summary.queued.extend(d.isoformat() for d in pushed)
    get_run_logger().info("queued %d new day(s): %s", len(pushed),
                          ", ".join(summary.queued) or "none")


@flow(name="ingest", log_prints=True)
def ingest_flow(
    landing: str,
    storage_block: str | None = None,
    storage: str | None = None,
    queue_block: str | None = None,
    redis_url: str | None = None,
    allow_pickle: bool = False,
) -> dict | State:
    """Ingest the landing area's new files and queue their dates.

    Args:
        landing: fsspec URL or local directory of the incoming files.
        storage_block: saved FilestoreStorage block (else `storage`).
        storage: local directory of the share.
        queue_block: saved RedisWorkQueue block (else `redis_url`).
        redis_url: Redis URL (else `$FRAUDPIPE_REDIS_URL`).
        allow_pickle: also read `.pkl` files (the GKE sample's format; they can run code).

    Returns:
        The run's summary; a Failed state naming the cause when the share or the landing
        area cannot be used.
    """
    try:
        share = resolve_share(storage_block, storage)
        check_landing(landing)
    except FraudpipeError as exc:
        return refused(exc)
    summary = RunSummary(flow="ingest")
    run_ingest(share, summary, landing, queue_block=queue_block, redis_url=redis_url,
               allow_pickle=allow_pickle)
    return finish(summary, share)
