"""A schedule that comes due turns into a flow run that completes: the scheduler is ON.

A real `prefect server start` with its scheduler service (loop shortened to 2 s through
PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS, prefect/settings/models/server/
services.py), the project's `*/local` deployments registered by `python -m stack prepare`
(`prefect deploy` of prefect.yaml, the blocks, the pools), an interval schedule added to
`daily-pipeline/local` through the REST API, and a real process worker. The run the
scheduler creates must reach Completed and leave its artifacts and lineage.

This is the test that SQLAlchemy 2.1.x fails: Prefect 3.8.8's scheduler service then
raises "Can't evaluate bulk DML statement" on every loop and never creates a run.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.embedded import simulate_new_days
from stack.register import DAILY_DEPLOYMENT, PROCESS_POOL, REPOSITORY
from stack.rundir import RunDirectory
from stack.services import PrefectServer, ProcessWorker, RedisService
from trainer.share.layout import Share
from trainer.share.lineage import verify

pytestmark = pytest.mark.integration

LOOP_SECONDS = 2
INTERVAL_SECONDS = 10
DAYS = 2
#: Generous bounds; each wait ends as soon as its condition holds.
SCHEDULED_WITHIN = 60.0
COMPLETED_WITHIN = 300.0


def _request(server: PrefectServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One API call; a 503 (SQLite busy under load) is retried like Prefect's client does."""
    for attempt in range(5):
        response = httpx.request(method, f"{server.api_url}{path}", timeout=30, **kwargs)
        if response.status_code != 503:
            break
        time.sleep(0.5 * 2 ** attempt)
    return response


def _api(server: PrefectServer, method: str, path: str, **kwargs: Any) -> Any:
    response = _request(server, method, path, **kwargs)
    response.raise_for_status()
    return response.json()


def _scheduled_runs(server: PrefectServer, deployment_id: str, before: dt.datetime) -> list[dict]:
    """The deployment's auto-scheduled runs expected to start before `before`, earliest first."""
    runs = _api(server, "POST", "/flow_runs/filter", json={
        "flow_runs": {"deployment_id": {"any_": [deployment_id]},
                      "expected_start_time": {"before_": before.isoformat()}},
        "sort": "EXPECTED_START_TIME_ASC"})
    return [run for run in runs if run["auto_scheduled"]]


def _scheduler_errors(server: PrefectServer) -> str:
    log = server.log_path.read_text(errors="replace")
    lines = [line for line in log.splitlines() if "Error" in line]
    return "\n".join(lines[-6:]) or log[-2000:]


@pytest.mark.timeout(600)
def test_a_due_schedule_creates_a_run_that_the_worker_completes(tmp_path: Path) -> None:
    # GIVEN two simulated days in the landing area of a fresh run directory
    run_dir = RunDirectory(tmp_path).create()
    simulate_new_days(run_dir, DAYS, customers=300, terminals=600, seed=0)
    redis = RedisService(run_dir.redis).start()
    server = worker = None
    try:
        # AND a real Prefect server with its scheduler on, the project's deployments on it
        server = PrefectServer(run_dir.prefect, scheduler=True, settings={
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": str(LOOP_SECONDS)}).start()
        prepared = subprocess.run(
            [sys.executable, "-m", "stack", "prepare", "--run-dir", str(tmp_path),
             "--prefect-api-url", server.api_url, "--redis-url", redis.url],
            cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
        assert prepared.returncode == 0, prepared.stdout + prepared.stderr
        deployment = _api(server, "GET", f"/deployments/name/{DAILY_DEPLOYMENT}")
        assert deployment["parameters"]["landing"] == str(run_dir.landing)
        # AND a process worker (one run at a time) polling every 2 s
        worker = ProcessWorker(PROCESS_POOL, server.env(),
                               run_dir.prefect / "worker.log", cwd=REPOSITORY, limit=1).start()

        # WHEN the deployment gets a schedule that comes due every 10 s
        created = _request(server, "POST", f"/deployments/{deployment['id']}/schedules",
                           json=[{"schedule": {"interval": INTERVAL_SECONDS}, "active": True}])
        assert created.is_success, (
            f"adding the schedule failed: HTTP {created.status_code} {created.text}; "
            f"server log:\n{_scheduler_errors(server)}")

        # THEN the scheduler creates a run for it within a few loops
        began = time.monotonic()
        horizon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        while not (runs := _scheduled_runs(server, deployment["id"], horizon)):
            assert time.monotonic() - began < SCHEDULED_WITHIN, (
                f"the scheduler created no run of {DAILY_DEPLOYMENT} in {SCHEDULED_WITHIN:.0f} s "
                f"(loop every {LOOP_SECONDS} s); server log:\n{_scheduler_errors(server)}")
            time.sleep(0.5)
        first = runs[0]
        # AND the worker takes it to a final state, Completed
        while (run := _api(server, "GET", f"/flow_runs/{first['id']}"))["state"]["type"] not in {
                "COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            assert time.monotonic() - began < COMPLETED_WITHIN, (
                f"scheduled run {first['name']} still {run['state']['name']} after "
                f"{COMPLETED_WITHIN:.0f} s; worker log:\n"
                f"{worker.log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(1.0)
        assert run["state"]["type"] == "COMPLETED", (
            run["state"], worker.log_path.read_text(errors="replace")[-3000:])
        assert run["parameters"]["landing"] == str(run_dir.landing)
        assert run["work_pool_name"] == PROCESS_POOL
        # AND it trained both days and published its artifacts
        chain = verify(Share.at(run_dir.share))
        assert [entry.date for entry in chain] == [dt.date(2018, 4, 1), dt.date(2018, 4, 2)]
        artifacts = _api(server, "POST", "/artifacts/filter",
                         json={"artifacts": {"flow_run_id": {"any_": [first["id"]]}}})
        markdown = [a["data"] for a in artifacts if a["type"] == "markdown"]
        assert any("2018-04-02" in text for text in markdown), [a["key"] for a in artifacts]
    finally:
        if worker is not None:
            worker.stop()
        if server is not None:
            server.stop()
        redis.stop()
