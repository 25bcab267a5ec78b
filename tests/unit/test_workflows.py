"""The Hera definitions: shape, retries, mutex, pod hardening, plan step, golden YAML."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from argo_controller import evaluate

from flows import argo_render
from trainer.errors import PermanentError
from workflows import daily_cron, render, train_template, train_workflow
from workflows.plan import plan
from workflows.settings import WorkflowSettings
from workflows.spec import on_demand_patch_json, retry_expression

COMMITTED = Path(__file__).resolve().parents[2] / "deployments" / "argo"


def templates_by_name(workflow) -> dict:
    return {t["name"]: t for t in workflow.to_dict()["spec"]["templates"]}


def test_main_runs_plan_then_chain_then_report_with_no_features_stage():
    # The step computes its features from the carried state: no stage precomputes them.
    main = templates_by_name(train_template.w)["main"]
    groups = [[step["name"] for step in group] for group in main["steps"]]
    assert groups == [["plan"], ["train-chain", "drain-queue"], ["report"]]
    assert not any("features" in name for name in templates_by_name(train_template.w))


def test_chain_is_serial_under_a_mutex():
    templates = templates_by_name(train_template.w)
    chain = templates["train-chain"]
    assert chain["parallelism"] == 1
    assert chain["failFast"] is True
    # the loop calls a steps wrapper, whose single step calls the retried pod
    assert chain["steps"][0][0]["template"] == "train-link"
    (link_step,) = templates["train-link"]["steps"][0]
    assert link_step["template"] == "train-batch" and "retryStrategy" in templates["train-batch"]
    assert chain["synchronization"] == {"mutexes": [{"name": "fraudpipe-training"}]}
    assert templates["drain-queue"]["synchronization"] == chain["synchronization"]


def test_every_pod_template_is_hardened_and_retried():
    spec = train_template.w.to_dict()["spec"]
    settings = WorkflowSettings()
    # first tries select the Spot-first ComputeClass, and tolerate its taint and Spot's
    assert spec["nodeSelector"] == {"cloud.google.com/compute-class": settings.compute_class}
    assert [(t["key"], t["value"]) for t in spec["tolerations"]] == [
        ("cloud.google.com/compute-class", settings.compute_class),
        ("cloud.google.com/gke-spot", "true")]
    assert render.compute_class(settings)["spec"]["priorities"] == [{"spot": True},
                                                                    {"spot": False}]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["serviceAccountName"] == "fraudpipe-workflow"
    pods = [t for t in spec["templates"] if "container" in t or "script" in t]
    assert {t["name"] for t in pods} == {"plan", "train-batch", "drain-queue", "report"}
    for template in pods:
        body = template.get("container") or template["script"]
        security = body["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, template["name"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "mountPath": "/tmp"} in body["volumeMounts"]
        assert int(template["activeDeadlineSeconds"]) > 0
        assert template["retryStrategy"]["retryPolicy"] == "Always"
        assert "retries" in template["podSpecPatch"]
        if template["name"] != "plan":
            assert body["resources"]["limits"]["memory"]


@pytest.mark.parametrize(
    ("exit_code", "status", "message", "retried"),
    [
        ("-1", "Failed", "Pod was terminated due to imminent node shutdown", True),
        ("-1", "Error", "pod deleted", True),
        ("137", "Failed", "OOMKilled (exit code 137)", False),
        (str(PermanentError.exit_code), "Failed", "Error (exit code 3)", False),
        (str(PermanentError.exit_code), "Error", "pod deleted", False),
        ("1", "Failed", "Error (exit code 1)", False),
        ("5", "Failed", "Error (exit code 5)", True),
        ("7", "Failed", "Error (exit code 7)", True),
    ],
)
def test_retry_expression_retries_preemption_never_permanent_errors(exit_code, status, message,
                                                                     retried):
    # evaluated like the controller does: expr over string-valued lastRetry.* variables
    scope = {"lastRetry.exitCode": exit_code, "lastRetry.status": status,
             "lastRetry.message": message}
    assert evaluate(retry_expression(), scope) is retried


def test_last_attempts_leave_the_class_and_spot_by_affinity_and_the_patch_holds_no_closing_braces():
    patch = templates_by_name(train_template.w)["train-batch"]["podSpecPatch"]
    assert "asInt(retries) >= asInt(workflow.parameters['on-demand-after-retries'])" in patch
    assert patch.count("}}") == 1 and patch.endswith("}}")  # only the tag's own end
    assert json.loads(on_demand_patch_json()) == {
        "nodeSelector": {"cloud.google.com/compute-class": None},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "cloud.google.com/gke-spot", "operator": "DoesNotExist"}]}]}}}}
    assert f"'{on_demand_patch_json()}'" in patch


def test_template_names_carry_the_version_and_cron_references_the_template():
    settings = WorkflowSettings()
    assert train_template.w.name == f"fraudpipe-train-{settings.suffix}"
    assert settings.suffix.startswith("v") and "." not in settings.suffix
    cron = daily_cron.w.to_dict()
    assert cron["kind"] == "CronWorkflow"
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == train_template.w.name
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["schedules"] == [settings.cron_schedule]


def test_redis_password_comes_from_a_secret_never_inline():
    worker = templates_by_name(train_workflow.w)["drain-queue"]["container"]
    password = [e for e in worker["env"] if e["name"] == "FRAUDPIPE_REDIS_PASSWORD"][0]
    assert "value" not in password
    assert password["valueFrom"]["secretKeyRef"]["name"] == "fraudpipe-redis"
    assert all("password" not in arg for arg in worker["args"])


def test_plan_sorts_dedups_and_batches(tmp_path):
    result = plan('["2018-04-03", "2018-04-01", "2018-04-02", "2018-04-01"]', "2", str(tmp_path))
    assert result["mode"] == "dates"
    assert result["dates"] == ["2018-04-01", "2018-04-02", "2018-04-03"]
    assert result["batches"] == [
        {"dates": "2018-04-01 2018-04-02", "first": "2018-04-01", "last": "2018-04-02"},
        {"dates": "2018-04-03", "first": "2018-04-03", "last": "2018-04-03"},
    ]
    assert (tmp_path / "mode").read_text() == "dates"
    assert json.loads((tmp_path / "batches.json").read_text()) == result["batches"]
    assert plan("queued", "1", str(tmp_path))["mode"] == "queued"
    assert plan("2018-04-02, 2018-04-01", "7", str(tmp_path))["batches"][0]["first"] == "2018-04-01"


@pytest.mark.parametrize(("datasets", "days"), [('["2018-13-01"]', "1"), ("yesterday", "1"),
                                                 ('["2018-04-01"]', "0"), ('{"a": 1}', "1")])
def test_plan_rejects_bad_input_with_the_permanent_exit_code(tmp_path, capsys, datasets, days):
    with pytest.raises(SystemExit) as exc:
        plan(datasets, days, str(tmp_path))
    assert exc.value.code == PermanentError.exit_code
    assert "plan: error: parameter" in capsys.readouterr().err


def test_committed_yaml_matches_the_python_definitions():
    # GIVEN the manifests rendered in memory from the Hera definitions
    rendered = argo_render.manifests()
    if os.environ.get("FRAUDPIPE_REGENERATE") == "1":
        render.write(rendered, COMMITTED)
    # THEN every committed file is identical, and nothing is missing or stale
    for name, text in rendered.items():
        committed = COMMITTED / name
        assert committed.is_file(), f"{committed} missing: run FRAUDPIPE_REGENERATE=1 pytest"
        assert committed.read_text() == text, (
            f"{committed} differs from workflows/: run `fraudpipe render` "
            "(or FRAUDPIPE_REGENERATE=1 pytest tests/unit/test_workflows.py)")
    assert argo_render.FILESTORE_FILE in rendered
    stale = {p.name for p in COMMITTED.glob("*.yaml")} - set(rendered)
    assert not stale, f"committed files no longer rendered: {sorted(stale)}"


def test_rendered_yaml_round_trips_to_the_hera_dict():
    text = render.manifests()["fraudpipe-train-workflowtemplate.yaml"]
    assert yaml.safe_load(text) == train_template.w.to_dict()
