"""ArgoServer: validation at construction, the Hera service, UI links."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from blocks import ArgoServer
from workflows.render import manifests
from workflows.settings import WorkflowSettings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"url": "argo.example.com"}, "url", "http"),
        ({"url": "ftp://argo.example.com"}, "url", "http"),
        ({"url": "https://argo.example.com:99999"}, "url", "port"),
        ({"url": "https://argo.example.com/?x=1"}, "url", "query"),
        ({"ui_url": "argo-ui"}, "ui_url", "http"),
        ({"namespace": "Argo"}, "namespace", "DNS-1123"),
        ({"namespace": "argo_workflows"}, "namespace", "DNS-1123"),
        ({"token": "two words"}, "token", "one non-empty word"),
        ({"token": "Bearer "}, "token", "one non-empty word"),
        ({"token": "Basic a b"}, "token", "one non-empty word"),
    ],
)
def test_bad_field_fails_at_construction_naming_the_field(fields, field, words):
    with pytest.raises(ValidationError) as caught:
        ArgoServer(**fields)
    assert field in {str(p) for e in caught.value.errors() for p in e["loc"]}
    assert words in str(caught.value)


def test_workflows_service_uses_url_namespace_token_and_tls():
    from hera.workflows import WorkflowsService

    block = ArgoServer(
        url="https://argo.example.com:2746/", namespace="fraud", token="abc", verify_tls=False
    )
    service = block.workflows_service()
    assert isinstance(service, WorkflowsService)
    # the block keeps the URL without its trailing slash; Hera's host gets exactly one
    assert block.url == "https://argo.example.com:2746"
    assert service.host == "https://argo.example.com:2746/"
    assert service.namespace == "fraud"
    assert service.verify_ssl is False
    assert service.token == "Bearer abc"
    assert "abc" not in repr(block)


def test_workflow_url_links_to_the_ui_defaulting_to_the_server():
    block = ArgoServer(url="https://argo.example.com:2746", namespace="fraud")
    assert (
        block.workflow_url("train-x7") == "https://argo.example.com:2746/workflows/fraud/train-x7"
    )
    ui = ArgoServer(url="http://argo-server:2746", ui_url="https://argo.example.com/")
    assert ui.workflow_url("w") == "https://argo.example.com/workflows/fraudpipe/w"
    with pytest.raises(ValueError, match="workflow name"):
        block.workflow_url("../secrets")


def test_default_namespace_is_where_the_templates_and_their_service_account_are():
    # GIVEN a block saved with every default but the URL
    block = ArgoServer(url="https://argo.example.com:2746")
    # THEN it submits into the namespace of the settings, of the committed WorkflowTemplate
    # and of the rendered RBAC (a workflow submitted elsewhere finds neither)
    assert block.namespace == WorkflowSettings().namespace == "fraudpipe"
    template = yaml.safe_load((REPO / "deployments" / "argo"
                               / "fraudpipe-train-workflowtemplate.yaml").read_text())
    assert template["metadata"]["namespace"] == block.namespace
    rbac = [d for d in yaml.safe_load_all(manifests()["fraudpipe-rbac.yaml"]) if d]
    assert {d["metadata"]["namespace"] for d in rbac} == {block.namespace}
    assert block.workflows_service().namespace == block.namespace


def test_every_request_to_the_server_has_a_timeout(monkeypatch):
    # Hera sets none; a silent ingress must not hang the bridge past its deadline
    import requests

    seen = {}

    def record(self, method, url, **kwargs):
        seen.update(kwargs)
        raise requests.ConnectTimeout("simulated")

    monkeypatch.setattr(requests.Session, "request", record)
    service = ArgoServer(url="https://argo.example.com:2746").workflows_service(request_timeout=7)
    with pytest.raises(requests.ConnectTimeout):
        service.get_workflow("w")
    assert seen["timeout"] == 7


@pytest.mark.parametrize("url", ["https://argo.example.com/argo", "https://argo.example.com/argo/",
                                 "https://argo.example.com/a/b/"])
def test_a_path_prefix_is_kept_in_every_request_url(monkeypatch, url):
    # GIVEN an Argo Server behind an ingress path, as a block URL with or without a slash
    import requests

    seen = []

    def record(self, method, url, **kwargs):
        seen.append(url)
        raise requests.ConnectTimeout("simulated")

    monkeypatch.setattr(requests.Session, "request", record)
    block = ArgoServer(url=url, namespace="fraud")
    # WHEN the service reads a workflow and the UI link is built
    with pytest.raises(requests.ConnectTimeout):
        block.workflows_service().get_workflow("w")
    # THEN both keep the path (urljoin without the slash drops its last segment)
    base = url.rstrip("/")
    assert seen == [f"{base}/api/v1/workflows/fraud/w"]
    assert block.workflow_url("w") == f"{base}/workflows/fraud/w"


def test_the_bridge_submits_and_watches_through_a_path_prefix():
    # GIVEN the swagger-checking Argo stub served under /argo only (like an ingress path)
    from argo_server_stub import ArgoStub  # tests/ is on sys.path (tests/conftest.py)

    from flows.argo_backend import run_training_workflow, training_submission

    image = "europe-west1-docker.pkg.dev/p/fraudpipe/fraudpipe-step:0.1.0"
    with ArgoStub("success", steps_to_finish=1, prefix="/argo") as stub:
        assert stub.url.endswith("/argo")
        block = ArgoServer(url=stub.url + "/", token="t")
        # WHEN the bridge submits and polls through the block
        result = run_training_workflow(block, training_submission(["2018-04-01"], image=image),
                                       poll_seconds=0, sleep=lambda _: None)
    # THEN every request reached the stub under the prefix and none was refused
    assert result.phase == "Succeeded"
    assert stub.errors == []
    assert [r[2] for r in stub.requests] == [200, 200]
    assert result.url == f"{stub.url}/workflows/fraudpipe/{result.name}"
