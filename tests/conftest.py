"""Shared fixtures: a private redis-server per test session, an isolated db per test.

The suite runs on pytest-xdist workers (`make test`: `-n 3 --dist loadgroup`); each
worker is its own session with its own redis-server. tests/xdist_groups.py decides which
tests share a worker: a module's tests, and the modules that share one Prefect server.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

# Three pytest workers and their subprocesses share 2 cores: OpenMP's and OpenBLAS's thread
# pools on top (LightGBM's prediction, NumPy's matrix products) only contend, ~7-10% more
# CPU on the model-heavy tests (four of them, 41.2 -> 36.8 and 43.7 -> 39.7 s, interleaved).
# One thread each, set before NumPy loads; subprocesses inherit it; a value already set wins.
for _pool in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_pool, "1")

# skops.io looks for NumPy's and SciPy's ufuncs in every loaded module, in import order, when
# it is imported (skops/io/_utils.py, whichmodule). Imported here, before the test modules
# bring in Prefect and Hera, it walks ~1,000 modules rather than ~4,000: ~0.8 s of CPU less
# per pytest process.
import skops.io  # noqa: E402, F401, I001

sys.path.insert(0, str(Path(__file__).parent))

from redis_server import RedisServer  # noqa: E402
from xdist_warmup import first_worker_collected, forget_marker, wait_for_first_worker  # noqa: E402

#: Database used by `redis_url`; db 0 stays free for ad-hoc use.
TEST_DB = 9


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadgroup`: tests/xdist_groups.py's units of work (see there why)."""
    if config.getoption("dist") != "loadgroup":
        return None
    config.option.loadscopereorder = False  # collection order: the long integration tests first
    from xdist_groups import ModuleGroupScheduling

    return ModuleGroupScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    wait_for_first_worker(config)  # a cold install: gw0 compiles the imports first


def pytest_collection_finish(session: pytest.Session) -> None:
    first_worker_collected(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    forget_marker(config)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server started for this test session (one per xdist worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    server = RedisServer(tmp_path_factory.mktemp(f"redis-{worker}"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """URL of an empty database on the session's server, flushed before and after."""
    url = redis_server.url_for_db(TEST_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def aof_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A separate AOF-enabled redis-server that a test may kill -9 and restart."""
    server = RedisServer(tmp_path / "redis-aof", aof=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def scored_widths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The column count of every X that `trainer.evaluation.scoring` scores, in order."""
    from trainer.evaluation import scoring

    widths: list[int] = []
    real = scoring.fraud_scores

    def spy(model, X):
        widths.append(X.shape[1])
        return real(model, X)

    monkeypatch.setattr(scoring, "fraud_scores", spy)
    return widths
