"""The Redis work queue as a Prefect block: where the queue lives and how it leases.

The block holds the connection (a local redis-server, an in-cluster Redis, or Memorystore
with AUTH and in-transit TLS, FACTS section 5) and the queue's policy. It builds the
trainer's own objects, `trainer.queue.settings.RedisSettings` and `trainer.queue.WorkQueue`,
so a flow and a pod that reads the same settings from its environment talk to the same
queue the same way. Those modules are imported when used, so the block registers even
where the trainer's queue is not installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from blocks.errors import MissingComponentError
from trainer.storage import atomic_write_bytes

REDIS_KEY_PART = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
HOSTNAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$")
REDIS_SCHEMES = {"redis": False, "rediss": True}


class RedisWorkQueue(Block):
    """The Redis list fraudpipe queues its datasets on, with its lease policy.

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
    _documentation_url = (
        "https://cloud.google.com/memorystore/docs/redis/about-in-transit-encryption"
    )

    host: str = Field(default="localhost", description="Redis host name or IP address.")
    port: int = Field(default=6379, ge=1, le=65535, description="Redis TCP port.")
    db: int = Field(default=0, ge=0, le=15, description="Redis logical database number.")
    username: str | None = Field(
        default=None, min_length=1, description="ACL user name; leave empty for the default user."
    )
    password: SecretStr | None = Field(
        default=None, description="Password or Memorystore AUTH string."
    )
    tls: bool = Field(default=False, description="Connect with TLS (Memorystore in-transit).")
    ca_file: str | None = Field(
        default=None, description="Path of the server CA certificate (PEM) used with TLS."
    )
    ca_pem: SecretStr | None = Field(
        default=None,
        description="The server CA certificate itself (PEM text), instead of ca_file.",
    )
    key_prefix: str = Field(
        default="fraudpipe", description="Prefix of every Redis key the queue uses."
    )
    queue_name: str = Field(default="datasets", description="Name of the queue's pending list.")
    lease_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="How long a lease lasts without a heartbeat before it is reclaimed.",
    )
    socket_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds before a Redis command times out."
    )
    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Attempts before an item goes to the dead letters."
    )

    @field_validator("host")
    @classmethod
    def _host_is_a_name(cls, value: str) -> str:
        if "://" in value or not HOSTNAME.match(value):
            raise ValueError(
                f"host {value!r} is not a host name or IP address (no scheme, port or "
                "spaces; use RedisWorkQueue.from_url for a redis:// URL)"
            )
        return value

    @field_validator("key_prefix", "queue_name")
    @classmethod
    def _redis_name(cls, value: str, info: ValidationInfo) -> str:
        # The same rule as trainer.queue.settings.RedisSettings, checked here so a bad
        # name fails when the block is saved rather than when a flow first uses it.
        if not REDIS_KEY_PART.match(value):
            raise ValueError(
                f"{info.field_name} {value!r} must be 1-100 letters, digits, '_', '.' or '-'"
            )
        return value

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
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in REDIS_SCHEMES:
            raise ValueError(f"url {url!r}: expected the scheme redis:// or rediss://")
        fields: dict[str, Any] = {
            "host": parts.hostname or "localhost",
            "tls": REDIS_SCHEMES[parts.scheme],
        }
        if parts.port is not None:
            fields["port"] = parts.port
        db_text = parts.path.strip("/")
        if db_text:
            if not db_text.isdigit():
                raise ValueError(
                    f"url {url!r}: the path must be a database number, not {db_text!r}"
                )
            fields["db"] = int(db_text)
        if parts.username:
            fields["username"] = urllib.parse.unquote(parts.username)
        if parts.password:
            fields["password"] = urllib.parse.unquote(parts.password)
        query = urllib.parse.parse_qs(parts.query)
        if "ssl_ca_certs" in query:
            fields["ca_file"] = query["ssl_ca_certs"][0]
        return cls(**{**fields, **overrides})

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

    def settings(self) -> Any:
        """The trainer's `RedisSettings` for this connection and queue."""
        try:
            from trainer.queue.settings import RedisSettings
        except ImportError as exc:
            raise MissingComponentError(
                "trainer.queue.settings is not importable; install fraudpipe with its "
                "queue (pip install -e .) to use RedisWorkQueue.settings()"
            ) from exc
        return RedisSettings(
            host=self.host,
            port=self.port,
            db=self.db,
            username=self.username,
            password=self.password,
            tls=self.tls,
            ca_file=self._ca_path(),
            key_prefix=self.key_prefix,
            queue_name=self.queue_name,
            socket_timeout=self.socket_timeout,
        )

    def get_queue(self) -> Any:
        """The trainer's `WorkQueue` on this connection with this lease policy."""
        try:
            from trainer.queue.work_queue import WorkQueue
        except ImportError as exc:
            raise MissingComponentError(
                "trainer.queue.work_queue is not importable; install fraudpipe with its queue "
                "(pip install -e .) to use RedisWorkQueue.get_queue()"
            ) from exc
        return WorkQueue(
            self.settings(), lease_seconds=self.lease_seconds, max_attempts=self.max_attempts
        )
