"""Read what the doctor judges from a cluster, through the Kubernetes API.

One pass of GETs (and access reviews) with the user's kubeconfig; every object is kept as
the API's JSON (camelCase keys), `None` when the API answers 404, and any other refusal is
kept in `Snapshot.errors` so the check that needed it can say which permission is missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from trainer.errors import FraudpipeError

#: API group, version and plural of the objects read as custom resources.
WORKFLOW_TEMPLATES = ("argoproj.io", "v1alpha1", "workflowtemplates")
CRON_WORKFLOWS = ("argoproj.io", "v1alpha1", "cronworkflows")
COMPUTE_CLASSES = ("cloud.google.com", "v1", "computeclasses")


class ClusterUnreachable(FraudpipeError):
    """The kubeconfig could not be loaded or the API server did not answer."""

    exit_code = 2


@dataclass(frozen=True)
class Access:
    """One access review: may `subject` do `verb` on `resource` in `namespace`?"""

    subject: str
    """`you` (the kubeconfig's user) or `system:serviceaccount:NS:NAME`."""
    verb: str
    group: str
    resource: str
    namespace: str
    allowed: bool | None = None
    """The API server's answer; None when the review itself was refused."""
    reason: str = ""


@dataclass
class Snapshot:
    """The objects the checks need, as the API server returned them."""

    namespace: dict[str, Any] | None = None
    controller_configmap: dict[str, Any] | None = None
    workflow_template: dict[str, Any] | None = None
    cron_workflow: dict[str, Any] | None = None
    claim: dict[str, Any] | None = None
    storage_class: dict[str, Any] | None = None
    deployments: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """`namespace/name` -> Deployment."""
    nodes: list[dict[str, Any]] = field(default_factory=list)
    compute_class: dict[str, Any] | None = None
    access: list[Access] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """What could not be read (not a 404), by the snapshot field's name."""


@dataclass(frozen=True)
class Target:
    """Which objects to read: the names the walk-through and the settings use."""

    namespace: str
    argo_namespace: str
    configmap: str
    template: str
    cron: str
    claim: str
    storage_class: str
    compute_class: str
    deployments: tuple[str, ...]
    """`namespace/name` of the Deployments whose state or image matters."""
    reviews: tuple[Access, ...]


async def _get(snapshot: Snapshot, key: str, call: Callable[[], Awaitable[Any]],
               serialize: Callable[[Any], Any]) -> Any:
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        return serialize(await call())
    except ApiException as exc:
        if exc.status == 404:
            return None
        snapshot.errors[key] = f"HTTP {exc.status} {exc.reason}"
        return None


async def read_cluster(target: Target, kubeconfig: str | None = None,
                       context: str | None = None) -> Snapshot:
    """Read every object `target` names; raises `ClusterUnreachable` if none can be read."""
    try:
        from kubernetes_asyncio import client, config
    except ImportError as exc:
        raise ClusterUnreachable(
            "the Kubernetes client is not installed: install fraudpipe's `kubernetes` extra "
            "(make setup does; pip install 'fraudpipe[kubernetes]')") from exc

    configuration = client.Configuration()
    try:
        await config.load_kube_config(config_file=kubeconfig, context=context,
                                      client_configuration=configuration)
    except Exception as exc:  # the loader raises several unrelated types
        raise ClusterUnreachable(f"cannot load the kubeconfig ({kubeconfig or '~/.kube/config'}"
                                 f"{f', context {context}' if context else ''}): {exc}") from exc
    snapshot = Snapshot()
    async with client.ApiClient(configuration) as api:
        plain = api.sanitize_for_serialization
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        storage, custom = client.StorageV1Api(api), client.CustomObjectsApi(api)
        try:
            snapshot.namespace = await _get(
                snapshot, "namespace", lambda: core.read_namespace(target.namespace), plain)
        except (TimeoutError, OSError) as exc:
            raise ClusterUnreachable(f"the API server {configuration.host} does not answer: "
                                     f"{exc}") from exc
        snapshot.controller_configmap = await _get(
            snapshot, "controller_configmap", lambda: core.read_namespaced_config_map(
                target.configmap, target.argo_namespace), plain)
        snapshot.workflow_template = await _get(
            snapshot, "workflow_template", lambda: custom.get_namespaced_custom_object(
                *WORKFLOW_TEMPLATES[:2], target.namespace, WORKFLOW_TEMPLATES[2],
                target.template), plain)
        snapshot.cron_workflow = await _get(
            snapshot, "cron_workflow", lambda: custom.get_namespaced_custom_object(
                *CRON_WORKFLOWS[:2], target.namespace, CRON_WORKFLOWS[2], target.cron), plain)
        snapshot.claim = await _get(
            snapshot, "claim", lambda: core.read_namespaced_persistent_volume_claim(
                target.claim, target.namespace), plain)
        class_name = ((snapshot.claim or {}).get("spec") or {}).get("storageClassName") \
            or target.storage_class
        snapshot.storage_class = await _get(
            snapshot, "storage_class", lambda: storage.read_storage_class(class_name), plain)
        for key in target.deployments:
            namespace, name = key.split("/", 1)

            def read(name: str = name, namespace: str = namespace) -> Awaitable[Any]:
                return apps.read_namespaced_deployment(name, namespace)

            snapshot.deployments[key] = await _get(snapshot, f"deployment {key}", read, plain)
        nodes = await _get(snapshot, "nodes", core.list_node, plain)
        snapshot.nodes = (nodes or {}).get("items") or []
        snapshot.compute_class = await _get(
            snapshot, "compute_class", lambda: custom.get_cluster_custom_object(
                *COMPUTE_CLASSES, target.compute_class), plain)
        snapshot.access = [await _review(client, api, review) for review in target.reviews]
    return snapshot


async def _review(client: Any, api: Any, review: Access) -> Access:
    """Ask the API server whether the review's subject may do what it needs."""
    from kubernetes_asyncio.client.exceptions import ApiException

    attributes = client.V1ResourceAttributes(namespace=review.namespace, verb=review.verb,
                                             group=review.group, resource=review.resource)
    authorization = client.AuthorizationV1Api(api)
    try:
        if review.subject == "you":
            answer = await authorization.create_self_subject_access_review(
                client.V1SelfSubjectAccessReview(
                    spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)))
        else:
            answer = await authorization.create_subject_access_review(
                client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
                    user=review.subject, resource_attributes=attributes)))
    except ApiException as exc:
        return Access(review.subject, review.verb, review.group, review.resource,
                      review.namespace, None, f"review refused: HTTP {exc.status} {exc.reason}")
    status = answer.status
    return Access(review.subject, review.verb, review.group, review.resource, review.namespace,
                  bool(status.allowed), status.reason or "")
