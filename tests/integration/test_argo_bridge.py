"""Contract tests of the Prefect-to-Argo bridge against a swagger-checking Argo stub.

The stub (tests/argo_server_stub.py) refuses any request that does not fit
`argo-server-v4.1-swagger.json` and, like a controller with `templateReferencing: Strict`,
any inline Workflow. The bridge talks to it through an unsaved `ArgoServer` block, the
client production uses. Covered: submit from the WorkflowTemplate, success, the final
cause of a failure, 503s while polling (still watched, not stopped), giving up (stopped),
a timeout and a cancellation (stopped).
"""

from __future__ import annotations

import logging
import os

import pytest
import requests
from argo_server_stub import STRICT_REFUSAL, ArgoStub

from blocks import ArgoServer
from flows.argo_backend import (
    DEADLINE_GRACE_SECONDS,
    ArgoRunError,
    ArgoTimeout,
    ArgoWorkflowFailed,
    is_transient,
    run_training_workflow,
    training_submission,
)
from workflows.image import step_image
from workflows.settings import WorkflowSettings

pytestmark = pytest.mark.integration

DAYS = ["2018-04-01", "2018-04-02"]
IMAGE = "europe-west1-docker.pkg.dev/test-project/fraudpipe/fraudpipe-step:0.1.0"


class FakeClock:
    """Monotonic time that advances only when the bridge sleeps (no real waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def block(stub: ArgoStub) -> ArgoServer:
    """An unsaved block, exactly what `ArgoServer.load` returns in production."""
    return ArgoServer(url=stub.url, namespace="fraudpipe", token="test-token",
                      verify_tls=False, ui_url="https://argo.example")


def run(stub: ArgoStub, clock: FakeClock, **kwargs):
    return run_training_workflow(block(stub), training_submission(DAYS, image=IMAGE,
                                                                   days_per_step=1),
                                 poll_seconds=kwargs.pop("poll_seconds", 5),
                                 sleep=kwargs.pop("sleep", clock.sleep),
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


def test_submits_from_the_workflow_template_and_relays_node_phases(bridge_log):
    with ArgoStub("success") as stub:
        # WHEN the bridge submits and waits
        result = run(stub, FakeClock())
    # THEN it used /submit with the template's name and this run's parameters
    assert stub.errors == []
    assert [r[:2] for r in stub.requests][0] == ("POST", "/api/v1/workflows/fraudpipe/submit")
    assert [r[0] for r in stub.requests] == ["POST", "GET", "GET", "GET"]
    assert result.phase == "Succeeded"
    assert result.url == f"https://argo.example/workflows/fraudpipe/{result.name}"
    manifest = stub.workflows[result.name]["manifest"]
    assert manifest["spec"]["workflowTemplateRef"] == {"name": WorkflowSettings().template_name}
    assert "templates" not in manifest["spec"]
    parameters = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    assert parameters == {"datasets": '["2018-04-01", "2018-04-02"]', "days-per-step": "1",
                          "image": IMAGE}
    # node phases were relayed, each change once
    text = "\n".join(bridge_log.lines)
    assert "argo plan: Succeeded" in text
    assert text.count("argo train(0:2018-04-01): Running") == 1
    assert "argo report: Succeeded" in text


def test_stub_refuses_inline_workflows_like_a_strict_controller():
    with ArgoStub("success") as stub:
        refused = requests.post(f"{stub.url}/api/v1/workflows/fraudpipe",
                                json={"workflow": {"metadata": {"generateName": "x-"},
                                                   "spec": {"entrypoint": "main"}}},
                                headers={"Authorization": "Bearer t"}, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["message"] == STRICT_REFUSAL


def test_failure_reports_the_final_cause_not_the_first_preemption():
    with ArgoStub("failed") as stub, pytest.raises(ArgoWorkflowFailed) as failure:
        run(stub, FakeClock())
    assert stub.errors == []
    message = str(failure.value)
    assert "exit code 3" in message and "column TX_AMOUNT missing" in message
    assert "imminent node shutdown" not in message
    assert stub.stopped == []  # a finished workflow is not stopped


def test_transient_503s_while_polling_are_retried_and_the_workflow_keeps_running(bridge_log):
    clock = FakeClock()
    with ArgoStub("success", steps_to_finish=3, get_faults={1: 503, 2: 503, 3: 503}) as stub:
        result = run(stub, clock)
    # THEN three 503 polls, then the workflow was followed to success, never stopped
    assert result.phase == "Succeeded"
    assert [code for method, _, code in stub.requests if method == "GET"] == [503] * 3 + [200] * 3
    assert stub.stopped == [] and stub.errors == []
    assert clock.sleeps[:3] == [10, 20, 40]  # the delay grows while the server fails
    assert sum("still watching" in line for line in bridge_log.lines) == 3


def test_giving_up_at_the_deadline_while_the_server_fails_stops_the_workflow():
    clock = FakeClock()
    down = dict.fromkeys(range(1, 10_000), 503)
    with ArgoStub("hang", get_faults=down) as stub, \
            pytest.raises(ArgoTimeout, match="not finished after 600s"):
        run(stub, clock, timeout_seconds=600)
    assert clock.now == 600  # never sleeps past the deadline
    assert len(stub.stopped) == 1
    assert "fraudpipe stopped watching" in stub.stopped[0]["message"]
    name = stub.stopped[0]["name"]
    assert stub.requests[-1][:2] == ("PUT", f"/api/v1/workflows/fraudpipe/{name}/stop")


def test_an_error_that_is_not_transient_stops_the_workflow():
    # a 403 (the token was revoked) will not heal by waiting: give up at once, stop it
    with ArgoStub("hang", get_faults={2: 403}) as stub, \
            pytest.raises(ArgoRunError, match="cannot read Argo workflow .*403"):
        run(stub, FakeClock(), timeout_seconds=600)
    assert [code for method, _, code in stub.requests if method == "GET"] == [200, 403]
    assert len(stub.stopped) == 1


def test_default_timeout_follows_the_workflows_own_deadline():
    with ArgoStub("hang") as stub, pytest.raises(ArgoTimeout) as timeout:
        run(stub, FakeClock(), poll_seconds=24 * 3600)
    budget = WorkflowSettings().workflow_deadline_seconds + DEADLINE_GRACE_SECONDS
    assert f"not finished after {budget}s" in str(timeout.value)
    assert len(stub.stopped) == 1


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


def test_which_server_errors_are_transient():
    from hera.exceptions import HeraException, NotFound, Unauthorized

    assert is_transient(requests.ConnectionError("refused"))
    assert is_transient(requests.ReadTimeout("read timed out"))
    assert is_transient(HeraException("Server returned status code 503 with message: `x`"))
    assert is_transient(HeraException("Server returned status code 504 with message: `x`"))
    assert not is_transient(NotFound("Server returned status code 404 with message: `x`"))
    assert not is_transient(Unauthorized("Server returned status code 401 with message: `x`"))
    assert not is_transient(ValueError("bad JSON"))


def test_stub_refuses_requests_outside_the_contract():
    with ArgoStub("success") as stub:
        no_token = requests.post(f"{stub.url}/api/v1/workflows/fraudpipe/submit",
                                 json={"resourceKind": "WorkflowTemplate"}, timeout=5)
        unknown_key = requests.post(
            f"{stub.url}/api/v1/workflows/fraudpipe/submit",
            json={"resourceKind": "WorkflowTemplate", "resourceName": "x",
                  "submitOptions": {"parameter": ["a=b"]}},
            headers={"Authorization": "Bearer t"}, timeout=5)
        wrong_type = requests.put(f"{stub.url}/api/v1/workflows/fraudpipe/x/stop",
                                  json={"message": 5}, headers={"Authorization": "Bearer t"},
                                  timeout=5)
        no_route = requests.get(f"{stub.url}/api/v1/nothing", timeout=5,
                                headers={"Authorization": "Bearer t"})
    assert [r.status_code for r in (no_token, unknown_key, wrong_type, no_route)] == [400] * 4
    assert "Bearer" in no_token.json()["message"]
    assert "unknown key 'parameter'" in unknown_key.json()["message"]
    assert "5 is not of type 'string'" in wrong_type.json()["message"]


@pytest.mark.on_cluster
@pytest.mark.skipif(not os.environ.get("FRAUDPIPE_ARGO_URL"), reason="FRAUDPIPE_ARGO_URL not set")
def test_submit_to_a_real_argo_server():
    """Submits a one-day run to a live Argo (FRAUDPIPE_ARGO_URL, _NAMESPACE, _TOKEN, _DATE)."""
    server = ArgoServer(
        url=os.environ["FRAUDPIPE_ARGO_URL"],
        namespace=os.environ.get("FRAUDPIPE_ARGO_NAMESPACE", "fraudpipe"),
        token=os.environ.get("FRAUDPIPE_ARGO_TOKEN"),
        verify_tls=os.environ.get("FRAUDPIPE_ARGO_VERIFY_TLS", "1") != "0",
    )
    submission = training_submission([os.environ.get("FRAUDPIPE_ARGO_DATE", "2018-04-01")],
                                     image=step_image())
    result = run_training_workflow(server, submission, timeout_seconds=3600, poll_seconds=15)
    assert result.phase == "Succeeded"
