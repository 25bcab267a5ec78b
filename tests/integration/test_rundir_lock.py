"""One stack per run directory: a second is refused by name, a dead holder blocks nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stack.rundir import RunDirectory, RunDirectoryLock, StackBusyError, running_stack
from stack.services import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from pathlib import Path
from stack.rundir import RunDirectory, RunDirectoryLock
lock = RunDirectoryLock(RunDirectory(Path(sys.argv[1])))
state = lock.acquire(sys.argv[2])
state.ui_url = "http://127.0.0.1:1"
state.save(RunDirectory(Path(sys.argv[1])))
print("held", flush=True)
time.sleep(600)
"""


def _holder(run_dir: Path, kind: str) -> subprocess.Popen[str]:
    """Another process that takes the lock for a stack of `kind` and keeps it."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), kind], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_a_second_stack_on_a_held_run_directory_is_refused_with_who_holds_it(tmp_path):
    # GIVEN a `make up` stack holding the run directory (another process)
    run_dir = RunDirectory(tmp_path)
    holder = _holder(tmp_path, "up")
    try:
        # THEN its state is visible, and taking the lock again is refused with a message
        # naming the holder, its UI and how to stop it
        state = running_stack(run_dir)
        assert state is not None and (state.kind, state.pid) == ("up", holder.pid)
        with pytest.raises(StackBusyError) as refused:
            RunDirectoryLock(run_dir).acquire("run")
        message = str(refused.value)
        assert f"pid {holder.pid}" in message and "http://127.0.0.1:1" in message
        assert f"make down RUN_DIR={tmp_path}" in message
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_the_run_directory_free(tmp_path):
    # GIVEN a `make run` holding the run directory, killed with SIGKILL (no clean-up ran)
    run_dir = RunDirectory(tmp_path)
    holder = _holder(tmp_path, "run")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    # THEN nobody holds it, and the next stack takes it and releases it
    assert running_stack(run_dir) is None
    lock = RunDirectoryLock(run_dir)
    state = lock.acquire("up")
    assert running_stack(run_dir) == state
    lock.release()
    assert not run_dir.state_file.exists()


def test_make_run_is_refused_while_another_make_run_holds_the_run_directory(tmp_path):
    # GIVEN a `make run` in progress on the run directory (its own throw-away services)
    holder = _holder(tmp_path, "run")
    try:
        # WHEN a second one starts there
        second = subprocess.run([sys.executable, "-m", "stack", "run", "--days", "1",
                                 "--run-dir", str(tmp_path)], cwd=REPO, capture_output=True,
                                text=True, timeout=120)
        # THEN it starts nothing and says who holds the directory
        assert second.returncode == 3, second.stdout + second.stderr
        assert f"in use by a `make run` (pid {holder.pid}" in second.stderr
        assert "start redis-server" not in second.stdout
    finally:
        holder.kill()
        holder.wait()


def test_make_up_on_a_port_in_use_names_the_port_and_its_variable(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "stack", "up", "--run-dir", str(tmp_path),
                                 "--redis-port", str(port), "--prefect-port", str(free_port())],
                                cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"port {port} (REDIS_PORT) is already in use" in result.stderr
    assert running_stack(RunDirectory(tmp_path)) is None
