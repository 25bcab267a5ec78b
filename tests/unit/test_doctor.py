"""`fraudpipe doctor --cluster` against a local Kubernetes API stub (tests/kube_api_stub.py).

The command runs as a user runs it, with the real `kubernetes_asyncio` client reading a
kubeconfig the test writes. The healthy cluster passes every check (exit 0); each broken
cluster fails exactly the check that names what broke (exit 1), with what to do.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argo_server_stub import ArgoStub
from kube_api_stub import (
    CLAIM,
    COMPUTE_CLASS,
    CONFIGMAP,
    CRON,
    DEPLOYMENT,
    NODES,
    STORAGE_CLASS,
    TEMPLATE,
    USER,
    KubeStub,
    healthy_cluster,
    node,
)

from trainer.cli import main as fraudpipe
from workflows.image import IMAGE_ENV
from workflows.settings import WorkflowSettings

IMAGE = "europe-west1-docker.pkg.dev/my-project/fraudpipe/fraudpipe-step:0.1.0"
SETTINGS = WorkflowSettings()
CHECKS = ["image", "pod security", "controller executor", "storage class", "claim",
          "workflow template", "argo server", "rbac you", "rbac fraudpipe-submitter",
          "rbac fraudpipe-workflow", "spot", "on-demand"]


def doctor(stub: KubeStub, tmp_path: Path, capsys, *extra: str) -> tuple[int, dict[str, str]]:
    """Run the command; its exit status and its lines by check name."""
    kubeconfig = stub.write_kubeconfig(tmp_path / "kubeconfig")
    code = fraudpipe(["doctor", "--cluster", "--kubeconfig", str(kubeconfig), *extra])
    out = capsys.readouterr().out
    lines = {}
    for line in out.splitlines():
        if line.startswith("["):
            name = line[7:].split(":", 1)[0]
            lines[name] = line
    return code, lines


@pytest.fixture(scope="module")
def healthy() -> dict[str, Any]:
    return healthy_cluster(IMAGE)


@pytest.fixture
def cluster(healthy, monkeypatch):
    monkeypatch.setenv(IMAGE_ENV, IMAGE)
    return copy.deepcopy(healthy)


def test_a_healthy_cluster_passes_every_check(cluster, tmp_path, capsys):
    with KubeStub(cluster) as stub:
        code, lines = doctor(stub, tmp_path, capsys)
    assert code == 0
    assert list(lines) == CHECKS
    assert all(line.startswith("[ ok ]") for line in lines.values()), lines
    # the pods were built as Argo builds them, with the live ConfigMap, and admitted
    assert "enforces restricted; 8 pods of the installed template, containers " \
        "init,wait,main: 0 refused" in lines["pod security"]
    assert "binds WaitForFirstConsumer" in lines["storage class"]
    assert "cronworkflow/fraudpipe-daily-v0-1-0 installed" in lines["workflow template"]
    assert "not pulled" in lines["image"]  # says what a registry check would need
    # the real client read through the kubeconfig's token, and asked for access reviews
    assert ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", 201) in \
        stub.requests
    assert ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", 201) in stub.requests
    assert all(code != 401 for *_, code in stub.requests)


def template_path() -> str:
    return TEMPLATE.format(name=SETTINGS.template_name)


def set_template_image(objects: dict[str, Any], image: str) -> None:
    for parameter in objects[template_path()]["spec"]["arguments"]["parameters"]:
        if parameter["name"] == "image":
            parameter["value"] = image
    for parameter in objects[CRON.format(name=SETTINGS.cron_name)]["spec"]["workflowSpec"][
            "arguments"]["parameters"]:
        if parameter["name"] == "image":
            parameter["value"] = image


def empty_executor(objects: dict[str, Any]) -> None:
    """install.yaml's ConfigMap: no executor settings at all."""
    objects[CONFIGMAP]["data"] = {}


def executor_without_requests(objects: dict[str, Any]) -> None:
    """The restricted securityContext kept, the resources block dropped."""
    data = objects[CONFIGMAP]["data"]
    data["executor"] = "securityContext:" + data["executor"].split("securityContext:", 1)[1]


def claim_pending(objects: dict[str, Any]) -> None:
    objects[CLAIM]["status"] = {"phase": "Pending"}
    del objects[CLAIM]["spec"]["volumeName"]


def no_spot(objects: dict[str, Any]) -> None:
    del objects[COMPUTE_CLASS]
    objects[NODES]["items"] = [n for n in objects[NODES]["items"]
                               if "cloud.google.com/gke-spot" not in n["metadata"]["labels"]]


def only_spot(objects: dict[str, Any]) -> None:
    objects[NODES]["items"] = [node("gk3-spot-1", spot=True),
                               node("gk3-pool-1", spot=False, ready=False)]


def revoke(user: str, resource: str) -> Callable[[KubeStub], None]:
    def apply(stub: KubeStub) -> None:
        stub.grants[user] = {g for g in stub.grants.get(user, set()) if g[2] != resource}
    return apply


CASES: dict[str, tuple[Callable[[dict[str, Any]], None] | None,
                       Callable[[KubeStub], None] | None, set[str], list[str]]] = {
    # name: (break the objects, break the stub, checks that fail, words of the first)
    "library image": (lambda o: set_template_image(o, "fraudpipe-step:latest"), None,
                      {"image"}, ["no registry host", "fraudpipe render"]),
    "two images": (lambda o: o[DEPLOYMENT.format(namespace="fraudpipe", name="prefect-worker")]
                   ["spec"]["template"]["spec"]["containers"][0].update(
                       image=IMAGE.replace("0.1.0", "0.0.9")), None,
                   {"image"}, ["different images", "deployment/prefect-worker="]),
    "empty controller configmap": (empty_executor, None, {"pod security", "controller executor"},
                                   ["allowPrivilegeEscalation != false: container 'init'",
                                    "workflow-controller-configmap.yaml"]),
    "no controller configmap": (lambda o: o.pop(CONFIGMAP), None,
                                {"pod security", "controller executor"},
                                ["enforces restricted", "refusal"]),
    "executor without requests": (executor_without_requests, None, {"controller executor"},
                                  ["resources.requests", "rollout restart"]),
    "no storage class": (lambda o: o.pop(STORAGE_CLASS), None, {"storage class"},
                         ["standard-rwx does not exist"]),
    "claim waits for its consumer": (claim_pending, None, {"claim"},
                                     ["Pending", "first consumer",
                                      "scale deployment/fraudpipe-toolbox --replicas=1"]),
    "no claim": (lambda o: o.pop(CLAIM), None, {"claim"},
                 ["does not exist", "filestore-pv-pvc.yaml"]),
    "template not installed": (lambda o: o.pop(template_path()), None,
                               {"workflow template"},
                               ["is not installed", "fraudpipe-train-workflowtemplate.yaml"]),
    "argo server down": (lambda o: o[DEPLOYMENT.format(namespace="argo", name="argo-server")]
                         ["status"].update(availableReplicas=0), None, {"argo server"},
                         ["argo-server not available", "rollout status"]),
    "you may not submit": (None, revoke(USER, "workflows"), {"rbac you"},
                           ["may not create workflows, get workflows"]),
    "submitter without its role": (
        None, revoke("system:serviceaccount:fraudpipe:fraudpipe-submitter", "workflowtemplates"),
        {"rbac fraudpipe-submitter"}, ["may not get workflowtemplates", "deployments/k8s"]),
    "workflow account without its role": (
        None, revoke("system:serviceaccount:fraudpipe:fraudpipe-workflow",
                     "workflowtaskresults"),
        {"rbac fraudpipe-workflow"}, ["may not create workflowtaskresults",
                                      "fraudpipe-rbac.yaml"]),
    "no spot and no compute class": (no_spot, None, {"spot"},
                                     ["no ComputeClass fraudpipe-spot-first", "0 Spot",
                                      "fraudpipe-computeclass.yaml"]),
    "no on-demand node": (only_spot, None, {"on-demand"}, ["0 on-demand node(s) ready of 2"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_cluster_fails_the_check_that_names_it(case, cluster, tmp_path, capsys):
    # GIVEN the healthy cluster with one thing broken
    break_objects, break_stub, failing, words = CASES[case]
    objects = copy.deepcopy(cluster)
    if break_objects:
        break_objects(objects)
    with KubeStub(objects) as stub:
        if break_stub:
            break_stub(stub)
        # WHEN the doctor runs
        code, lines = doctor(stub, tmp_path, capsys)
    # THEN it exits 1, every check still has its line, and only the named ones fail
    assert code == 1
    assert list(lines) == CHECKS
    assert {name for name, line in lines.items() if line.startswith("[FAIL]")} == failing
    line = lines[sorted(failing, key=CHECKS.index)[0]]
    for word in words:
        assert word in line, (word, line)
    assert " -> " in line  # what to do


def test_unread_objects_say_which_permission_is_missing(cluster, tmp_path, capsys):
    with KubeStub(copy.deepcopy(cluster), forbidden={CLAIM}, may_review_others=False) as stub:
        code, lines = doctor(stub, tmp_path, capsys)
    assert code == 1
    assert "cannot read it (HTTP 403 Forbidden)" in lines["claim"]
    assert "review refused: HTTP 403" in lines["rbac fraudpipe-submitter"]
    assert lines["rbac you"].startswith("[ ok ]")


def test_an_unreachable_cluster_is_one_clear_error(tmp_path, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    with KubeStub({}) as stub:
        stub.write_kubeconfig(kubeconfig)
    # the stub is gone: nothing listens on its port any more
    code = fraudpipe(["doctor", "--cluster", "--kubeconfig", str(kubeconfig)])
    err = capsys.readouterr().err
    assert code == 2
    assert "does not answer" in err and "127.0.0.1" in err
    assert fraudpipe(["doctor", "--cluster", "--kubeconfig", str(tmp_path / "none")]) == 2
    assert "cannot load the kubeconfig" in capsys.readouterr().err


def test_the_argo_server_url_is_asked_under_its_path(cluster, tmp_path, capsys):
    # GIVEN an Argo Server behind an ingress path
    with KubeStub(cluster) as stub, ArgoStub(prefix="/argo") as argo:
        code, lines = doctor(stub, tmp_path, capsys, "--argo-url", argo.url,
                             "--argo-token", "t")
        assert ("GET", "/api/v1/version", 200) in argo.requests
        # and a URL that answers nothing
        broken, broken_lines = doctor(stub, tmp_path, capsys, "--argo-url",
                                      argo.url.replace("/argo", "/elsewhere"),
                                      "--argo-token", "t")
    assert code == 0 and f"{argo.url}/api/v1/version answers v4.1.2" in lines["argo server"]
    assert broken == 1 and "answered HTTP 400" in broken_lines["argo server"]


def test_the_kubernetes_client_is_not_on_the_step_path():
    import subprocess
    import sys

    # `fraudpipe --help` builds every command's parser, as each pod's CLI does
    script = ("import sys; from trainer.cli import build_parser; build_parser(); "
              "print(sorted(m for m in sys.modules if m.startswith(('kubernetes', 'prefect', "
              "'hera'))))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def half_installed(objects: dict[str, Any]) -> None:
    """Step 6's install.yaml ConfigMap kept, no consumer for the claim, no ComputeClass,
    and the worker never given the pushed image (step 5 skipped)."""
    empty_executor(objects)
    claim_pending(objects)
    no_spot(objects)
    objects[DEPLOYMENT.format(namespace="fraudpipe", name="prefect-worker")]["spec"][
        "template"]["spec"]["containers"][0]["image"] = "fraudpipe-step:latest"


def walkthrough_output(which: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "deployments" / "README.md").read_text()
    marker = f"<!-- doctor-output: {which} -->\n```text\n"
    assert marker in text, marker
    return text.split(marker, 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(("which", "breakage", "expected_code"),
                         [("healthy", None, 0), ("misconfigured", half_installed, 1)])
def test_the_walkthrough_shows_what_the_doctor_prints(which, breakage, expected_code, cluster,
                                                      tmp_path, capsys):
    # GIVEN the cluster of the walk-through, healthy or half installed
    if breakage:
        breakage(cluster)
    with KubeStub(cluster) as stub:
        kubeconfig = stub.write_kubeconfig(tmp_path / "kubeconfig")
        # WHEN the doctor runs as the walk-through runs it
        code = fraudpipe(["doctor", "--cluster", "--kubeconfig", str(kubeconfig)])
    out = capsys.readouterr().out
    # THEN deployments/README.md shows exactly this output (FRAUDPIPE_REGENERATE=1 rewrites it)
    assert code == expected_code
    readme = Path(__file__).resolve().parents[2] / "deployments" / "README.md"
    if os.environ.get("FRAUDPIPE_REGENERATE") == "1":
        old = walkthrough_output(which)
        readme.write_text(readme.read_text().replace(
            f"<!-- doctor-output: {which} -->\n```text\n{old}```",
            f"<!-- doctor-output: {which} -->\n```text\n{out}```"))
    assert walkthrough_output(which) == out
