"""Turn a flow's storage and queue parameters into the trainer's `Share` and `WorkQueue`.

Every flow takes either the name of a saved block (`storage_block`, `queue_block`) or a
plain value (`storage`: a local path or `file://` URL; `redis_url`: a `redis://` or
`rediss://` URL), so the same flow runs from a deployment whose parameters name blocks
and from a test or a laptop that passes a directory and a URL. The block wins when both
are given; the environment (`FRAUDPIPE_STORAGE`, `FRAUDPIPE_REDIS_URL`) is the last
fallback. A missing or contradictory setting fails here, before any work, with a message
that names the parameter.
"""

from __future__ import annotations

import os
from typing import TypeVar, cast
from urllib.parse import urlparse

from prefect.blocks.core import Block

from flows.errors import FlowConfigurationError
from trainer.queue.settings import URL_ENV, RedisSettings
from trainer.queue.work_queue import WorkQueue
from trainer.share.layout import Share, open_share

#: Environment variable naming the storage root when neither parameter is given.
STORAGE_ENV = "FRAUDPIPE_STORAGE"


B = TypeVar("B", bound=Block)





def load_block(block_type: type[B], name: str) -> B:
    """The saved block `name` of `block_type`, loaded synchronously.

    `Block.load` is typed "block or coroutine" because it also serves async callers; the
    flows call it from sync code, where it returns the block.
    """
    return cast(B, block_type.load(name))


def resolve_share(storage_block: str | None = None, storage: str | None = None) -> Share:
    """The share named by a FilestoreStorage block, a local path, or `$FRAUDPIPE_STORAGE`.

    Args:
        storage_block: name of a saved `FilestoreStorage` block.
        storage: a local directory or a `file://` URL (used when no block is given).

    Raises:
        FlowConfigurationError: nothing given, the block does not exist, or the URL
            names a remote file system (the share must be mounted on this machine).
        NotAShareError: the path is not a share (a missing mount, a typo): no flow starts
            a new chain there; `fraudpipe init` creates one.
    """
    if storage_block:
        from blocks.filestore import FilestoreStorage

        try:
            block = load_block(FilestoreStorage, storage_block)
        except ValueError as exc:  # Prefect raises ValueError for an unknown block name
            raise FlowConfigurationError(
                f"storage_block {storage_block!r}: no saved FilestoreStorage block of that "
                f"name ({exc}); create it with FilestoreStorage(...).save({storage_block!r})"
            ) from exc
        return open_share(block.share().root)
    storage = storage or os.environ.get(STORAGE_ENV)
    if not storage:
        raise FlowConfigurationError(
            f"no storage: pass storage_block (a saved FilestoreStorage block) or storage "
            f"(a local directory), or set ${STORAGE_ENV}"
        )
    return open_share(_local_path(storage, "storage"))


def resolve_queue(
    queue_block: str | None = None,
    redis_url: str | None = None,
    *,
    lease_seconds: float | None = None,
    max_attempts: int | None = None,
) -> WorkQueue:
    """The work queue of a RedisWorkQueue block, a Redis URL, or `$FRAUDPIPE_REDIS_URL`.

    Args:
        queue_block: name of a saved `RedisWorkQueue` block (its lease policy applies).
        redis_url: `redis://` or `rediss://` URL (used when no block is given).
        lease_seconds: overrides the block's or the queue's default lease length.
        max_attempts: overrides the block's or the queue's default attempt budget.

    Raises:
        FlowConfigurationError: nothing given, the block does not exist, or the URL is bad.
    """
    if queue_block:
        from blocks.redis_queue import RedisWorkQueue

        try:
            block = load_block(RedisWorkQueue, queue_block)
        except ValueError as exc:
            raise FlowConfigurationError(
                f"queue_block {queue_block!r}: no saved RedisWorkQueue block of that name "
                f"({exc})"
            ) from exc
        settings = block.settings()
        lease_seconds = lease_seconds or block.lease_seconds
        max_attempts = max_attempts or block.max_attempts
    else:
        url = redis_url or os.environ.get(URL_ENV)
        if not url:
            raise FlowConfigurationError(
                f"no queue: pass queue_block (a saved RedisWorkQueue block) or redis_url "
                f"(redis://host:port/db), or set ${URL_ENV}"
            )
        try:
            settings = RedisSettings.from_url(url)
        except ValueError as exc:
            raise FlowConfigurationError(f"redis_url: {exc}") from exc
    options: dict = {}
    if lease_seconds is not None:
        options["lease_seconds"] = lease_seconds
    if max_attempts is not None:
        options["max_attempts"] = max_attempts
    try:
        return WorkQueue(settings, **options)
    except ValueError as exc:
        raise FlowConfigurationError(f"queue settings: {exc}") from exc


def _local_path(value: str, parameter: str) -> str:
    """A local path from a path or a `file://` URL; other schemes are refused."""
    parsed = urlparse(value)
    if parsed.scheme == "file":
        return parsed.path
    if parsed.scheme and len(parsed.scheme) > 1:  # a one-letter scheme is a Windows drive
        raise FlowConfigurationError(
            f"{parameter} {value!r}: the share must be a directory on this machine (the "
            f"Filestore mount or a local dir), not a {parsed.scheme}:// URL"
        )
    return value
