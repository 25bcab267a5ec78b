"""On a fresh install, one pytest-xdist worker compiles the imports; the others then reuse it.

A fresh virtualenv has no .pyc files (the install compiles none: Makefile), so workers
that collect at the same moment each compile the same ~3,200 modules: ~25 s of CPU
apiece on this 2-core machine, against ~11 s when the bytecode is there (three
`pytest --collect-only` at once under an empty PYTHONPYCACHEPREFIX: 81 s of CPU in
all; one first and two after it: 51 s). So on a cold install the workers other than gw0
wait for gw0's collection to finish before they collect; on a warm one nobody waits.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import pytest

#: A large package every worker imports while collecting; its bytecode says cold or warm.
PROBE = "sklearn"
FIRST_WORKER = "gw0"
#: gw0 collects in ~30 s on a busy fresh install; past this the others go ahead anyway.
WAIT_SECONDS = 300


def bytecode_missing() -> bool:
    """True when the probe package has no .pyc yet (and this interpreter would write one)."""
    spec = importlib.util.find_spec(PROBE)
    if sys.dont_write_bytecode or spec is None or spec.origin is None:
        return False
    return not Path(importlib.util.cache_from_source(spec.origin)).is_file()


def _marker(config: pytest.Config) -> Path:
    return Path(tempfile.gettempdir()) / f"fraudpipe-collected-{config.workerinput['testrunuid']}"


def wait_for_first_worker(config: pytest.Config) -> None:
    """On a worker other than gw0 of a cold install: wait until gw0 has collected."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or workerinput["workerid"] == FIRST_WORKER or not bytecode_missing():
        return
    deadline = time.monotonic() + WAIT_SECONDS
    while not _marker(config).exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def first_worker_collected(config: pytest.Config) -> None:
    """On gw0: tell the waiting workers that the bytecode is written."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput["workerid"] == FIRST_WORKER:
        _marker(config).touch()


def forget_marker(config: pytest.Config) -> None:
    """On gw0, at the end of its session: remove the marker."""
    if getattr(config, "workerinput", {}).get("workerid") == FIRST_WORKER:
        _marker(config).unlink(missing_ok=True)
