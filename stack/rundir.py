"""A run directory and the lock that lets only one stack use it at a time.

`make up` (a long-lived stack) and `make run` (a throw-away stack when none is up) keep
their Redis append-only file, Prefect database, share and landing area in one run
directory. Two stacks on one directory would run two Prefect servers on one SQLite file
and two redis-servers on one AOF, so whoever starts services there first takes an
exclusive `flock` on `stack.lock` and holds it while they run; the kernel drops it when
that process exits, even on kill -9, so a crashed stack never blocks the next one.
`stack.json` says who holds it and where its services listen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class RunDirectory:
    """The run directory's layout."""

    root: Path

    @property
    def redis(self) -> Path:
        """Redis' append-only file and log."""
        return self.root / "redis"

    @property
    def prefect(self) -> Path:
        """PREFECT_HOME: the SQLite database, server and worker logs."""
        return self.root / "prefect"

    @property
    def share(self) -> Path:
        """The share: datasets, checkpoints, lineage, reports."""
        return self.root / "share"

    @property
    def landing(self) -> Path:
        """Where new days' files land before ingest."""
        return self.root / "landing"

    @property
    def simulation_state(self) -> Path:
        """What was simulated so far: the simulator's parameters and the days written."""
        return self.root / "simulation.json"

    @property
    def lock_file(self) -> Path:
        """The file the running stack holds an exclusive `flock` on."""
        return self.root / "stack.lock"

    @property
    def state_file(self) -> Path:
        """Who holds the lock and where its services listen (`StackState`)."""
        return self.root / "stack.json"

    @property
    def log(self) -> Path:
        """The `make up` stack's own log (its services log under redis/ and prefect/)."""
        return self.root / "stack.log"

    def create(self) -> RunDirectory:
        """Make the directories, and the share (with its marker) when it is not one yet."""
        from trainer.share.layout import create_share

        for directory in (self.root, self.prefect, self.landing):
            directory.mkdir(parents=True, exist_ok=True)
        create_share(self.share, "fraudpipe local stack (make up / make run)")
        return self


@dataclass
class StackState:
    """Who holds a run directory and where its services listen (`stack.json`).

    Attributes:
        kind: `up` for the stack `make up` keeps open, `run` for a `make run` that
            started its own services for one run.
        pid: The process that holds the lock (the `up` supervisor, or the `make run`).
        ready: Whether the services answer and the deployments are registered.
    """

    kind: str
    pid: int
    started: str
    redis_url: str = ""
    api_url: str = ""
    ui_url: str = ""
    ready: bool = False
    demo_seconds: float = 0.0

    def save(self, run_dir: RunDirectory) -> None:
        """Write atomically, so a reader never sees half a file."""
        temporary = run_dir.state_file.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(temporary, run_dir.state_file)

    @classmethod
    def load(cls, run_dir: RunDirectory) -> StackState | None:
        """The state in `run_dir`, or None when there is none (or it is unreadable)."""
        try:
            return cls(**json.loads(run_dir.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None


class StackBusyError(RuntimeError):
    """Another stack holds the run directory; the message says which and what to do."""


class RunDirectoryLock:
    """The exclusive lock on a run directory, held for as long as this object is open."""

    def __init__(self, run_dir: RunDirectory) -> None:
        self.run_dir = run_dir
        self._file: IO[str] | None = None

    def acquire(self, kind: str) -> StackState:
        """Take the lock for a stack of `kind` and write its state; refuse if it is held."""
        self.run_dir.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.run_dir.lock_file, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StackBusyError(busy_message(self.run_dir)) from None
        self._file = handle
        state = StackState(kind=kind, pid=os.getpid(),
                           started=dt.datetime.now().astimezone().isoformat(timespec="seconds"))
        state.save(self.run_dir)
        return state

    def release(self) -> None:
        """Remove the state file and drop the lock (no-op when not held)."""
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            self.run_dir.state_file.unlink()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None


def running_stack(run_dir: RunDirectory) -> StackState | None:
    """The state of the stack that holds `run_dir` now, or None when nobody holds it."""
    if not run_dir.lock_file.exists():
        return None
    with open(run_dir.lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return StackState.load(run_dir) or StackState(kind="?", pid=0, started="?")
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def busy_message(run_dir: RunDirectory) -> str:
    """What to tell someone who tries to start a second stack on `run_dir`."""
    state = StackState.load(run_dir)
    who = (f"`make up` (pid {state.pid}, since {state.started}, UI {state.ui_url or 'starting'})"
           if state and state.kind == "up" else
           f"a `make run` (pid {state.pid}, since {state.started})" if state else
           "another process")
    return (f"{run_dir.root} is in use by {who}: one stack per run directory (one Prefect "
            f"database, one Redis file). Stop it first (`make down RUN_DIR={run_dir.root}` "
            f"for `make up`, Ctrl-C for `make run`), or choose another RUN_DIR.")
