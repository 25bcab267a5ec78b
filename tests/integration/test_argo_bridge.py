"""Contract tests of the Prefect-to-Argo bridge against a swagger-checking Argo stub.

The stub (tests/argo_server_stub.py) refuses any request that does not fit
`argo-server-v4.1-swagger.json`, so these tests prove the bridge's requests conform, and
cover the four outcomes: success, a failed node, a timeout and a cancellation.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from argo_server_stub import ArgoStub  # noqa: E402

from flows.argo_backend import (  # noqa: E402
    ArgoConnection,
    ArgoTimeout,
    ArgoWorkflowFailed,
    run_training_workflow,
    training_workflow,
)
from workflows.validate import shared_dir  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shared_dir() / "reference" / "argo").is_dir(),
                       reason="../shared/reference/argo is not beside the repository"),
]

DAYS = ["2018-04-01", "2018-04-02"]


class FakeClock:
    """Monotonic time that advances only when the bridge sleeps (no real waiting)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def connection(stub: ArgoStub) -> ArgoConnection:
    return ArgoConnection(url=stub.url, namespace="fraudpipe", token="test-token",
                          verify_tls=False, ui_url="https://argo.example")


def run(stub: ArgoStub, clock: FakeClock, **kwargs):
    return run_training_workflow(connection(stub), training_workflow(DAYS, days_per_step=1),
                                 poll_seconds=5, sleep=kwargs.pop("sleep", clock.sleep),
                                 clock=clock, **kwargs)


class Captured(logging.Handler):
    """Records of the bridge's logger (Prefect's logging setup bypasses caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def bridge_log():
    logger = logging.getLogger("fraudpipe.argo")
    handler, level = Captured(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_success_relays_node_phases_and_returns(bridge_log):
    with ArgoStub("success") as stub:
        # WHEN the bridge submits and waits
        result = run(stub, FakeClock())
    # THEN every request fitted the swagger contract
    assert stub.errors == []
    assert [r[0] for r in stub.requests] == ["POST", "GET", "GET", "GET"]
    assert result.phase == "Succeeded"
    assert result.url == f"https://argo.example/workflows/fraudpipe/{result.name}"
    assert result.name.startswith("fraudpipe-train-")
    # the submitted spec carried this run's parameters
    manifest = stub.workflows[result.name]["manifest"]
    parameters = {p["name"]: p.get("value") for p in manifest["spec"]["arguments"]["parameters"]}
    assert parameters["datasets"] == '["2018-04-01", "2018-04-02"]'
    # node phases were relayed, each change once
    text = "\n".join(bridge_log.lines)
    assert "argo plan: Succeeded" in text
    assert text.count("argo train(0:2018-04-01): Running") == 1
    assert "argo train(0:2018-04-01): Succeeded" in text
    assert "argo report: Succeeded" in text


def test_failed_node_raises_with_its_message():
    with ArgoStub("failed") as stub, pytest.raises(ArgoWorkflowFailed) as failure:
        run(stub, FakeClock())
    assert stub.errors == []
    message = str(failure.value)
    assert "Failed" in message
    assert "train(1:2018-04-02)" in message and "exit code 3" in message
    assert "column TX_AMOUNT missing" in message
    assert stub.stopped == []  # a finished workflow is not stopped


def test_timeout_stops_the_workflow():
    with ArgoStub("hang") as stub, pytest.raises(ArgoTimeout, match="still Running after 30s"):
        run(stub, FakeClock(), timeout_seconds=30)
    assert stub.errors == []
    assert len(stub.stopped) == 1
    assert "timed out after 30s" in stub.stopped[0]["message"]
    assert stub.requests[-1][0] == "PUT" and stub.requests[-1][1].endswith("/stop")
    assert stub.requests[-1][2] == 200


def test_cancellation_stops_the_workflow_and_reraises():
    clock = FakeClock()

    def cancelled_on_second_wait(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= 10:
            raise KeyboardInterrupt  # what Ctrl-C or a cancelled run delivers mid-wait

    with ArgoStub("hang") as stub, pytest.raises(KeyboardInterrupt):
        run(stub, clock, sleep=cancelled_on_second_wait)
    assert stub.errors == []
    assert len(stub.stopped) == 1
    assert "cancelled (KeyboardInterrupt)" in stub.stopped[0]["message"]
    name = next(iter(stub.workflows))
    assert stub.workflows[name]["stopped"] is True


def test_stub_refuses_requests_outside_the_contract():
    import requests

    with ArgoStub("success") as stub:
        no_token = requests.post(f"{stub.url}/api/v1/workflows/fraudpipe",
                                 json={"workflow": {"metadata": {}, "spec": {}}}, timeout=5)
        unknown_key = requests.post(
            f"{stub.url}/api/v1/workflows/fraudpipe",
            json={"workflow": {"metadata": {"name": "x"}, "spec": {"entrypointz": "main"}}},
            headers={"Authorization": "Bearer t"}, timeout=5)
        wrong_type = requests.put(f"{stub.url}/api/v1/workflows/fraudpipe/x/stop",
                                  json={"message": 5}, headers={"Authorization": "Bearer t"},
                                  timeout=5)
        no_route = requests.get(f"{stub.url}/api/v1/nothing", timeout=5,
                                headers={"Authorization": "Bearer t"})
    assert [r.status_code for r in (no_token, unknown_key, wrong_type, no_route)] == [400] * 4
    assert "Bearer" in no_token.json()["message"]
    assert "unknown key 'entrypointz'" in unknown_key.json()["message"]
    assert "5 is not of type 'string'" in wrong_type.json()["message"]


@pytest.mark.on_cluster
@pytest.mark.skipif(not os.environ.get("FRAUDPIPE_ARGO_URL"), reason="FRAUDPIPE_ARGO_URL not set")
def test_submit_to_a_real_argo_server():
    """Submits a one-day run to a live Argo (FRAUDPIPE_ARGO_URL, _NAMESPACE, _TOKEN, _DATE)."""
    server = ArgoConnection(
        url=os.environ["FRAUDPIPE_ARGO_URL"],
        namespace=os.environ.get("FRAUDPIPE_ARGO_NAMESPACE", "fraudpipe"),
        token=os.environ.get("FRAUDPIPE_ARGO_TOKEN"),
        verify_tls=os.environ.get("FRAUDPIPE_ARGO_VERIFY_TLS", "1") != "0",
    )
    workflow = training_workflow([os.environ.get("FRAUDPIPE_ARGO_DATE", "2018-04-01")],
                                 image=os.environ.get("FRAUDPIPE_IMAGE"),
                                 namespace=server.namespace)
    result = run_training_workflow(server, workflow, timeout_seconds=3600, poll_seconds=15)
    assert result.phase == "Succeeded"
