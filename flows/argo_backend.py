"""The `argo` backend of the train flow: submit the training workflow to Argo and watch it.

`run_training_workflow` submits the rendered training Workflow through the Argo Server
API (Hera's `WorkflowsService`), links the Argo UI as a Prefect artifact, polls the
node statuses and relays every change of phase or message to the Prefect run logger,
and maps the final phase to the caller's outcome: Succeeded returns, Failed or Error
raises `ArgoWorkflowFailed` with the failing node's message (so the Prefect task or flow
fails). A timeout, a cancellation (KeyboardInterrupt, CancelledError, Prefect's
termination signal) or any other interruption stops the Argo workflow before re-raising,
so no pods keep training behind a run Prefect already considers over.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import SecretStr

from workflows import train_workflow
from workflows.settings import WorkflowSettings

log = logging.getLogger("fraudpipe.argo")

#: Final phases of an Argo workflow.
SUCCEEDED = "Succeeded"
FAILED_PHASES = ("Failed", "Error")


class ArgoRunError(RuntimeError):
    """The Argo workflow could not be submitted, or did not succeed."""


class ArgoWorkflowFailed(ArgoRunError):
    """The workflow ended Failed or Error; the message names the failing node."""


class ArgoTimeout(ArgoRunError):
    """The workflow was still running at the deadline; it has been stopped."""


class ArgoServerLike(Protocol):
    """What the bridge needs from a server: the `ArgoServer` block or `ArgoConnection`."""

    url: str
    namespace: str
    token: SecretStr | str | None
    verify_tls: bool


@dataclass(frozen=True)
class ArgoConnection:
    """A plain stand-in for the `ArgoServer` block (tests, scripts)."""

    url: str
    """Argo Server base URL, e.g. https://argo.example.com:2746."""
    namespace: str = "fraudpipe"
    """Namespace the workflow runs in (the templates and RBAC use `fraudpipe`)."""
    token: SecretStr | str | None = None
    """Bearer token (with or without the `Bearer ` prefix)."""
    verify_tls: bool = True
    """Verify the server's certificate."""
    ui_url: str | None = None
    """Base URL of the Argo UI when it differs from `url`."""


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
    """Display name -> final phase of every node seen."""


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a flow or task run, a standard logger elsewhere."""
    try:
        from prefect import get_run_logger
        from prefect.exceptions import MissingContextError
    except ImportError:  # pragma: no cover - prefect is a dependency
        return log
    try:
        return get_run_logger()
    except MissingContextError:
        return log


def _token(server: ArgoServerLike) -> str | None:
    token = getattr(server, "token", None)
    if isinstance(token, SecretStr):
        token = token.get_secret_value()
    return token or None


def workflows_service(server: ArgoServerLike) -> Any:
    """Hera's `WorkflowsService` for a server block or connection (duck-typed)."""
    from hera.workflows import WorkflowsService

    return WorkflowsService(host=server.url, token=_token(server),
                            verify_ssl=getattr(server, "verify_tls", True),
                            namespace=server.namespace)


def ui_url(server: ArgoServerLike, name: str) -> str:
    """`<ui>/workflows/<namespace>/<name>`."""
    base = (getattr(server, "ui_url", None) or server.url).rstrip("/")
    return f"{base}/workflows/{server.namespace}/{urllib.parse.quote(name)}"


def training_workflow(datasets: list[str] | str, *, days_per_step: int | None = None,
                      image: str | None = None, redis_host: str | None = None,
                      redis_port: int | None = None, redis_db: int | None = None,
                      namespace: str | None = None,
                      settings: WorkflowSettings | None = None) -> dict[str, Any]:
    """The rendered training Workflow with this run's parameters filled in."""
    settings = settings or WorkflowSettings()
    document = train_workflow.build(settings).to_dict()
    values = {
        "datasets": datasets if isinstance(datasets, str) else _json_list(datasets),
        "days-per-step": None if days_per_step is None else str(days_per_step),
        "image": image,
        "redis-host": redis_host,
        "redis-port": None if redis_port is None else str(redis_port),
        "redis-db": None if redis_db is None else str(redis_db),
    }
    for parameter in document["spec"]["arguments"]["parameters"]:
        if values.get(parameter["name"]) is not None:
            parameter["value"] = values[parameter["name"]]
    if namespace:
        document["metadata"]["namespace"] = namespace
    return document


def _json_list(items: list[str]) -> str:
    import json

    return json.dumps([str(item) for item in items])


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


def failing_node_message(status: Any) -> str:
    """The most specific failure: a failed pod's message, else the workflow's message."""
    nodes = list((getattr(status, "nodes", None) or {}).values())
    failed = [n for n in nodes if n.phase in FAILED_PHASES and n.message]
    pods = [n for n in failed if n.type == "Pod"] or failed
    if pods:
        node = sorted(pods, key=lambda n: str(n.finished_at or ""))[0]
        return f"node {node.display_name or node.name} ({node.template_name}): {node.message}"
    return getattr(status, "message", None) or "no message"


def _create_link_artifact(url: str, name: str, logger: Any) -> None:
    """Link the Argo UI from the Prefect run (only inside a run: artifacts need one)."""
    try:
        from prefect.artifacts import create_link_artifact
        from prefect.context import get_run_context
        from prefect.exceptions import MissingContextError
    except ImportError:  # pragma: no cover
        return
    try:
        get_run_context()
    except MissingContextError:
        return
    create_link_artifact(link=url, link_text=f"Argo workflow {name}", key="argo-workflow",
                         description="The training workflow in the Argo UI")
    logger.info("Argo UI: %s", url)


def stop(service: Any, name: str, namespace: str, why: str, logger: Any) -> None:
    """Stop the workflow (exit handlers still run); never masks the original error."""
    from hera.workflows import models as m

    try:
        service.stop_workflow(name, m.WorkflowStopRequest(name=name, namespace=namespace,
                                                          message=why), namespace=namespace)
        logger.warning("stopped Argo workflow %s: %s", name, why)
    except Exception as exc:  # noqa: BLE001 - we are already failing; report and go on
        logger.error("could not stop Argo workflow %s (%s): stop it by hand", name, exc)


def run_training_workflow(server: ArgoServerLike, workflow: dict[str, Any], *,
                          timeout_seconds: float = 6 * 3600, poll_seconds: float = 10.0,
                          sleep: Callable[[float], None] = time.sleep,
                          clock: Callable[[], float] = time.monotonic) -> ArgoRunResult:
    """Submit `workflow`, relay its progress and map its final phase.

    Args:
        server: the `ArgoServer` block or an `ArgoConnection`.
        workflow: a Workflow manifest (see `training_workflow`).
        timeout_seconds: stop the workflow and raise `ArgoTimeout` after this long.
        poll_seconds: delay between status polls.
        sleep: how to wait between polls (tests pass their own).
        clock: monotonic clock (tests pass their own).

    Returns:
        The result when the workflow Succeeded.

    Raises:
        ArgoWorkflowFailed: the workflow ended Failed or Error (message of the failing node).
        ArgoTimeout: still running at the deadline (the workflow was stopped).
        ArgoRunError: the server refused the submission or could not be reached.
    """
    from hera.workflows import models as m

    logger = run_logger()
    service = workflows_service(server)
    namespace = server.namespace
    try:
        created = service.create_workflow(
            m.WorkflowCreateRequest(workflow=m.Workflow.model_validate(workflow),
                                    namespace=namespace),
            namespace=namespace)
    except Exception as exc:
        raise ArgoRunError(f"Argo server {server.url} refused the workflow: {exc}") from exc
    name = created.metadata.name
    url = ui_url(server, name)
    logger.info("submitted Argo workflow %s in %s", name, namespace)
    _create_link_artifact(url, name, logger)

    deadline = clock() + timeout_seconds
    seen: dict[str, tuple[str, str]] = {}
    try:
        while True:
            try:
                current = service.get_workflow(name, namespace=namespace)
            except Exception as exc:
                raise ArgoRunError(f"cannot read Argo workflow {name}: {exc}") from exc
            status = current.status
            for node, phase, message in _node_changes(status, seen):
                logger.info("argo %s: %s%s", node, phase, f" - {message}" if message else "")
            phase = getattr(status, "phase", None) or "Pending"
            if phase == SUCCEEDED:
                logger.info("Argo workflow %s succeeded", name)
                return ArgoRunResult(name, phase, url, {n: s[0] for n, s in seen.items()})
            if phase in FAILED_PHASES:
                raise ArgoWorkflowFailed(
                    f"Argo workflow {name} {phase}: {failing_node_message(status)} ({url})")
            if clock() >= deadline:
                stop(service, name, namespace, f"timed out after {timeout_seconds:g}s", logger)
                raise ArgoTimeout(f"Argo workflow {name} still {phase} after "
                                  f"{timeout_seconds:g}s; stopped it ({url})")
            sleep(poll_seconds)
    except ArgoRunError:
        raise
    except BaseException as interruption:  # cancellation, Ctrl-C, Prefect termination
        stop(service, name, namespace,
             f"Prefect run cancelled ({type(interruption).__name__})", logger)
        raise
