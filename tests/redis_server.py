"""The tests' redis-server: the product's supervisor (stack/services.py) with test defaults.

Each server gets a free port and its own directory with RDB snapshots off. `aof=True`
turns the append-only file on with `appendfsync always` (a kill -9 of the server loses no
acknowledged write) for the tests that restart Redis mid-run.
"""

from __future__ import annotations

import os
from pathlib import Path

from stack.services import RedisService, free_port, redis_server_binary

__all__ = ["REDIS_SERVER", "RedisServer", "free_port"]

REDIS_SERVER = os.environ.get("FRAUDPIPE_TEST_REDIS_SERVER") or redis_server_binary()


class RedisServer(RedisService):
    """A redis-server on 127.0.0.1, a free port, data in `directory`; no AOF unless asked."""

    def __init__(self, directory: Path, *, aof: bool = False, port: int | None = None) -> None:
        super().__init__(directory, port, aof=aof, appendfsync="always", binary=REDIS_SERVER)
        self.directory.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 10.0) -> RedisServer:
        super().start(timeout)
        return self
