"""`make up`, `make status`, a second `make up` refused, `make run` on the open stack: real
redis-server, Prefect server and worker, on non-default ports and a temporary run
directory, through the Makefile as a user types it. The stack is the session's
(tests/make_up_stack.py); tests/integration/test_stack_down.py checks `make down`.
"""

from __future__ import annotations

import httpx
import pytest
import redis

from stack.services import free_port
from tests.make_up_stack import OpenStack, make
from trainer.share.layout import Share
from trainer.share.lineage import verify

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("make_up_stack")]


@pytest.mark.timeout(600)
def test_up_status_and_run_on_the_open_stack(make_up_stack: OpenStack) -> None:
    stack, ui = make_up_stack, make_up_stack.ui
    # WHEN `make up` ran with non-default ports (the session's stack)
    # THEN it returned with the stack ready, on those ports, and said where the UI is
    stack.check_up()
    assert f"Prefect UI:  {ui}" in stack.up.stdout
    assert httpx.get(f"{ui}/api/health", timeout=10).json() is True
    assert redis.Redis(port=stack.redis_port).ping()
    # AND the blocks point at this Redis and run directory; only */local is deployed;
    # daily-pipeline/local reads the run directory's landing area
    blocks = {b["name"]: b["data"] for b in httpx.post(
        f"{ui}/api/block_documents/filter", json={"include_secrets": False},
        timeout=10).json()}
    assert blocks["fraudpipe-queue"]["port"] == stack.redis_port, blocks["fraudpipe-queue"]
    assert blocks["fraudpipe-share"]["local_path"] == str(stack.run_dir / "share")
    deployments = httpx.post(f"{ui}/api/deployments/filter", json={}, timeout=10).json()
    assert {d["name"] for d in deployments} == {"local"}
    daily = httpx.get(f"{ui}/api/deployments/name/daily-pipeline/local", timeout=10).json()
    assert daily["parameters"]["landing"] == str(stack.run_dir / "landing")

    # WHEN `make status` asks
    status = make("status", *stack.where)
    # THEN every service answers, the worker is online, the next run is scheduled
    assert status.returncode == 0, status.stdout + status.stderr
    assert "redis        answers" in status.stdout
    assert "Prefect API  answers" in status.stdout
    assert "worker       online" in status.stdout
    assert "next runs    daily-pipeline/local: 20" in status.stdout

    # WHEN a second `make up` targets the same run directory (other ports)
    again = make("up", *stack.where, f"REDIS_PORT={free_port()}", f"PREFECT_PORT={free_port()}")
    # THEN it is refused, naming the stack that holds it
    assert again.returncode != 0
    assert "is in use by `make up`" in again.stderr and ui in again.stderr

    # WHEN `make run` runs on that run directory (a labelled day, so it trains)
    run = make("run", *stack.where, "DAYS=1", "LABELS_AFTER=0")
    # THEN it used the open stack (no server of its own) and its run completed there
    assert run.returncode == 0, run.stdout + run.stderr
    assert "use the running stack" in run.stdout
    assert "start Prefect server" not in run.stdout
    assert f"this run:     {ui}/runs/flow-run/" in run.stdout
    assert [e.date.isoformat() for e in verify(Share.at(stack.run_dir / "share"))] == [
        "2018-04-01"]
    assert httpx.get(f"{ui}/api/health", timeout=10).json() is True  # still up
