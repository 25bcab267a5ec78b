"""The `argo` backend of the train flow: start the training WorkflowTemplate and watch it.

`run_training_workflow` submits a Workflow *from the WorkflowTemplate installed in the
cluster* (`POST /api/v1/workflows/{namespace}/submit`, `resourceKind: WorkflowTemplate`,
this run's parameters), so the cluster runs the template it was given, including where
the controller only accepts template references (`templateReferencing: Strict|Secure`).
It links the Argo UI as a Prefect artifact, polls the workflow and relays every change of
a node's phase or message to the Prefect run logger, and maps the final phase: Succeeded
returns, Failed or Error raises `ArgoWorkflowFailed` with the final cause (the last failed
attempt, not the first preemption).

A poll that fails transiently (HTTP 5xx/408/429, a timeout, a refused connection: an Argo
Server restart or an ingress hiccup) is retried with a growing delay until the deadline;
the workflow keeps running meanwhile. Whenever the bridge gives up (deadline, an error it
cannot retry) or is interrupted (cancellation, Ctrl-C, Prefect's termination signal), it
stops the workflow before raising, so no pods keep training, holding the training mutex,
behind a run Prefect already considers over.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trainer.errors import FraudpipeError
from workflows.settings import WorkflowSettings

if TYPE_CHECKING:
    from blocks.argo_server import ArgoServer

log = logging.getLogger("fraudpipe.argo")

#: Final phases of an Argo workflow.
SUCCEEDED = "Succeeded"
FAILED_PHASES = ("Failed", "Error")

#: HTTP statuses worth polling again: server errors, a proxy's timeout, throttling.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: Seconds the bridge waits past the workflow's own `activeDeadlineSeconds` before it gives
#: up: the controller fails the workflow at its deadline, and the bridge should see that.
DEADLINE_GRACE_SECONDS = 15 * 60

#: Longest wait between polls while the server keeps failing.
MAX_POLL_BACKOFF_SECONDS = 120.0


class ArgoRunError(FraudpipeError):
    """The Argo workflow could not be submitted, watched, or did not succeed."""


class ArgoWorkflowFailed(ArgoRunError):
    """The workflow ended Failed or Error; the message gives the final cause."""


class ArgoTimeout(ArgoRunError):
    """The workflow was still running at the bridge's deadline; it has been stopped."""


@dataclass(frozen=True)
class TrainingSubmission:
    """What to start: the WorkflowTemplate, this run's parameters, the workflow's deadline."""

    template: str
    """Name of the WorkflowTemplate in the cluster (`fraudpipe-train-<version>`)."""
    parameters: dict[str, str]
    """Workflow parameters to set; the others keep the template's defaults."""
    deadline_seconds: int
    """The template's `activeDeadlineSeconds`: how long the workflow may run at most."""

    def request(self, namespace: str) -> Any:
        """The Argo Server's `WorkflowSubmitRequest` for this submission."""
        from hera.workflows import models as m

        return m.WorkflowSubmitRequest(
            namespace=namespace,
            resource_kind="WorkflowTemplate",
            resource_name=self.template,
            submit_options=m.SubmitOpts(
                parameters=[f"{name}={value}" for name, value in self.parameters.items()]),
        )


@dataclass
class ArgoRunResult:
    """What happened in Argo."""

    name: str
    """Name of the submitted workflow."""
    phase: str
    """Final phase."""
    url: str
    """Link to the workflow in the Argo UI."""
    nodes: dict[str, str] = field(default_factory=dict)
    """Node id -> final phase of every node seen."""


def training_submission(datasets: list[str] | str, *, image: str,
                        days_per_step: int | None = None, redis_host: str | None = None,
                        redis_port: int | None = None, redis_db: int | None = None,
                        settings: WorkflowSettings | None = None) -> TrainingSubmission:
    """This run's submission of the training WorkflowTemplate (unset values keep defaults).

    The image is always passed (`workflows/image.py` checks it): the template's own
    default may be none, or another render's, and the steps must run the code of the
    image that submits them.
    """
    from workflows.image import check_image

    settings = settings or WorkflowSettings()
    image = check_image(image, "image")
    values = {
        "datasets": datasets if isinstance(datasets, str)
        else json.dumps([str(item) for item in datasets]),
        "days-per-step": days_per_step,
        "image": image,
        "redis-host": redis_host,
        "redis-port": redis_port,
        "redis-db": redis_db,
    }
    return TrainingSubmission(
        template=settings.template_name,
        parameters={name: str(value) for name, value in values.items() if value is not None},
        deadline_seconds=settings.workflow_deadline_seconds,
    )


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a flow or task run, a standard logger elsewhere."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return log


def is_transient(error: BaseException) -> bool:
    """Whether a failed call to the Argo Server is worth repeating."""
    import requests

    if isinstance(error, (requests.ConnectionError, requests.Timeout)):
        return True
    # Hera raises one exception class per known status and a bare HeraException for the
    # others (503 among them); both carry "status code N" in their message.
    found = re.search(r"status code (\d{3})", str(error))
    return found is not None and int(found.group(1)) in TRANSIENT_STATUSES


def _node_changes(status: Any, seen: dict[str, tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(display name, phase, message) of every node whose phase or message changed."""
    changes = []
    for node_id, node in sorted((getattr(status, "nodes", None) or {}).items(),
                                key=lambda item: str(item[1].started_at or "")):
        state = (node.phase or "Pending", node.message or "")
        if seen.get(node_id) != state:
            seen[node_id] = state
            changes.append((node.display_name or node.name, state[0], state[1]))
    return changes


def final_failure(status: Any) -> str:
    """The final cause: the failed pod that finished last, else the workflow's message.

    With retries, the earliest failed pod is usually a preemption that was retried; what
    ended the workflow is the last attempt.
    """
    nodes = list((getattr(status, "nodes", None) or {}).values())
    failed = [n for n in nodes if n.phase in FAILED_PHASES and n.message]
    pods = [n for n in failed if n.type == "Pod"] or failed
    if pods:
        node = max(pods, key=lambda n: str(n.finished_at or ""))
        return f"node {node.display_name or node.name} ({node.template_name}): {node.message}"
    return getattr(status, "message", None) or "no message"


def _create_link_artifact(url: str, name: str, logger: Any) -> None:
    """Link the Argo UI from the Prefect run (only inside a run: artifacts need one)."""
    from prefect.artifacts import create_link_artifact
    from prefect.context import get_run_context
    from prefect.exceptions import MissingContextError

    try:
        get_run_context()
    except MissingContextError:
        return
    create_link_artifact(link=url, link_text=f"Argo workflow {name}", key="argo-workflow",
                         description="The training workflow in the Argo UI")
    logger.info("Argo UI: %s", url)


def stop(service: Any, name: str, namespace: str, why: str, logger: Any,
         attempts: int = 3) -> bool:
    """Stop the workflow (exit handlers still run); never masks the original error.

    Transient failures are tried again at once, `attempts` times in all: the caller is
    already leaving (possibly cancelled), so it does not wait.
    """
    from hera.workflows import models as m

    for attempt in range(1, attempts + 1):
        try:
            service.stop_workflow(name, m.WorkflowStopRequest(name=name, namespace=namespace,
                                                              message=why), namespace=namespace)
        except Exception as exc:  # noqa: BLE001 - we are already failing; report and go on
            if attempt < attempts and is_transient(exc):
                continue
            logger.error("could not stop Argo workflow %s (%s): stop it by hand", name, exc)
            return False
        logger.warning("stopped Argo workflow %s: %s", name, why)
        return True
    return False  # pragma: no cover - the loop always returns


def run_training_workflow(server: ArgoServer, submission: TrainingSubmission, *,
                          timeout_seconds: float | None = None, poll_seconds: float = 10.0,
                          sleep: Callable[[float], None] = time.sleep,
                          clock: Callable[[], float] = time.monotonic) -> ArgoRunResult:
    """Submit from the WorkflowTemplate, relay its progress and map its final phase.

    Args:
        server: the `ArgoServer` block (saved or not).
        submission: what to submit (see `training_submission`).
        timeout_seconds: give up (and stop the workflow) after this long; by default the
            workflow's own deadline plus `DEADLINE_GRACE_SECONDS`, so the controller's
            deadline, not the bridge, ends a long backfill or a long wait on the mutex.
        poll_seconds: delay between status polls (it grows while polls fail).
        sleep: how to wait between polls (tests pass their own).
        clock: monotonic clock (tests pass their own).

    Returns:
        The result when the workflow Succeeded.

    Raises:
        ArgoWorkflowFailed: the workflow ended Failed or Error (final cause in the message).
        ArgoTimeout: still running at the deadline (the workflow was stopped).
        ArgoRunError: the submission was refused, or the workflow could not be watched
            (it was stopped).
    """
    logger = run_logger()
    service = server.workflows_service()
    namespace = server.namespace
    try:
        created = service.submit_workflow(submission.request(namespace), namespace=namespace)
    except Exception as exc:
        # Not retried: a submission that timed out may have been accepted, and a second
        # one would train the same days twice (the mutex would only serialise them).
        raise ArgoRunError(f"Argo server {server.url} refused to submit workflowtemplate/"
                           f"{submission.template}: {exc}") from exc
    name = created.metadata.name
    url = server.workflow_url(name)
    logger.info("submitted Argo workflow %s from workflowtemplate/%s in %s", name,
                submission.template, namespace)
    _create_link_artifact(url, name, logger)

    budget = (submission.deadline_seconds + DEADLINE_GRACE_SECONDS
              if timeout_seconds is None else timeout_seconds)
    deadline = clock() + budget
    seen: dict[str, tuple[str, str]] = {}
    failed_polls = 0
    try:
        while True:
            try:
                current = service.get_workflow(name, namespace=namespace)
            except Exception as exc:
                if not is_transient(exc):
                    raise _give_up(service, name, namespace, logger, ArgoRunError(
                        f"cannot read Argo workflow {name}: {exc}; stopped it ({url})")) from exc
                failed_polls += 1
                delay = min(poll_seconds * 2 ** failed_polls, MAX_POLL_BACKOFF_SECONDS)
                logger.warning("polling Argo workflow %s failed (%s); still watching, next "
                               "try in %gs", name, exc, delay)
            else:
                failed_polls, delay = 0, poll_seconds
                status = current.status
                for node, phase, message in _node_changes(status, seen):
                    logger.info("argo %s: %s%s", node, phase, f" - {message}" if message else "")
                phase = getattr(status, "phase", None) or "Pending"
                if phase == SUCCEEDED:
                    logger.info("Argo workflow %s succeeded", name)
                    return ArgoRunResult(name, phase, url, {n: s[0] for n, s in seen.items()})
                if phase in FAILED_PHASES:
                    raise ArgoWorkflowFailed(
                        f"Argo workflow {name} {phase}: {final_failure(status)} ({url})")
            remaining = deadline - clock()
            if remaining <= 0:
                raise _give_up(service, name, namespace, logger, ArgoTimeout(
                    f"Argo workflow {name} not finished after {budget:g}s; stopped it ({url})"))
            sleep(min(delay, remaining))
    except ArgoRunError:
        raise
    except BaseException as interruption:  # cancellation, Ctrl-C, Prefect termination
        stop(service, name, namespace,
             f"Prefect run cancelled ({type(interruption).__name__})", logger)
        raise


def _give_up(service: Any, name: str, namespace: str, logger: Any,
             error: ArgoRunError) -> ArgoRunError:
    """Stop the workflow because the bridge stops watching it; returns `error` to raise."""
    stop(service, name, namespace, f"fraudpipe stopped watching: {error}", logger)
    return error
