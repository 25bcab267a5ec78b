"""Private services for one machine: a redis-server and a Prefect server in a run directory.

The local stack (`make up`, `make run`: stack/launcher.py, stack/embedded.py) and the tests
start the same three processes: a redis-server (append-only file on, so a restart keeps
the queue), a Prefect server on SQLite, and a Prefect process worker. Each listens on
127.0.0.1 on the port it is given or a free one (never Redis' 6379 or Prefect's 4200 by
chance), keeps its data and log under the run directory, is waited for until it answers,
and is stopped with its whole process group, so nothing is left running.
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
        self._spawned_pid = self.process.pid

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

    def _signal(self, signum: int) -> None:
        """Send `signum` to the process group this class started (or the bare process)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self._leads_group:
                os.killpg(self.process.pid, signum)
            elif self.process.poll() is None:
                self.process.send_signal(signum)

    @property
    def _leads_group(self) -> bool:
        # _spawn starts a new session; a subclass may Popen its own process without one.
        return self.process is not None and self._spawned_pid == self.process.pid

    _spawned_pid: int | None = None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in `timeout`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(5)
        # Grandchildren that outlived the leader (a flow run mid-step) go too.
        self._signal(signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the process group at once (what a crash or an OOM kill looks like)."""
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGKILL)
            self.process.wait(10)


def redis_server_binary() -> str:
    """The redis-server on PATH (or Debian's path, which may not exist yet)."""
    return shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisService(_Process):
    """A private redis-server, its files in `directory`.

    Args:
        directory: Where the append-only file, the config and the log live.
        port: Fixed port, or None for a free one.
        aof: Keep an append-only file, so that a restart keeps the queue.
        appendfsync: Redis' `appendfsync` policy. `everysec` loses at most a second of
            queue writes on a crash; the lineage on the share, not Redis, records what was
            trained. `always` loses no acknowledged write (crash tests).
        binary: The redis-server executable; default the one on PATH.
    """

    name = "redis-server"

    def __init__(self, directory: Path, port: int | None = None, *, aof: bool = True,
                 appendfsync: str = "everysec", binary: str | None = None) -> None:
        self.directory = Path(directory)
        super().__init__(self.directory / "redis.log")
        self.port = port or free_port()
        self.aof = aof
        self.appendfsync = appendfsync
        self.binary = binary or redis_server_binary()

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:<port>/0`."""
        return self.url_for_db(0)

    def url_for_db(self, db: int) -> str:
        """`redis://127.0.0.1:<port>/<db>`."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = STARTUP_TIMEOUT) -> RedisService:
        """Start the server and wait until it answers PING."""
        import redis  # a dependency of the trainer, imported here to keep startup cheap

        if not Path(self.binary).exists():
            raise ServiceError(
                "redis-server is not installed: run `make setup` (it installs Debian's "
                "redis-server package) or `apt-get install redis-server`"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--daemonize", "no", "--save", "",
                "--protected-mode", "yes", "--logfile", str(self.log_path)]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        self._spawn(args)
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

    def restart(self) -> RedisService:
        """Kill -9 and start again on the same port and directory (the AOF replays)."""
        self.kill()
        return self.start()

    def __enter__(self) -> RedisService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
        scheduler: Run the scheduler service (what turns a deployment's schedule into
            flow runs). Only a server that lives for one command turns it off.
        settings: Extra PREFECT_* settings of the server process, for example
            `PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS` (names in
            prefect/settings/models/server/services.py).
    """

    name = "prefect server"

    def __init__(self, home: Path, port: int | None = None, scheduler: bool = True,
                 settings: dict[str, str] | None = None) -> None:
        self.home = Path(home)
        super().__init__(self.home / "server.log")
        self.port = port or free_port()
        self.scheduler = scheduler
        self.settings = dict(settings or {})

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
        # `prefect deployment run --watch` shows a run's log lines only when the server
        # streams them out (off by default): without them it shows event names and
        # "finished in state 'Failed'", never the cause.
        env["PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED"] = "true"
        env["PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED"] = "true"
        env.update(self.settings)
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
        limit: At most this many flow runs at once (None: no limit).

    The worker asks the pool for runs every `QUERY_SECONDS` (unless the environment sets
    PREFECT_WORKER_QUERY_SECONDS): Prefect's 10 s default, made for remote pools, would
    make every `prefect deployment run` on this machine wait up to 10 s before it starts.
    """

    name = "prefect worker"
    #: How often the worker polls its pool, in seconds (a cheap local API call).
    QUERY_SECONDS = 2

    def __init__(self, pool: str, env: dict[str, str], log_path: Path,
                 cwd: Path | None = None, limit: int | None = None) -> None:
        super().__init__(log_path)
        self.pool = pool
        self.env = {"PREFECT_WORKER_QUERY_SECONDS": str(self.QUERY_SECONDS), **env}
        self.cwd = cwd
        self.limit = limit

    def start(self, timeout: float = STARTUP_TIMEOUT) -> ProcessWorker:
        """Start the worker and wait until it logs that it polls the pool."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", self.pool,
                "--type", "process"]
        if self.limit is not None:
            args += ["--limit", str(self.limit)]
        self._spawn(args, env=self.env, cwd=self.cwd)
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
