"""Connection settings of the Redis work queue, from a URL or the environment.

`RedisConnection` declares everything a worker needs to reach the queue: a local
redis-server, an in-cluster Redis, or Memorystore with AUTH and in-transit TLS
(docs/facts.md#redis-and-memorystore). `RedisSettings` reads it from a URL or the
environment (prefix `FRAUDPIPE_REDIS_`); the Prefect block builds one from its own saved
fields. Failures to connect are translated at this boundary into `QueueConnectionError`
naming host:port and what to check.
"""

from __future__ import annotations

import os
import re
import ssl
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote, urlparse

import redis
from pydantic import BaseModel, Field, SecretStr, StringConstraints, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.backoff import NoBackoff
from redis.retry import Retry

from trainer.errors import QueueConnectionError

#: Environment variable holding a full connection URL (used by the CLI's --redis-url).
URL_ENV = "FRAUDPIPE_REDIS_URL"


#: A key prefix or queue name: a Redis key part fraudpipe can read back.
RedisName = Annotated[str, StringConstraints(min_length=1, max_length=100,
                                             pattern=r"^[A-Za-z0-9_.\-]+$")]
HOSTNAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$")


#: Highest database number of a default Redis server (`databases 16` in redis.conf).
MAX_DB = 15
#: The first PING of `client()` gives up after this long, without redis-py's retries: a
#: wrong scheme or port (rediss:// against a plain server) fails in seconds, not minutes.
CHECK_CONNECT_SECONDS = 5.0


def redis_url_fields(url: str) -> dict[str, Any]:
    """The connection fields of a `redis[s]://[[user]:password@]host[:port][/db]` URL.

    An `ssl_ca_certs` query parameter (redis-py's name) sets `ca_file`.

    Raises:
        ValueError: another scheme, or an invalid port or database number.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"Redis url {url!r}: expected the scheme redis:// or rediss:// (TLS)")
    try:
        port = parsed.port
    except ValueError as exc:
        raise ValueError(f"Redis url {url!r}: invalid port") from exc
    fields: dict[str, Any] = {"tls": parsed.scheme == "rediss"}
    if parsed.hostname:
        fields["host"] = parsed.hostname
    if port is not None:
        fields["port"] = port
    path = parsed.path.strip("/")
    if path:
        if not path.isdigit():
            raise ValueError(f"Redis url {url!r}: the path must be a database number, "
                             f"not {path!r}")
        fields["db"] = int(path)
        if not 0 <= fields["db"] <= MAX_DB:
            raise ValueError(f"Redis url {url!r}: database {fields['db']} does not exist; a "
                             f"Redis server has databases 0 to {MAX_DB} unless configured "
                             "otherwise (`databases` in redis.conf)")
    if parsed.username:
        fields["username"] = unquote(parsed.username)
    if parsed.password:
        fields["password"] = SecretStr(unquote(parsed.password))
    query = parse_qs(parsed.query)
    if "ssl_ca_certs" in query:
        fields["ca_file"] = query["ssl_ca_certs"][0]
    return fields


class RedisConnection(BaseModel):
    """Where the work queue lives and how to reach it: the one declaration of each field.

    `RedisSettings` (from a URL or the environment, inside a pod) and the Prefect block
    `blocks.redis_queue.RedisWorkQueue` (saved on the server) both derive from it.
    """

    host: str = Field(default="localhost", min_length=1, description="Redis host name or IP.")
    port: int = Field(default=6379, ge=1, le=65535, description="Redis TCP port.")
    db: int = Field(default=0, ge=0, le=MAX_DB, description="Logical database number.")
    username: str | None = Field(
        default=None, min_length=1, description="ACL user name (Redis 6+); None for AUTH only."
    )
    password: SecretStr | None = Field(
        default=None, description="AUTH string (Memorystore's AUTH) or the ACL user's password."
    )
    tls: bool = Field(default=False, description="Use TLS (Memorystore in-transit encryption).")
    ca_file: str | None = Field(
        default=None, min_length=1, description="PEM file of the server CA used to verify TLS."
    )
    key_prefix: RedisName = Field(
        default="fraudpipe",
        description="Prefix of every key the queue owns, e.g. 'fraudpipe:datasets:pending'.",
    )
    queue_name: RedisName = Field(
        default="datasets",
        description="Queue name; the un-prefixed key of the same name is the sample's list.",
    )
    socket_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds before a Redis command times out."
    )

    @field_validator("host")
    @classmethod
    def _host_is_a_name(cls, value: str) -> str:
        if "://" in value or not HOSTNAME.match(value):
            raise ValueError(
                f"host {value!r} is not a host name or IP address (no scheme, port or "
                "spaces; use from_url for a redis:// URL)"
            )
        return value


class RedisSettings(RedisConnection, BaseSettings):
    """Where the work queue lives and how to authenticate to it.

    Example:
        >>> RedisSettings.from_url("rediss://:secret@10.0.0.3:6378/2").url_for_display()
        'rediss://:***@10.0.0.3:6378/2'
    """

    model_config = SettingsConfigDict(env_prefix="FRAUDPIPE_REDIS_", extra="forbid")

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> RedisSettings:
        """Settings from a `redis://` or `rediss://` URL; keyword arguments win over it.

        Args:
            url: `redis[s]://[[user]:password@]host[:port][/db]`.
            **overrides: any field, e.g. `ca_file=...` or `queue_name=...`.

        Raises:
            ValueError: the URL has another scheme or an invalid port or db.
        """
        return cls(**{**redis_url_fields(url), **overrides})

    @classmethod
    def from_env(cls, url: str | None = None, **overrides: Any) -> RedisSettings:
        """Settings from `url`, else `$FRAUDPIPE_REDIS_URL`, else the `FRAUDPIPE_REDIS_*` vars."""
        url = url or os.environ.get(URL_ENV)
        if url:
            return cls.from_url(url, **overrides)
        return cls(**overrides)

    @property
    def address(self) -> str:
        """`host:port`, as error messages name it."""
        return f"{self.host}:{self.port}"

    def url_for_display(self) -> str:
        """The connection URL with the password masked, safe for logs."""
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}:{'***' if self.password else ''}@"
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.db}"

    def client(self, *, check: bool = True) -> redis.Redis:
        """A client for these settings.

        Args:
            check: PING once so a wrong host, password or CA fails here, clearly.

        Raises:
            QueueConnectionError: refused, timed out, authentication or TLS failure.
        """
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "username": self.username,
            "password": self.password.get_secret_value() if self.password else None,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_timeout,
            "decode_responses": True,
        }
        if self.tls:
            kwargs.update(ssl=True, ssl_cert_reqs="required", ssl_ca_certs=self.ca_file)
        if check:
            quick = min(self.socket_timeout, CHECK_CONNECT_SECONDS)
            probe = redis.Redis(**{**kwargs, "retry": Retry(NoBackoff(), 0),
                                   "socket_connect_timeout": quick, "socket_timeout": quick})
            try:
                self.check(probe)
            finally:
                probe.close()
        return redis.Redis(**kwargs)

    def check(self, client: redis.Redis) -> None:
        """PING through `client`, translating failures into `QueueConnectionError`."""
        try:
            client.ping()
        except BaseException as exc:  # noqa: B036 - re-raised unless we know it
            raise self.explain(exc) from exc

    def explain(self, exc: BaseException) -> BaseException:
        """The `QueueConnectionError` with a hint for a redis-py connection failure."""
        where = f"Redis at {self.url_for_display()}"
        text = str(exc)
        if isinstance(exc, redis.AuthenticationError) or "NOAUTH" in text or "WRONGPASS" in text:
            hint = (
                "authentication failed: check the password (FRAUDPIPE_REDIS_PASSWORD or the "
                "URL's ':password@'), and the user name if ACLs are used"
            )
        elif _is_tls_failure(exc):
            hint = (
                "TLS handshake failed: check that the server has TLS on (rediss://) and that "
                "ca_file (FRAUDPIPE_REDIS_CA_FILE) is the server's CA"
            )
        elif isinstance(exc, redis.TimeoutError):
            hint = "timed out: check host, port, firewall and that TLS matches the server"
        elif isinstance(exc, redis.ConnectionError):
            hint = (
                "connection failed: check that redis-server runs there, the host and port, "
                "and network access (" + text + ")"
            )
        elif isinstance(exc, redis.ResponseError):
            hint = f"the server refused the connection setup: {text}"
        else:
            return exc
        return QueueConnectionError(f"cannot use {where}: {hint}")


def _is_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError) or "SSL" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
