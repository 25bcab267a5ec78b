"""Private services for one machine: a redis-server and a Prefect server in a run directory.

The embedded default (`python -m flows.embedded`) and the end-to-end tests start the same
three processes: a redis-server (append-only file on, so a restart keeps the queue), a
Prefect server on SQLite, and a Prefect process worker. Each listens on 127.0.0.1 on a
free port (never Redis' 6379 or Prefect's 4200, which may belong to someone else), keeps
its data and log under the run directory, is waited for until it answers, and is stopped
with its whole process group, so nothing is left running after a run or a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: Seconds a service gets to answer after it was started.
STARTUP_TIMEOUT = 90.0
#: Seconds a service gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 15.0


class ServiceError(RuntimeError):
    """A service did not start, or died; the message names it and ends with its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


class _Process:
    """A child process in its own process group, with its output in a log file."""

    name = "service"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str], env: dict[str, str] | None = None,
               cwd: Path | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # A new session makes the child a group leader: stop() can then end the
            # children it forks (uvicorn, flow-run subprocesses) by this one group id.
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=cwd, start_new_session=True,
            )

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServiceError(
                f"{self.name} exited with code {self.process.returncode}; "
                f"log {self.log_path}:\n{_log_tail(self.log_path)}"
            )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in `timeout`."""
        if self.process is None:
            return
        pgid = self.process.pid  # group leader: its pid is the group id
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                self.process.wait(5)
        # Grandchildren that outlived the leader (a flow run mid-step) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


class RedisService(_Process):
    """A private redis-server with AOF on, its files in `directory`.

    Args:
        directory: Where the append-only file, the config and the log live.
        port: Fixed port, or None for a free one.
    """

    name = "redis-server"

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory)
        super().__init__(self.directory / "redis.log")
        self.port = port or free_port()

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:<port>/0`."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = STARTUP_TIMEOUT) -> RedisService:
        """Start the server and wait until it answers PING."""
        import redis  # a dependency of the trainer, imported here to keep startup cheap

        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise ServiceError(
                "redis-server is not installed: run `make setup` (it installs Debian's "
                "redis-server package) or `apt-get install redis-server`"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        # appendfsync everysec: a crash loses at most a second of queue writes, and the
        # lineage on the share, not Redis, is the record of what was trained
        # (docs/facts.md#redis-and-memorystore).
        self._spawn([
            binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--daemonize", "no", "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes",
            "--logfile", str(self.log_path),
        ])
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise ServiceError(f"redis-server on port {self.port} did not answer in {timeout:.0f} s")


def prefect_env(api_url: str, home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for Prefect commands that talk to the server at `api_url`.

    PREFECT_HOME points into the run directory so that profiles, the SQLite database and
    local results never touch `~/.prefect`; the API URL is set explicitly so that no
    profile can send the work to another server.
    """
    env = dict(os.environ if base is None else base)
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_CLI_COLORS": "false",
        "PREFECT_CLI_WRAP_LINES": "false",
    })
    # A key or auth string from the caller's environment belongs to another server.
    for key in ("PREFECT_API_KEY", "PREFECT_PROFILE"):
        env.pop(key, None)
    return env


class PrefectServer(_Process):
    """A local Prefect server (API and UI) on SQLite, its files under `home`.

    Args:
        home: PREFECT_HOME of the server; the database is `home/prefect.db`.
        port: Fixed port, or None for a free one.
        scheduler: Run the scheduler service. Off by default for the embedded run: the
            server only lives for one run, so scheduled runs would pile up as Late and a
            worker of the next run would execute them with the deployment's defaults.
    """

    name = "prefect server"

    def __init__(self, home: Path, port: int | None = None, scheduler: bool = False) -> None:
        self.home = Path(home)
        super().__init__(self.home / "server.log")
        self.port = port or free_port()
        self.scheduler = scheduler

    @property
    def url(self) -> str:
        """The UI's address."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The API's address (what PREFECT_API_URL must be)."""
        return f"{self.url}/api"

    def env(self) -> dict[str, str]:
        """The environment for clients, deploys and workers of this server."""
        return prefect_env(self.api_url, self.home)

    def start(self, timeout: float = STARTUP_TIMEOUT) -> PrefectServer:
        """Start the server and wait until `/api/health` answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = self.env()
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = (
            f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"
        )
        env["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
        env["PREFECT_SERVER_API_PORT"] = str(self.port)
        args = [sys.executable, "-m", "prefect", "server", "start",
                "--host", "127.0.0.1", "--port", str(self.port), "--analytics-off",
                "--scheduler" if self.scheduler else "--no-scheduler"]
        self._spawn(args, env=env, cwd=self.home)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if self.healthy():
                return self
            time.sleep(0.25)
        self.stop()
        raise ServiceError(
            f"the Prefect server on port {self.port} did not become healthy in {timeout:.0f} s; "
            f"log {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def healthy(self) -> bool:
        """Whether `/api/health` answers `true` now."""
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                return response.status == 200 and json.loads(response.read()) is True
        except (urllib.error.URLError, OSError, ValueError):
            return False


class ProcessWorker(_Process):
    """`prefect worker start` on a process work pool; runs flow runs as subprocesses.

    Args:
        pool: The work pool's name.
        env: Environment from `PrefectServer.env()` (or `prefect_env`).
        log_path: Where the worker's and its flow runs' output goes.
        cwd: Working directory of the worker.
    """

    name = "prefect worker"

    def __init__(self, pool: str, env: dict[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        super().__init__(log_path)
        self.pool = pool
        self.env = env
        self.cwd = cwd

    def start(self, timeout: float = STARTUP_TIMEOUT) -> ProcessWorker:
        """Start the worker and wait until it logs that it polls the pool."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._spawn(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", self.pool,
             "--type", "process"],
            env=self.env, cwd=self.cwd,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                if b"started!" in log.read():  # "Worker 'ProcessWorker ...' started!"
                    return self
            time.sleep(0.2)
        self.stop()
        raise ServiceError(
            f"the worker on pool {self.pool!r} did not start in {timeout:.0f} s; "
            f"log {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the worker; SIGINT first, the signal it handles as a graceful shutdown."""
        if self.running and self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        super().stop(timeout=5)
