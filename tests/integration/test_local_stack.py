"""`make up`, `make status`, `make run` on the open stack, a second `make up` refused,
`make down`: real redis-server, Prefect server and worker, on non-default ports and a
temporary run directory, through the Makefile as a user types it.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
import redis

from stack.services import free_port
from trainer.share.layout import Share
from trainer.share.lineage import verify

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def make(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # MAKEFLAGS from an outer make would change what these runs print.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL"}}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(600)
def test_up_status_run_on_the_open_stack_then_down(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    redis_port, prefect_port = free_port(), free_port()
    where = [f"RUN_DIR={run_dir}"]
    ports = [f"REDIS_PORT={redis_port}", f"PREFECT_PORT={prefect_port}"]
    try:
        # WHEN `make up` runs with non-default ports
        up = make("up", *where, *ports)
        # THEN it returns with the stack ready, on those ports, and says where the UI is
        assert up.returncode == 0, up.stdout + up.stderr
        ui = f"http://127.0.0.1:{prefect_port}"
        assert f"Prefect UI:  {ui}" in up.stdout
        assert httpx.get(f"{ui}/api/health", timeout=10).json() is True
        assert redis.Redis(port=redis_port).ping()
        # AND the blocks point at this Redis and run directory; only */local is deployed;
        # daily-pipeline/local reads the run directory's landing area
        blocks = {b["name"]: b["data"] for b in httpx.post(
            f"{ui}/api/block_documents/filter", json={"include_secrets": False},
            timeout=10).json()}
        assert blocks["fraudpipe-queue"]["port"] == redis_port, blocks["fraudpipe-queue"]
        assert blocks["fraudpipe-share"]["local_path"] == str(run_dir / "share")
        deployments = httpx.post(f"{ui}/api/deployments/filter", json={}, timeout=10).json()
        assert {d["name"] for d in deployments} == {"local"}
        daily = httpx.get(f"{ui}/api/deployments/name/daily-pipeline/local", timeout=10).json()
        assert daily["parameters"]["landing"] == str(run_dir / "landing")

        # WHEN `make status` asks
        status = make("status", *where)
        # THEN every service answers, the worker is online, the next run is scheduled
        assert status.returncode == 0, status.stdout + status.stderr
        assert "redis        answers" in status.stdout
        assert "Prefect API  answers" in status.stdout
        assert "worker       online" in status.stdout
        assert "next runs    daily-pipeline/local: 20" in status.stdout

        # WHEN a second `make up` targets the same run directory (other ports)
        again = make("up", *where, f"REDIS_PORT={free_port()}", f"PREFECT_PORT={free_port()}")
        # THEN it is refused, naming the stack that holds it
        assert again.returncode != 0
        assert "is in use by `make up`" in again.stderr and ui in again.stderr

        # WHEN `make run` runs on that run directory (a labelled day, so it trains)
        run = make("run", *where, "DAYS=1", "LABELS_AFTER=0")
        # THEN it used the open stack (no server of its own) and its run completed there
        assert run.returncode == 0, run.stdout + run.stderr
        assert "use the running stack" in run.stdout
        assert "start Prefect server" not in run.stdout
        assert f"this run:     {ui}/runs/flow-run/" in run.stdout
        assert [e.date.isoformat() for e in verify(Share.at(run_dir / "share"))] == ["2018-04-01"]
        assert httpx.get(f"{ui}/api/health", timeout=10).json() is True  # still up
    finally:
        # WHEN `make down`
        down = make("down", *where)
    # THEN it stopped everything: no listener on either port, and status says so
    assert down.returncode == 0, down.stdout + down.stderr
    assert not listening(prefect_port) and not listening(redis_port)
    assert "no stack running" in make("status", *where).stdout
