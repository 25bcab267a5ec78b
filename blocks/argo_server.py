"""The Argo Server connection as a Prefect block, used by the train flow's Argo backend.

The Argo backend submits the Hera workflow through the Argo Server's REST API and links
each Prefect run to the workflow's page in the Argo UI. Both need the same four facts:
where the server is, which namespace the workflows run in, the bearer token, and whether
to verify TLS. Hera is imported when the service is built, not when the block registers.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import requests
from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr, field_validator

from blocks.errors import MissingComponentError
from blocks.k8s_names import dns1123_label, dns1123_subdomain

#: The namespace the rendered templates, the RBAC and deployments/k8s/ use, so a block saved
#: with defaults submits where the WorkflowTemplate and its service account live (a test
#: checks it equals `workflows.settings.WorkflowSettings().namespace`; `blocks/` does not
#: import `workflows/`).
DEFAULT_NAMESPACE = "fraudpipe"

#: Seconds one HTTP request to the Argo Server may take before it counts as failed (Hera's
#: service sets no timeout, so a silent ingress would hang the caller forever).
REQUEST_TIMEOUT_SECONDS = 30.0


class _TimeoutSession(requests.Session):
    """A requests session whose calls time out unless the caller says otherwise."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


def _http_url(value: str, field: str) -> str:
    """`value` without a trailing slash if it is an http(s) URL with a host."""
    parts = urllib.parse.urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{field} {value!r} is not an http:// or https:// URL with a host "
            "(e.g. https://argo.example.com:2746)"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{field} {value!r} must not carry a query or fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError as exc:
        raise ValueError(f"{field} {value!r} has an invalid port") from exc
    return value.strip().rstrip("/")


class ArgoServer(Block):
    """Where the Argo Server is and how to authenticate to it.

    Example:
        Load the saved server and list the workflows of its namespace:
        ```python
        from blocks import ArgoServer

        argo_server = ArgoServer.load("BLOCK_NAME")
        service = argo_server.workflows_service()
        workflows = service.list_workflows()
        ```
    """

    _block_type_name = "Fraudpipe Argo Server"
    _description = (
        "Connection to an Argo Workflows server (URL, namespace, bearer token, TLS) that "
        "runs fraudpipe's training workflows on GKE."
    )
    _documentation_url = HttpUrl("https://argo-workflows.readthedocs.io/en/latest/argo-server/")

    url: str = Field(
        default="https://localhost:2746",
        description="Base URL of the Argo Server API (http or https); a path prefix, as "
                    "behind an ingress (https://host/argo), is kept.",
    )
    namespace: str = Field(
        default=DEFAULT_NAMESPACE,
        description=(
            "Namespace the workflows run in: where the fraudpipe WorkflowTemplate and its "
            "service account are (not the namespace Argo itself is installed in)."
        ),
    )
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token for the Argo Server (with or without the 'Bearer ' prefix).",
    )
    verify_tls: bool = Field(
        default=True, description="Verify the server's TLS certificate; turn off only for tests."
    )
    ui_url: str | None = Field(
        default=None, description="Base URL of the Argo UI for links; defaults to url."
    )

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return _http_url(value, "url")

    @field_validator("ui_url")
    @classmethod
    def _ui_url_is_http(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "ui_url")

    @field_validator("namespace")
    @classmethod
    def _namespace_is_a_label(cls, value: str) -> str:
        return dns1123_label(value, "namespace")

    @field_validator("token")
    @classmethod
    def _token_has_no_whitespace_inside(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        words = value.get_secret_value().split()
        bare = words[1:] if words[:1] == ["Bearer"] else words
        if len(bare) != 1:
            raise ValueError("token must be one non-empty word, optionally after 'Bearer '")
        return SecretStr(" ".join(words))

    def workflows_service(self, request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> Any:
        """Hera's `WorkflowsService` for this server and namespace.

        Args:
            request_timeout: seconds each HTTP request may take (connect and read).
        """
        try:
            from hera.workflows import WorkflowsService
        except ImportError as exc:
            raise MissingComponentError(
                "hera is not importable; install it (pip install hera) to talk to Argo"
            ) from exc
        # Hera joins each API path to the host with `urljoin`, which replaces the last
        # segment of a host without a trailing slash: `https://h/argo` + `api/v1/...`
        # would lose `/argo` (a server behind an ingress path). The slash keeps it.
        return WorkflowsService(
            host=f"{self.url}/",
            verify_ssl=self.verify_tls,
            token=self.token.get_secret_value() if self.token is not None else None,
            namespace=self.namespace,
            session=_TimeoutSession(request_timeout),
        )

    def workflow_url(self, name: str) -> str:
        """Link to workflow `name` in the Argo UI (`<ui>/workflows/<namespace>/<name>`)."""
        dns1123_subdomain(name, "workflow name")
        base = self.ui_url or self.url
        return f"{base}/workflows/{self.namespace}/{urllib.parse.quote(name)}"
