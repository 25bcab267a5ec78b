"""The pushed step image, given once as FRAUDPIPE_IMAGE, reaches every pod of every path.

The paths: `argo submit --from workflowtemplate/...` (the template `fraudpipe render`
wrote), the CronWorkflow, the Prefect `*/gke` deployments' flow-run Job (prefect.yaml's
build step and job variables, rendered by prefect-kubernetes' own code), and the
workflows that Job's flow run submits (the bridge's submission, received by the
swagger-checking Argo stub). Each pod's image is read from the spec the cluster would get,
with Argo's `{{workflow.parameters.image}}` resolved the way the controller resolves it.
An unset or unqualified image is an error on every path, before any pod is made.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from argo_server_stub import ArgoStub

from blocks import ArgoServer
from flows.argo_backend import run_training_workflow, training_submission
from flows.train import argo_submission
from trainer.cli import main as fraudpipe
from trainer.queue.settings import RedisSettings
from workflows.image import IMAGE_ENV, ImageError, check_image, step_image
from workflows.pods import build_pods

REPO = Path(__file__).resolve().parents[2]
IMAGE = "europe-west1-docker.pkg.dev/my-project/fraudpipe/fraudpipe-step:0.1.0"
JOB_TEMPLATE = REPO / "deployments" / "prefect" / "kubernetes-base-job-template.json"
CONTROLLER_CONFIGMAP = REPO / "deployments" / "argo" / "workflow-controller-configmap.yaml"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def pod_images(manifest: dict[str, Any], templates: dict[str, Any],
               parameters: dict[str, str] | None = None) -> dict[tuple[str, str], str]:
    """(template, attempt) -> image of the `main` container of each pod Argo builds.

    `workflows.pods.build_pods` merges a CronWorkflow's or a submitted Workflow's
    arguments over the referenced WorkflowTemplate's as the controller does, with the
    committed controller ConfigMap.
    """
    pods = build_pods(manifest, load(CONTROLLER_CONFIGMAP), workflow_templates=templates,
                      parameters=parameters)
    return {(pod.template, pod.attempt): next(c["image"] for c in pod.spec["containers"]
                                              if c["name"] == "main") for pod in pods}


def render(out: Path) -> dict[str, dict[str, Any]]:
    """`fraudpipe render --out OUT`, the walk-through's command; the files it wrote."""
    assert fraudpipe(["render", "--out", str(out)]) == 0
    return {p.name: load(p) for p in out.glob("fraudpipe-*w*.yaml")}


def prefect_gke_job() -> dict[str, Any]:
    """The flow-run Job of a `*/gke` deployment, as `prefect deploy` + the worker make it.

    prefect.yaml's build step runs (Prefect's own step runner), its output fills the job
    variables (Prefect's templating), and prefect-kubernetes renders the Job.
    """
    from prefect.deployments.steps.core import run_steps
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.utilities.templating import apply_values
    from test_deployments import render_flow_run_job

    prefect_yaml = load(REPO / "prefect.yaml")
    gke = [d for d in prefect_yaml["deployments"] if d["work_pool"]["name"] == "fraudpipe-gke"]
    assert gke and all(d["build"] == gke[0]["build"] for d in gke)
    # The step needs no API; a closed port keeps Prefect from starting a server of its own.
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        outputs = asyncio.run(run_steps(gke[0]["build"], print_function=lambda *a, **k: None))
    job_variables = apply_values(gke[0]["work_pool"]["job_variables"], outputs)
    return render_flow_run_job(job_variables)


@pytest.fixture
def on_path(monkeypatch):
    """The virtualenv's `fraudpipe` first on PATH (prefect.yaml's build step runs it)."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def test_the_image_given_once_reaches_every_pod_of_every_path(tmp_path, monkeypatch, on_path):
    # GIVEN the pushed image, exported once (walk-through step 0)
    monkeypatch.setenv(IMAGE_ENV, IMAGE)
    # WHEN the Argo manifests are rendered and the Prefect GKE deployment's Job is made
    rendered = render(tmp_path)
    template = rendered["fraudpipe-train-workflowtemplate.yaml"]
    cron = rendered["fraudpipe-daily-cronworkflow.yaml"]
    job = prefect_gke_job()

    templates = {template["metadata"]["name"]: template}
    every_pod = {"plan", "train-batch", "drain-queue", "report"}

    # THEN `argo submit --from workflowtemplate/...` without -p image runs it everywhere
    with ArgoStub("success", steps_to_finish=1,
                  template_file=tmp_path / "fraudpipe-train-workflowtemplate.yaml") as stub:
        server = ArgoServer(url=stub.url, token="t")
        cli_run = run_training_workflow(server, _submission_without_image(),
                                        poll_seconds=0, sleep=lambda _: None)
        submitted_by_cli = stub.workflows[cli_run.name]["manifest"]
    cli_images = pod_images(submitted_by_cli, templates)
    assert {t for t, _ in cli_images} == every_pod
    assert {a for _, a in cli_images} == {"first", "on-demand"}
    assert set(cli_images.values()) == {IMAGE}

    # ... the CronWorkflow carries it itself (whatever the installed template's default)
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] in templates
    assert {p["name"]: p["value"] for p in cron["spec"]["workflowSpec"]["arguments"][
        "parameters"]}["image"] == IMAGE
    no_default = copy.deepcopy(template)
    for parameter in no_default["spec"]["arguments"]["parameters"]:
        if parameter["name"] == "image":
            del parameter["value"]
    cron_images = pod_images(cron, {template["metadata"]["name"]: no_default})
    assert len(cron_images) == len(cli_images) and set(cron_images.values()) == {IMAGE}

    # ... the Prefect flow-run Job runs it and tells its flow run which image it is
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    job_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert job_env[IMAGE_ENV] == IMAGE

    # ... and the workflows that flow run submits run it in every pod, even from a
    # template whose default is another image (an older render)
    stale = tmp_path / "stale"
    assert fraudpipe(["render", "--out", str(stale), "--image",
                      "europe-west1-docker.pkg.dev/my-project/fraudpipe/fraudpipe-step:0.0.9"]) == 0
    older = load(stale / "fraudpipe-train-workflowtemplate.yaml")
    monkeypatch.setenv(IMAGE_ENV, job_env[IMAGE_ENV])  # the flow-run pod's environment
    submission = argo_submission(["2018-04-01", "2018-04-02"], RedisSettings())
    with ArgoStub("success", steps_to_finish=1,
                  template_file=stale / "fraudpipe-train-workflowtemplate.yaml") as stub:
        flow_run = run_training_workflow(ArgoServer(url=stub.url, token="t"), submission,
                                         poll_seconds=0, sleep=lambda _: None)
        submitted_by_flow = stub.workflows[flow_run.name]["manifest"]
        assert stub.errors == []
    flow_images = pod_images(submitted_by_flow, {older["metadata"]["name"]: older})
    assert len(flow_images) == len(cli_images) and set(flow_images.values()) == {IMAGE}


def _submission_without_image():
    """What `argo submit --from workflowtemplate/... -p datasets=queued` sends: no image."""
    submission = training_submission("queued", image=IMAGE)
    parameters = {k: v for k, v in submission.parameters.items() if k != "image"}
    return type(submission)(submission.template, parameters, submission.deadline_seconds)


def test_the_committed_templates_name_no_image_and_argo_refuses_a_run_without_one():
    # GIVEN the committed template (rendered with no image: no made-up default)
    committed = load(REPO / "deployments" / "argo" / "fraudpipe-train-workflowtemplate.yaml")
    image = next(p for p in committed["spec"]["arguments"]["parameters"]
                 if p["name"] == "image")
    assert "value" not in image
    # ... nor does any other committed place of the Argo and Prefect paths (the hand-written
    # worker and toolbox get theirs by `kubectl set image`, walk-through step 5)
    for name in ("fraudpipe-train-workflow.yaml", "fraudpipe-daily-cronworkflow.yaml"):
        document = load(REPO / "deployments" / "argo" / name)
        spec = document["spec"].get("workflowSpec", document["spec"])
        assert "image" not in {p["name"] for p in spec["arguments"]["parameters"]
                               if "value" in p}, name
    assert "default" not in json.loads(JOB_TEMPLATE.read_text())["variables"]["properties"][
        "image"]
    gke = load(REPO / "prefect.yaml")["definitions"]["work_pools"]["gke"]["job_variables"]
    assert gke["image"] == "{{ step-image.stdout }}"
    # WHEN a run is submitted from it without -p image
    with ArgoStub("success") as stub:
        from hera.exceptions import HeraException

        with pytest.raises(Exception) as refused:
            run_training_workflow(ArgoServer(url=stub.url, token="t"),
                                  _submission_without_image(), sleep=lambda _: None)
    # THEN Argo's validation refuses it, naming the parameter
    assert isinstance(refused.value.__cause__, HeraException)
    assert "spec.arguments.image.value or spec.arguments.image.valueFrom is required" in \
        str(refused.value)
    assert stub.workflows == {}


def test_an_unset_image_stops_render_deploy_and_submit_naming_the_setting(
        tmp_path, monkeypatch, on_path, capsys):
    monkeypatch.delenv(IMAGE_ENV, raising=False)
    # render: no image is said out loud; a library/ name is refused before writing
    assert fraudpipe(["render", "--out", str(tmp_path / "a")]) == 0
    assert "no step image" in capsys.readouterr().err
    assert fraudpipe(["render", "--out", str(tmp_path / "b"), "--image",
                      "fraudpipe-step:latest"]) == 2
    assert "--image='fraudpipe-step:latest' has no registry host" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    # prefect deploy: the GKE deployments' build step fails, naming the variable
    from prefect.deployments.steps.core import StepExecutionError

    with pytest.raises(StepExecutionError) as deploy:
        prefect_gke_job()
    assert f"{IMAGE_ENV} is not set" in str(deploy.value.__cause__)
    # the work pool refuses a flow run whose job variables name no pushed image
    variables = json.loads(JOB_TEMPLATE.read_text())["variables"]
    for job_variables, words in (({}, "'image' is a required property"),
                                 ({"image": "fraudpipe-step:latest"}, "does not match")):
        with pytest.raises(jsonschema.ValidationError, match=words):
            jsonschema.validate(job_variables, variables)
    jsonschema.validate({"image": IMAGE}, variables)
    # the bridge: nothing is submitted
    with pytest.raises(ImageError, match=f"{IMAGE_ENV} is not set"):
        argo_submission(["2018-04-01"], RedisSettings())


@pytest.mark.parametrize(("name", "words"), [
    ("fraudpipe-step:latest", "no registry host"),
    ("library/fraudpipe-step:1", "no registry host"),
    ("prefecthq/prefect:3-latest", "no registry host"),
    ("docker.io/library/python:3.11", "Docker Hub official image"),
    ("europe-west1-docker.pkg.dev/p/r/fraudpipe-step", "no tag or digest"),
    ("europe-west1-docker.pkg.dev/p/r/Fraudpipe:1", "not a valid image reference"),
    ("  ", "is empty"),
])
def test_a_name_that_is_not_a_pushed_image_is_refused(name, words):
    with pytest.raises(ImageError, match=words) as refused:
        check_image(name, "--image")
    assert "--image" in str(refused.value)
    assert "fraudpipe-step:TAG" in str(refused.value)


@pytest.mark.parametrize("name", [
    IMAGE,
    "localhost:5000/fraudpipe-step:dev",
    "ghcr.io/team/fraudpipe-step@sha256:" + "a" * 64,
    "registry.example.com:8443/ml/fraudpipe-step:0.1.0",
])
def test_a_pushed_image_name_is_accepted(name):
    assert check_image(name) == name
    assert step_image(name) == name
