"""A deployed fraudpipe on a real Prefect server, shared by the end-to-end and browser tests.

`deployed_pipeline(request, tmp_path_factory)` starts a private redis-server and a real
Prefect server (`prefect server start`, SQLite, on a copy of the session's migrated
database: tests/prefect_db.py; not the test harness) with `stack.services` (scheduler on,
as `make up` runs it), then runs the embedded default
against them in a subprocess, exactly as a user would: work pools and blocks,
`prefect deploy` of the `*/local` deployments, a process worker,
`prefect deployment run 'daily-pipeline/local'`. It runs the demo as `make run` does:
the days arrive without labels and each day's labels land a week later, so the first
`TRAINED` days are labelled and trained and the others are scored on arrival; "today"
is the last day, which nobody has labelled yet. The servers stay up for the tests that
read the result through the API or the UI, and stop when this worker moves past the last
test of their xdist unit (`stop_after_last_user`; an idle server with its scheduler still
costs CPU), or at the end of the session. One instance per test process: the first test
that asks starts it, the rest reuse it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.services import PrefectServer, RedisService
from tests.prefect_db import SEEDED_SERVER_SETTINGS, seed_prefect_home
from tests.xdist_groups import last_of_unit

REPOSITORY = Path(__file__).resolve().parents[1]
#: Small population: the test is about orchestration, not about the model.
SIMULATION_ARGS = ["--customers", "300", "--terminals", "600"]
DAYS = 10
#: `make run`'s LABELS_AFTER: a day's labels land this many days after it.
LABELS_AFTER = 7
#: The days whose labels came by the last day: trained; the later ones are scored on arrival.
TRAINED = DAYS - LABELS_AFTER
#: Today: the last day, scored on arrival by the model trained through day TRAINED.
TODAY = f"2018-04-{DAYS:02d}"

_INSTANCE: dict[str, DeployedPipeline] = {}
#: The xdist unit of the tests that use the deployed pipeline (their modules' mark).
GROUP = "deployed_pipeline"


@dataclass
class DeployedPipeline:
    """The servers, the run directory and the embedded run's output."""

    run_dir: Path
    redis: RedisService
    server: PrefectServer
    returncode: int
    output: str
    seconds: float

    @property
    def share(self) -> Path:
        return self.run_dir / "share"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the Prefect REST API; the parsed JSON reply (raises on an HTTP error)."""
        response = httpx.request(method, f"{self.server.api_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.server.stop()
        self.redis.stop()


def run_embedded(run_dir: Path, days: int, *extra: str,
                 timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m stack run --days N --run-dir DIR ...` from the repository (`make run`)."""
    return subprocess.run(
        [sys.executable, "-m", "stack", "run", "--days", str(days), "--run-dir", str(run_dir),
         *SIMULATION_ARGS, *extra],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout,
    )


def deployed_pipeline(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> DeployedPipeline:
    """The session's deployed pipeline, started on first use (see the module docstring)."""
    if "pipeline" in _INSTANCE:
        return _INSTANCE["pipeline"]
    run_dir = tmp_path_factory.mktemp("embedded")
    redis = RedisService(run_dir / "redis").start()
    try:
        server = PrefectServer(seed_prefect_home(run_dir / "prefect", tmp_path_factory),
                               settings=SEEDED_SERVER_SETTINGS).start()
    except Exception:
        redis.stop()
        raise
    began = time.perf_counter()
    try:
        result = run_embedded(run_dir, DAYS, "--labels-after", str(LABELS_AFTER),
                              "--prefect-api-url", server.api_url, "--redis-url", redis.url)
    except BaseException:
        server.stop()
        redis.stop()
        raise
    pipeline = DeployedPipeline(run_dir, redis, server, result.returncode,
                                result.stdout + result.stderr, time.perf_counter() - began)
    request.config.add_cleanup(pipeline.stop)
    _INSTANCE["pipeline"] = pipeline
    return pipeline


def stop_after_last_user(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the pipeline's servers once `item` was the last test of their unit here."""
    if "pipeline" in _INSTANCE and last_of_unit(item, nextitem, GROUP):
        _INSTANCE.pop("pipeline").stop()
