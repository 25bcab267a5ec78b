"""The stack's process workers poll their pool every 2 s unless the environment says otherwise."""

from pathlib import Path

from stack.services import ProcessWorker


def test_a_stack_worker_polls_every_two_seconds(tmp_path: Path) -> None:
    worker = ProcessWorker("pool", {"PREFECT_API_URL": "http://x/api"}, tmp_path / "w.log")
    assert worker.env["PREFECT_WORKER_QUERY_SECONDS"] == "2"
    assert worker.env["PREFECT_API_URL"] == "http://x/api"


def test_the_environments_poll_interval_wins(tmp_path: Path) -> None:
    worker = ProcessWorker("pool", {"PREFECT_WORKER_QUERY_SECONDS": "15"}, tmp_path / "w.log")
    assert worker.env["PREFECT_WORKER_QUERY_SECONDS"] == "15"
