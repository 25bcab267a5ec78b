"""The Redis work queue as a Prefect block: where the queue lives and how it leases.

The block holds the connection (a local redis-server, an in-cluster Redis, or Memorystore
with AUTH and in-transit TLS, docs/facts.md#redis-and-memorystore) and the queue's policy.
Its connection fields are the trainer's `RedisConnection`, and it builds the trainer's own
objects, `RedisSettings` and `WorkQueue`, so a flow and a pod that reads the same settings
from its environment talk to the same queue the same way.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr, field_validator, model_validator

from trainer.queue.settings import RedisConnection, RedisSettings, redis_url_fields
from trainer.queue.work_queue import WorkQueue
from trainer.share.files import atomic_write_bytes


class RedisWorkQueue(RedisConnection, Block):
    """The Redis queue (a sorted set of dates) fraudpipe trains from, with its lease policy.

    The connection fields are `trainer.queue.settings.RedisConnection`'s, declared once.

    Example:
        Load the saved queue and lease the next dataset:
        ```python
        from blocks import RedisWorkQueue

        redis_queue = RedisWorkQueue.load("BLOCK_NAME")
        queue = redis_queue.get_queue()
        ```
    """

    _block_type_name = "Fraudpipe Redis Work Queue"
    _description = (
        "Connection (host, AUTH, TLS for Memorystore) and lease policy of the Redis work "
        "queue that holds the datasets fraudpipe still has to train."
    )
    # No logo: a URL we cannot check offline would show as a broken image in the UI.
    _documentation_url = HttpUrl(
        "https://cloud.google.com/memorystore/docs/redis/about-in-transit-encryption"
    )

    ca_pem: SecretStr | None = Field(
        default=None,
        description="The server CA certificate itself (PEM text), instead of ca_file.",
    )
    lease_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="How long a lease lasts without a heartbeat before it is reclaimed.",
    )
    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Attempts before an item goes to the dead letters."
    )

    @field_validator("ca_pem")
    @classmethod
    def _ca_pem_is_pem(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and "-----BEGIN CERTIFICATE-----" not in value.get_secret_value():
            raise ValueError("ca_pem must be a PEM certificate ('-----BEGIN CERTIFICATE-----')")
        return value

    @model_validator(mode="after")
    def _tls_settings_agree(self) -> RedisWorkQueue:
        if self.ca_file is not None and self.ca_pem is not None:
            raise ValueError("ca_file and ca_pem are mutually exclusive: give the CA once")
        if (self.ca_file is not None or self.ca_pem is not None) and not self.tls:
            raise ValueError("ca_file/ca_pem need tls=True: the CA is only used over TLS")
        return self

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> RedisWorkQueue:
        """A block from `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS).

        Args:
            url: The connection URL; an `ssl_ca_certs` query parameter sets `ca_file`.
            **overrides: Other fields (queue_name, lease_seconds, ...).

        Raises:
            ValueError: the URL's scheme or database number is not understood.
        """
        return cls(**{**redis_url_fields(url), **overrides})

    def url(self) -> str:
        """The connection URL without the password (safe to log)."""
        scheme = "rediss" if self.tls else "redis"
        user = f"{urllib.parse.quote(self.username)}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.db}"

    def _ca_path(self) -> str | None:
        """`ca_file`, or a private file holding `ca_pem` (the trainer takes a path)."""
        if self.ca_pem is None:
            return self.ca_file
        pem = self.ca_pem.get_secret_value().encode()
        # A directory only this user can write, so nobody can plant another CA there.
        directory = Path(tempfile.gettempdir()) / f"fraudpipe-ca-{os.getuid()}"
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise PermissionError(f"{directory} is not a private directory of this user")
        path = directory / f"{hashlib.sha256(pem).hexdigest()[:16]}.pem"
        atomic_write_bytes(path, pem, mode=0o600)  # private from the start
        return str(path)

    def settings(self) -> RedisSettings:
        """The trainer's `RedisSettings` for this connection and queue."""
        fields = self.model_dump(include=set(RedisConnection.model_fields))
        # model_dump keeps the SecretStr object (not its text); the CA may be inline PEM
        return RedisSettings(**{**fields, "ca_file": self._ca_path()})

    def get_queue(self) -> WorkQueue:
        """The trainer's `WorkQueue` on this connection with this lease policy."""
        return WorkQueue(
            self.settings(), lease_seconds=self.lease_seconds, max_attempts=self.max_attempts
        )
