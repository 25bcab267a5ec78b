"""Integration fixtures: one real Prefect server (SQLite) for the whole test session.

`prefect_harness` wraps Prefect's `prefect_test_harness()` (docs: how-to-guides/workflows/
test-workflows): a temporary database and a local API server that every flow run of the
session reports to, so tests can read flow runs, task runs and artifacts back through
the client API. Session scope because starting the server costs seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.make_up_stack import OpenStack, make, open_stack


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """A running Prefect API for the session; yields its URL (PREFECT_API_URL)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    # generous: a start-up on a busy machine is not a failure of what the tests check
    with prefect_test_harness(server_startup_timeout=240):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def make_up_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenStack]:
    """The open stack of tests/make_up_stack.py, for the session; `make down` at its end."""
    stack = open_stack(tmp_path_factory.mktemp("make-up"))
    try:
        yield stack
    finally:
        make("down", *stack.where)  # test_stack_down.py checks it; again here after a failure
