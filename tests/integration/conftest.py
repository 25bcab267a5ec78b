"""Integration fixtures: one real Prefect server (SQLite) for the whole test session.

`prefect_harness` wraps Prefect's `prefect_test_harness()` (docs: how-to-guides/workflows/
test-workflows): a temporary database and a local API server that every flow run of the
session reports to, so tests can read flow runs, task runs and artifacts back through
the client API. Session scope because starting the server costs seconds; under xdist it
stops after the last test of its unit (an idle server still costs CPU). The harness
puts its database in a directory it makes with `tempfile.mkdtemp`; it is handed one that
already holds a copy of the session's migrated database (tests/prefect_db.py), under the
name the harness gives it, and its server skips the migration check at start.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from unittest import mock

import pytest
from prefect_server import stop_after_last_user  # the module object the tests import

from tests.make_up_stack import OpenStack, make, open_stack
from tests.prefect_db import migrated_database
from tests.xdist_groups import HARNESS_UNIT, last_of_unit

#: The file name prefect_test_harness() gives its database (prefect/testing/utilities.py).
HARNESS_DATABASE = "prefect-test.db"
#: The running harness, closed after the last test of its unit (or at the session's end).
_HARNESS: dict[str, contextlib.ExitStack] = {}


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Prefect API for the session; yields its URL (PREFECT_API_URL)."""
    import prefect.testing.utilities as harness
    from prefect.settings import (
        PREFECT_API_DATABASE_MIGRATE_ON_START,
        PREFECT_API_URL,
        temporary_settings,
    )

    database = tmp_path_factory.mktemp("prefect-harness")
    shutil.copyfile(migrated_database(tmp_path_factory), database / HARNESS_DATABASE)
    with contextlib.ExitStack() as running:
        running.enter_context(mock.patch.object(harness, "mkdtemp", return_value=str(database)))
        # The harness' server inherits this process's settings (SubprocessASGIServer)
        running.enter_context(temporary_settings(
            updates={PREFECT_API_DATABASE_MIGRATE_ON_START: False}))
        # generous: a start-up on a busy machine is not a failure of what the tests check
        running.enter_context(harness.prefect_test_harness(server_startup_timeout=240))
        _HARNESS["running"] = running
        yield PREFECT_API_URL.value()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # An idle server costs CPU: each shared one stops after the last test of its unit.
    stop_after_last_user(item, nextitem)
    if "running" in _HARNESS and last_of_unit(item, nextitem, HARNESS_UNIT):
        _HARNESS.pop("running").close()


@pytest.fixture(scope="session")
def make_up_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenStack]:
    """The open stack of tests/make_up_stack.py, for the session; `make down` at its end."""
    stack = open_stack(tmp_path_factory.mktemp("make-up"), tmp_path_factory)
    try:
        yield stack
    finally:
        make("down", *stack.where)  # test_stack_down.py checks it; again here after a failure
