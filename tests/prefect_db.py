"""One migrated Prefect database for the session; each test's Prefect server starts on a copy.

A Prefect server that finds no database creates one and applies every migration at
start-up: about 9 s of CPU, half of its start on this machine, and the suite starts four
(the harness, the deployed pipeline, the `make up` stack, the scheduler test). The first
server that needs one runs `prefect server database upgrade` into the run's temporary
directory, which every xdist worker sees (a lock file makes the others wait for it), and
each server's home gets a copy as `prefect.db`, the file stack.services.PrefectServer
points Prefect at. Such a server starts with `SEEDED_SERVER_SETTINGS`: its migration
check at start would find nothing left to apply (~2 s of CPU a server).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from stack.services import prefect_env

DATABASE = "prefect.db"
#: For a server whose database is a copy of the migrated one (prefect/server/api/server.py,
#: `run_migrations`, reads this setting): a user's first `make up` migrates at start.
SEEDED_SERVER_SETTINGS = {"PREFECT_API_DATABASE_MIGRATE_ON_START": "false"}


def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's migrated SQLite database, created by the first caller of any worker."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    template = shared / "prefect-migrated.db"
    with open(shared / "prefect-migrated.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            home = shared / "prefect-migrating"
            home.mkdir(exist_ok=True)
            env = prefect_env("http://127.0.0.1:9/api", home)  # no server is asked
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{home / DATABASE}"
            done = subprocess.run(
                [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                env=env, cwd=home, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stdout + done.stderr
            # everything in the one file (Prefect's SQLite runs in WAL mode), then copyable
            with closing(sqlite3.connect(home / DATABASE)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            (home / DATABASE).rename(template)  # whole or absent: another worker may read it
    return template


def seed_prefect_home(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Put a copy of the migrated database where a server with this home keeps its own."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_database(tmp_path_factory), home / DATABASE)
    return home
