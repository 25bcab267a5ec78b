"""A schedule that comes due turns into a flow run that completes: the scheduler is ON.

On the session's `make up` stack (tests/make_up_stack.py: a real `prefect server start`
with its scheduler service, loop shortened to 2 s through
PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS, prefect/settings/models/server/
services.py; the `*/local` deployments; a real process worker), a schedule is added to
`daily-pipeline/local` through the REST API. The run the scheduler creates must reach
Completed and leave its artifacts and lineage. The schedule carries its own parameters
(Prefect merges a schedule's parameters over the deployment's) so that its run trains a
share of its own: the stack's share belongs to the tests before this one.

This is the test that SQLAlchemy 2.1.x fails: Prefect 3.8.8's scheduler service then
raises "Can't evaluate bulk DML statement" on every loop and never creates a run.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.embedded import simulate_new_days
from stack.register import DAILY_DEPLOYMENT, PROCESS_POOL
from stack.rundir import RunDirectory
from tests.make_up_stack import OpenStack
from trainer.share.layout import Share
from trainer.share.lineage import verify

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("make_up_stack")]

DAYS = 2
#: The schedule's runs come due this often; the scheduler creates them from its next loop
#: on, whenever that is, so one is due within 10 s of the schedule, however busy the machine.
INTERVAL = dt.timedelta(seconds=10)
#: Generous bounds; each wait ends as soon as its condition holds.
SCHEDULED_WITHIN = 60.0
COMPLETED_WITHIN = 300.0


def _request(api: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One API call; a 503 (SQLite busy under load) is retried like Prefect's client does.

    So is a read that times out: the server's SQLite waits up to 60 s for a lock
    (`PRAGMA busy_timeout`, prefect/server/database/configurations.py), and Prefect
    3.8.8's server can be held that long while a worker polls: a run of this suite logged
    `database is locked` after 60 s in `mark_work_queues_ready` (the worker's poll
    recorded, prefect/server/models/work_queues.py) as a read of the flow run timed out
    (SQLite lock errors under worker polling: PrefectHQ/prefect#23051).
    """
    for attempt in range(5):
        try:
            response = httpx.request(method, f"{api}{path}", timeout=30, **kwargs)
        except httpx.TimeoutException:
            if method != "GET" or attempt == 4:  # a write may have landed
                raise
            continue
        if response.status_code != 503:
            break
        time.sleep(0.5 * 2 ** attempt)
    return response


def _api(api: str, method: str, path: str, **kwargs: Any) -> Any:
    response = _request(api, method, path, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def _runs_of_schedule(api: str, deployment_id: str, landing: Path) -> list[dict]:
    """The deployment's auto-scheduled runs of the test's schedule, earliest first."""
    runs = _api(api, "POST", "/flow_runs/filter", json={
        "flow_runs": {"deployment_id": {"any_": [deployment_id]}},
        "sort": "EXPECTED_START_TIME_ASC"})
    return [run for run in runs
            if run["auto_scheduled"] and run["parameters"].get("landing") == str(landing)]


def _server_errors(stack: OpenStack) -> str:
    log = (stack.run_dir / "prefect" / "server.log").read_text(errors="replace")
    lines = [line for line in log.splitlines() if "Error" in line]
    return "\n".join(lines[-6:]) or log[-2000:]


@pytest.mark.timeout(600)
def test_a_due_schedule_creates_a_run_that_the_worker_completes(
        make_up_stack: OpenStack, tmp_path: Path) -> None:
    make_up_stack.check_up()
    api = f"{make_up_stack.ui}/api"
    # GIVEN two simulated days in a landing area and a share of their own
    own = RunDirectory(tmp_path).create()
    simulate_new_days(own, DAYS, customers=300, terminals=600, seed=0)
    deployment = _api(api, "GET", f"/deployments/name/{DAILY_DEPLOYMENT}")
    parameters = {"landing": str(own.landing), "storage": str(own.share),
                  "storage_block": None}

    # WHEN the deployment gets a schedule that comes due every 10 s
    created = _request(api, "POST", f"/deployments/{deployment['id']}/schedules", json=[{
        "schedule": {"interval": INTERVAL.total_seconds()}, "active": True,
        "parameters": parameters}])
    assert created.is_success, (
        f"adding the schedule failed: HTTP {created.status_code} {created.text}; "
        f"server log:\n{_server_errors(make_up_stack)}")
    [schedule] = created.json()
    deleted = False
    worker_log = make_up_stack.run_dir / "prefect" / "worker.log"
    try:
        # THEN the scheduler creates runs for it, and the worker picks one up
        began = time.monotonic()
        while not (picked := [run for run in _runs_of_schedule(api, deployment["id"], own.landing)
                              if run["state"]["type"] != "SCHEDULED"]):
            assert time.monotonic() - began < SCHEDULED_WITHIN, (
                f"no run of the schedule of {DAILY_DEPLOYMENT} was picked up in "
                f"{SCHEDULED_WITHIN:.0f} s; server log:\n{_server_errors(make_up_stack)}\n"
                f"worker log:\n{worker_log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        [first] = picked  # one run at a time: the stack's worker has a limit of 1
        # the schedule and its runs still to come go at once: the stack is shared (the
        # worker takes no other while this one runs)
        _api(api, "DELETE", f"/deployments/{deployment['id']}/schedules/{schedule['id']}")
        deleted = True
        # AND the stack's worker takes the run to a final state, Completed
        while (run := _api(api, "GET", f"/flow_runs/{first['id']}"))["state"]["type"] not in {
                "COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            assert time.monotonic() - began < COMPLETED_WITHIN, (
                f"scheduled run {first['name']} still {run['state']['name']} after "
                f"{COMPLETED_WITHIN:.0f} s; worker log:\n"
                f"{worker_log.read_text(errors='replace')[-3000:]}")
            time.sleep(1.0)
    finally:
        if not deleted:
            _api(api, "DELETE", f"/deployments/{deployment['id']}/schedules/{schedule['id']}")
    assert run["state"]["type"] == "COMPLETED", (
        run["state"], worker_log.read_text(errors="replace")[-3000:])
    assert run["work_pool_name"] == PROCESS_POOL
    # AND it trained both days into the schedule's share and published its artifacts
    chain = verify(Share.at(own.share))
    assert [entry.date for entry in chain] == [dt.date(2018, 4, 1), dt.date(2018, 4, 2)]
    artifacts = _api(api, "POST", "/artifacts/filter",
                     json={"artifacts": {"flow_run_id": {"any_": [first["id"]]}}})
    markdown = [a["data"] for a in artifacts if a["type"] == "markdown"]
    assert any("2018-04-02" in text for text in markdown), [a["key"] for a in artifacts]
    # AND no run of the schedule is left to come due
    assert [r["id"] for r in _runs_of_schedule(api, deployment["id"], own.landing)] == [first["id"]]
