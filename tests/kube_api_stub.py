"""A local Kubernetes API server that serves a cluster's objects as the API returns them.

Enough of the API for `fraudpipe doctor --cluster`: GET of single objects by their REST
path (core, apps, storage.k8s.io, argoproj.io and cloud.google.com custom resources), the
node list, and `POST` of SelfSubjectAccessReviews and SubjectAccessReviews answered from a
table of grants. Every request must carry the kubeconfig's bearer token (401 otherwise);
an object that is not held answers 404 with a `Status`, as the API server does, and one
listed in `forbidden` answers 403. The real `kubernetes_asyncio` client talks to it through
a kubeconfig the stub writes.

`healthy_cluster(image)` is the cluster the walk-through leaves behind, built from the
repository's own manifests (namespace, rendered templates with that image, controller
ConfigMap, ComputeClass, claim, the hand-written Deployments) plus what the cluster adds:
status fields, GKE's `standard-rwx` StorageClass, nodes and the controller's Deployments.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
TOKEN = "doctor-test-token"
USER = "alice@example.com"

NAMESPACE = "/api/v1/namespaces/fraudpipe"
CONFIGMAP = "/api/v1/namespaces/argo/configmaps/workflow-controller-configmap"
TEMPLATE = "/apis/argoproj.io/v1alpha1/namespaces/fraudpipe/workflowtemplates/{name}"
CRON = "/apis/argoproj.io/v1alpha1/namespaces/fraudpipe/cronworkflows/{name}"
CLAIM = "/api/v1/namespaces/fraudpipe/persistentvolumeclaims/fileserver-claim"
STORAGE_CLASS = "/apis/storage.k8s.io/v1/storageclasses/standard-rwx"
DEPLOYMENT = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
NODES = "/api/v1/nodes"
COMPUTE_CLASS = "/apis/cloud.google.com/v1/computeclasses/fraudpipe-spot-first"
SELF_REVIEW = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
REVIEW = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """The API server's error body."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def node(name: str, spot: bool, ready: bool = True) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": "europe-west1-b"}
    if spot:
        labels["cloud.google.com/gke-spot"] = "true"
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"providerID": f"gce://p/europe-west1-b/{name}"},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "reason": "KubeletReady"}]}}


def deployment(namespace: str, name: str, available: int, image: str,
               manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    body = copy.deepcopy(manifest) if manifest else {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": name, "image": image}]}}}}
    body.update(apiVersion="apps/v1", kind="Deployment")
    body["status"] = {"replicas": max(available, 1), "availableReplicas": available,
                      "readyReplicas": available}
    return body


def healthy_cluster(image: str) -> dict[str, Any]:
    """REST path -> object of the cluster the walk-through sets up, image `image`."""
    from flows.argo_render import manifests
    from workflows.settings import WorkflowSettings

    settings = WorkflowSettings(image=image)
    rendered = {name: [d for d in yaml.safe_load_all(text) if d]
                for name, text in manifests(settings).items()}
    k8s = {(d["kind"], d["metadata"]["name"]): d
           for path in sorted((REPO / "deployments" / "k8s").glob("*.yaml"))
           for d in yaml.safe_load_all(path.read_text()) if d and "kind" in d}
    namespace = copy.deepcopy(k8s[("Namespace", "fraudpipe")])
    namespace["status"] = {"phase": "Active"}
    (claim,) = rendered["filestore-pv-pvc.yaml"]
    claim["spec"]["volumeName"] = "pvc-3f1c2a9e-5b7d-4c1e-9a8f-2d6b0e4c7a11"
    claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteMany"],
                       "capacity": {"storage": "1Ti"}}
    worker, toolbox = (copy.deepcopy(k8s[("Deployment", n)])
                       for n in ("prefect-worker", "fraudpipe-toolbox"))
    for manifest in (worker, toolbox):
        manifest["spec"]["template"]["spec"]["containers"][0]["image"] = image
    objects = {
        NAMESPACE: namespace,
        CONFIGMAP: rendered["workflow-controller-configmap.yaml"][0],
        TEMPLATE.format(name=settings.template_name):
            rendered["fraudpipe-train-workflowtemplate.yaml"][0],
        CRON.format(name=settings.cron_name): rendered["fraudpipe-daily-cronworkflow.yaml"][0],
        CLAIM: claim,
        # GKE's Filestore CSI class, as `kubectl get storageclass standard-rwx -o json` shows it
        STORAGE_CLASS: {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                        "metadata": {"name": "standard-rwx"},
                        "provisioner": "filestore.csi.storage.gke.io",
                        "parameters": {"tier": "standard", "network": "default"},
                        "reclaimPolicy": "Delete", "allowVolumeExpansion": True,
                        "volumeBindingMode": "WaitForFirstConsumer"},
        DEPLOYMENT.format(namespace="argo", name="argo-server"):
            deployment("argo", "argo-server", 1, "quay.io/argoproj/argocli:v4.1.2"),
        DEPLOYMENT.format(namespace="argo", name="workflow-controller"):
            deployment("argo", "workflow-controller", 1,
                       "quay.io/argoproj/workflow-controller:v4.1.2"),
        DEPLOYMENT.format(namespace="fraudpipe", name="prefect-worker"):
            deployment("fraudpipe", "prefect-worker", 1, image, worker),
        DEPLOYMENT.format(namespace="fraudpipe", name="fraudpipe-toolbox"):
            deployment("fraudpipe", "fraudpipe-toolbox", 1, image, toolbox),
        NODES: {"apiVersion": "v1", "kind": "NodeList", "metadata": {},
                "items": [node("gk3-fraudpipe-pool-2-a1b2", spot=False),
                          node("gk3-fraudpipe-pool-2-c3d4", spot=False),
                          node("gk3-fraudpipe-spot-first-e5f6", spot=True)]},
        COMPUTE_CLASS: rendered["fraudpipe-computeclass.yaml"][0],
    }
    for obj in objects.values():
        obj.setdefault("metadata", {}).setdefault("uid", "00000000-0000-0000-0000-000000000000")
    return objects


def healthy_grants() -> dict[str, set[tuple[str, str, str, str]]]:
    """user -> (verb, group, resource, namespace) the cluster's RBAC allows."""
    submit = {("create", "argoproj.io", "workflows", "fraudpipe"),
              ("get", "argoproj.io", "workflows", "fraudpipe"),
              ("get", "argoproj.io", "workflowtemplates", "fraudpipe")}
    return {
        USER: set(submit),
        "system:serviceaccount:fraudpipe:fraudpipe-submitter": set(submit),
        "system:serviceaccount:fraudpipe:fraudpipe-workflow": {
            ("create", "argoproj.io", "workflowtaskresults", "fraudpipe"),
            ("patch", "argoproj.io", "workflowtaskresults", "fraudpipe")},
    }


@dataclass
class KubeStub:
    """The served cluster; change `objects`, `grants` or `forbidden` to break it."""

    objects: dict[str, Any]
    grants: dict[str, set[tuple[str, str, str, str]]] = field(default_factory=healthy_grants)
    forbidden: set[str] = field(default_factory=set)
    may_review_others: bool = True
    """Whether the kubeconfig's user may create SubjectAccessReviews."""
    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> KubeStub:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig whose current context is this server, user `USER` by token."""
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "stub",
                  "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
                  "users": [{"name": USER, "user": {"token": TOKEN}}],
                  "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": USER}}]}
        path.write_text(yaml.safe_dump(config))
        return path

    def review(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        attributes = body["spec"]["resourceAttributes"]
        key = (attributes["verb"], attributes.get("group", ""), attributes["resource"],
               attributes.get("namespace", ""))
        allowed = key in self.grants.get(user, set())
        return {**body, "status": {"allowed": allowed, "reason": "RBAC: allowed by Role"
                                   if allowed else ""}}

    def answer(self, method: str, path: str, token: str, body: Any) -> tuple[int, Any]:
        if token != TOKEN:
            return 401, status(401, "Unauthorized", "Unauthorized")
        if path in self.forbidden:
            return 403, status(403, "Forbidden", f"{USER} cannot get {path}")
        if method == "POST" and path == SELF_REVIEW:
            return 201, self.review(USER, body)
        if method == "POST" and path == REVIEW:
            if not self.may_review_others:
                return 403, status(403, "Forbidden", "cannot create subjectaccessreviews")
            return 201, self.review(body["spec"]["user"], body)
        if method == "GET" and path in self.objects:
            return 200, self.objects[path]
        return 404, status(404, "NotFound", f"{path.rsplit('/', 1)[-1]} not found")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _serve(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                code, payload = stub.answer(self.command, path, token, body)
                stub.requests.append((self.command, path, code))
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        return Handler
