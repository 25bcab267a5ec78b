"""One `make up` stack, opened as a user opens it, for the tests that need the open stack.

`make up` costs a Prefect server, a worker, the blocks and `prefect deploy` (tens of
seconds), so the tests that need it share one per test process (`make_up_stack` in
tests/integration/conftest.py), in this order, one xdist unit (their modules'
``xdist_group("make_up_stack")``, tests/xdist_groups.py):

1. tests/integration/test_local_stack.py: `make up`'s output, `make status`, a second
   `make up` refused, `make run` on the open stack (it trains the run directory's first
   simulated day, so it comes before any later day);
2. tests/integration/test_readme_on_stack.py: the README's on-stack blocks (later days);
3. tests/integration/test_schedule_on_the_open_stack.py: a schedule that comes due is run
   by the stack's worker (on a share of its own);
4. tests/integration/test_stack_down.py: `make down` stops it all.

Each module also runs alone: the first test that asks opens the stack.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The scheduler's loop every 2 s instead of Prefect's 60 (prefect/settings/models/server/
#: services.py), so that a schedule added by a test comes due in seconds.
STACK_SETTINGS = {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2"}


def make(*args: str, timeout: float = 600,
         settings: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`make ARGS...` in the repository, as typed in a terminal; its output captured.

    `settings`: environment variables added for this command (Prefect's, for example).
    """
    # MAKEFLAGS from an outer make would change what these runs print.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL"}}
    env.update(settings or {})
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class OpenStack:
    """The stack `make up` opened: its run directory, ports and what `make up` printed."""

    run_dir: Path
    redis_port: int
    prefect_port: int
    up: subprocess.CompletedProcess[str]

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}"

    @property
    def where(self) -> list[str]:
        """The `make` arguments that name this stack's run directory."""
        return [f"RUN_DIR={self.run_dir}"]

    @property
    def ports(self) -> list[str]:
        return [f"REDIS_PORT={self.redis_port}", f"PREFECT_PORT={self.prefect_port}"]

    def check_up(self) -> None:
        """Fail with `make up`'s own output when it did not open the stack."""
        assert self.up.returncode == 0, self.up.stdout + self.up.stderr


def open_stack(root: Path, tmp_path_factory: pytest.TempPathFactory) -> OpenStack:
    """`make up` on free ports with its run directory under `root`.

    Its Prefect server starts on a copy of the session's migrated database
    (tests/prefect_db.py), where `make up` keeps its own (RUN_DIR/prefect/prefect.db).
    """
    from stack.services import free_port
    from tests.prefect_db import SEEDED_SERVER_SETTINGS, seed_prefect_home

    run_dir = root / "run"
    seed_prefect_home(run_dir / "prefect", tmp_path_factory)
    redis_port, prefect_port = free_port(), free_port()
    up = make("up", f"RUN_DIR={run_dir}", f"REDIS_PORT={redis_port}",
              f"PREFECT_PORT={prefect_port}",
              settings={**STACK_SETTINGS, **SEEDED_SERVER_SETTINGS})
    return OpenStack(run_dir, redis_port, prefect_port, up)
