"""Strict offline validation: the committed YAML passes, broken copies are each rejected
with the JSON path of the bad field."""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from reference import reference_dir

from workflows.cli import add_validate_parser
from workflows.validate import (
    ARGO_SCHEMA,
    KUBERNETES_KINDS,
    validate_deployment,
    validate_document,
    validate_paths,
)

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"
TEMPLATE = DEPLOYMENTS / "argo" / "fraudpipe-train-workflowtemplate.yaml"
RBAC = DEPLOYMENTS / "argo" / "fraudpipe-rbac.yaml"
PVC = DEPLOYMENTS / "argo" / "filestore-pv-pvc.yaml"



def template_index(document: dict, name: str) -> int:
    return [t["name"] for t in document["spec"]["templates"]].index(name)


def test_vendored_schema_is_argo_v4_1_2_unchanged():
    # The README beside it records the upstream file's sha256 (api/jsonschema/schema.json).
    vendored = gzip.decompress(ARGO_SCHEMA.read_bytes())
    readme = (ARGO_SCHEMA.parent / "README.md").read_text()
    assert hashlib.sha256(vendored).hexdigest() in readme
    assert vendored == (reference_dir() / "argo" / "workflows-v4.1-jsonschema.json").read_bytes()


def test_committed_manifests_validate_strictly():
    files, problems = validate_paths([DEPLOYMENTS])
    assert {f.name for f in files} >= {
        "fraudpipe-train-workflowtemplate.yaml", "fraudpipe-train-workflow.yaml",
        "fraudpipe-daily-cronworkflow.yaml", "fraudpipe-rbac.yaml"}
    assert problems == []


def _unknown_template_key(doc):
    i = template_index(doc, "train-batch")
    doc["spec"]["templates"][i]["retryStrategy"]["maxRetries"] = "3"
    return f"$.spec.templates[{i}].retryStrategy.maxRetries", "unknown key 'maxRetries'"


def _unknown_container_key(doc):
    i = template_index(doc, "report")
    doc["spec"]["templates"][i]["container"]["securityContext"]["readOnlyRootFS"] = True
    return (f"$.spec.templates[{i}].container.securityContext.readOnlyRootFS",
            "unknown key 'readOnlyRootFS'")


def _singular_mutex(doc):
    # Argo v4 dropped `synchronization.mutex` for `mutexes`: an easy mistake to ship.
    i = template_index(doc, "train-chain")
    doc["spec"]["templates"][i]["synchronization"] = {"mutex": {"name": "fraudpipe-training"}}
    return f"$.spec.templates[{i}].synchronization.mutex", "unknown key 'mutex'"


def _wrong_type_parallelism(doc):
    i = template_index(doc, "train-chain")
    doc["spec"]["templates"][i]["parallelism"] = "four"
    return f"$.spec.templates[{i}].parallelism", "is not of type 'integer'"


def _wrong_type_deadline(doc):
    doc["spec"]["activeDeadlineSeconds"] = "a week"
    return "$.spec.activeDeadlineSeconds", "is not of type 'integer'"


def _missing_volume_claim_name(doc):
    doc["spec"]["volumes"][0]["persistentVolumeClaim"].pop("claimName")
    return "$.spec.volumes[0].persistentVolumeClaim", "'claimName' is a required property"


def _missing_env_name(doc):
    i = template_index(doc, "report")
    doc["spec"]["templates"][i]["container"]["env"][0].pop("name")
    return f"$.spec.templates[{i}].container.env[0]", "'name' is a required property"


def _missing_spec(doc):
    doc.pop("spec")
    return "$", "'spec' is a required property"


ARGO_BREAKAGES: list[Callable[[dict], tuple[str, str]]] = [
    _unknown_template_key, _unknown_container_key, _singular_mutex, _wrong_type_parallelism,
    _wrong_type_deadline, _missing_volume_claim_name, _missing_env_name, _missing_spec,
]


@pytest.mark.parametrize("breakage", ARGO_BREAKAGES, ids=lambda f: f.__name__.strip("_"))
def test_broken_workflow_template_is_rejected_with_the_path(tmp_path, breakage):
    # GIVEN a copy of the committed template with one deliberate mistake
    document = yaml.safe_load(TEMPLATE.read_text())
    broken = copy.deepcopy(document)
    expected_path, expected_message = breakage(broken)
    target = tmp_path / "broken.yaml"
    target.write_text(yaml.safe_dump(broken, sort_keys=False))
    # WHEN it is validated
    _, problems = validate_paths([target])
    # THEN exactly that field is reported, with the file name
    assert [p.path for p in problems] == [expected_path], problems
    assert expected_message in problems[0].message
    assert str(problems[0]).startswith(f"{target}[0]: {expected_path}: ")


def test_broken_kubernetes_manifests_are_rejected_with_the_path(tmp_path):
    # GIVEN an RBAC file whose Role has an unknown key and a PVC with a wrong type
    service_account, role, binding = list(yaml.safe_load_all(RBAC.read_text()))
    role["rules"][0]["verb"] = ["get"]
    binding.pop("roleRef")
    target = tmp_path / "rbac.yaml"
    target.write_text(yaml.safe_dump_all([service_account, role, binding], sort_keys=False))
    (claim,) = [d for d in yaml.safe_load_all(PVC.read_text()) if d]
    claim["spec"]["accessModes"] = "ReadWriteMany"
    (tmp_path / "pvc.yaml").write_text(yaml.safe_dump(claim))
    # WHEN the directory is validated
    _, problems = validate_paths([tmp_path])
    # THEN each is reported in its own file and document, at the bad field
    found = {(Path(p.file).name, p.document, p.path) for p in problems}
    assert ("rbac.yaml", 1, "$.rules[0]") in found
    assert ("rbac.yaml", 2, "$") in found
    assert ("pvc.yaml", 0, "$.spec.accessModes") in found
    assert len(problems) == 3, problems


def test_unknown_kind_and_bad_yaml_are_reported(tmp_path):
    (tmp_path / "cron.yaml").write_text(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: x}\n")
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    _, problems = validate_paths([tmp_path])
    messages = {Path(p.file).name: (p.path, p.message) for p in problems}
    assert messages["cron.yaml"][0] == "$.kind"
    assert "no schema for kind 'CronJob'" in messages["cron.yaml"][1]
    assert messages["bad.yaml"][1].startswith("cannot read YAML")


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_spec() -> dict:
    return {
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
        "containers": [{"name": "main", "image": "fraudpipe-step:0.1.0",
                        "args": ["lineage", "--storage", "/mnt/fileserver"],
                        "securityContext": copy.deepcopy(RESTRICTED_CONTAINER)}],
    }


def job() -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "fraudpipe-once", "namespace": "fraudpipe"},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 600,
                     "template": {"spec": pod_spec()}}}


def pod() -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "fraudpipe-debug", "namespace": "fraudpipe"},
            "spec": pod_spec()}


def test_job_and_pod_are_checked_against_the_kubernetes_schemas():
    assert {"Job", "Pod"} <= set(KUBERNETES_KINDS)
    # GIVEN a well-formed Job and Pod, both accepted
    assert validate_document(job(), "job.yaml", 0) == []
    assert validate_document(pod(), "pod.yaml", 0) == []
    # WHEN a Job carries Job fields in its pod template (prefect-kubernetes' default base
    # job template does exactly this) or a typo in the container's securityContext
    misplaced = job()
    misplaced["spec"]["template"]["spec"]["completions"] = 1
    typo = pod()
    typo["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    wrong_type = job()
    wrong_type["spec"]["backoffLimit"] = "none"
    # THEN each is reported at the bad field, strictly
    (problem,) = validate_document(misplaced, "job.yaml", 0)
    assert problem.path == "$.spec.template.spec" and "completions" in problem.message
    (problem,) = validate_document(typo, "pod.yaml", 0)
    assert problem.path == "$.spec.containers[0].securityContext"
    assert "readOnlyRootFS" in problem.message
    (problem,) = validate_document(wrong_type, "job.yaml", 0)
    assert problem.path == "$.spec.backoffLimit"


def test_job_and_pod_without_kubernetes_validate_get_the_structural_check(monkeypatch):
    # kubernetes-validate is a dependency, but a missing one must still not let a nameless
    # Job through (the fallback checks apiVersion and metadata.name).
    import sys

    monkeypatch.setitem(sys.modules, "kubernetes_validate", None)
    nameless = job()
    nameless["metadata"].pop("name")
    assert [p.path for p in validate_document(nameless, "job.yaml", 0)] == ["$.metadata.name"]
    assert validate_document(pod(), "pod.yaml", 0) == []


def test_cli_exit_codes(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_validate_parser(parser.add_subparsers())
    args = parser.parse_args(["validate", str(DEPLOYMENTS)])
    assert args.func(args) == 0
    broken = yaml.safe_load(TEMPLATE.read_text())
    broken["spec"]["entrypoint"] = 7
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(broken))
    args = parser.parse_args(["validate", str(tmp_path)])
    assert args.func(args) == 1
    assert "$.spec.entrypoint: 7 is not of type 'string'" in capsys.readouterr().err
    args = parser.parse_args(["validate", str(tmp_path / "empty")])
    (tmp_path / "empty").mkdir()
    assert args.func(args) == 2


# --- the pods Argo builds from the manifests -------------------------------------------------

CONFIGMAP = DEPLOYMENTS / "argo" / "workflow-controller-configmap.yaml"
WORKFLOW_FILES = ("fraudpipe-train-workflowtemplate.yaml", "fraudpipe-train-workflow.yaml",
                  "fraudpipe-daily-cronworkflow.yaml")


def deployments_copy(tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "deployments"
    shutil.copytree(DEPLOYMENTS, target)
    return target


def test_committed_deployment_builds_every_pod_and_admission_admits_them():
    # GIVEN the committed manifests, the controller's ConfigMap and the namespace among them
    result = validate_deployment([DEPLOYMENTS])
    # THEN every workflow manifest has its pods built: 4 pod templates, each a first try
    # and an on-demand retry, each pod Argo's init and wait beside main
    assert result.problems == []
    assert sorted(Path(r.file).name for r in result.pod_reports) == sorted(WORKFLOW_FILES)
    for report in result.pod_reports:
        assert report.level == "restricted" and report.namespace == "fraudpipe"
        assert len(report.pods) == 8 and report.refused == 0
        assert {tuple(p.containers) for p in report.pods} == {("init", "wait", "main")}
        assert {p.attempt for p in report.pods} == {"first", "on-demand"}


@pytest.mark.parametrize("change", ["removed", "security context emptied"])
def test_without_the_executor_settings_argo_containers_are_refused(tmp_path, change):
    # GIVEN the deployment without the controller ConfigMap's executor securityContext
    deployments = deployments_copy(tmp_path)
    configmap_file = deployments / "argo" / CONFIGMAP.name
    if change == "removed":
        configmap_file.unlink()
    else:
        configmap = yaml.safe_load(configmap_file.read_text())
        executor = yaml.safe_load(configmap["data"]["executor"])
        executor.pop("securityContext")
        configmap["data"]["executor"] = yaml.safe_dump(executor)
        configmap_file.write_text(yaml.safe_dump(configmap))
    # WHEN it is validated
    result = validate_deployment([deployments])
    # THEN every pod of every workflow is refused, for Argo's init and wait containers only
    assert result.problems
    assert all(r.refused == len(r.pods) == 8 for r in result.pod_reports)
    messages = [p.message for p in result.problems]
    assert all("is refused by Pod Security 'restricted'" in m for m in messages)
    assert {m.split(": ", 2)[-1].split("container ")[1].split(" ")[0] for m in messages} == {
        "'init'", "'wait'"}
    assert any("allowPrivilegeEscalation != false: container 'init'" in m for m in messages)
    assert any('capabilities.drop=["ALL"]' in m for m in messages)


def test_a_broken_controller_configmap_is_reported_at_its_key(tmp_path):
    deployments = deployments_copy(tmp_path)
    configmap_file = deployments / "argo" / CONFIGMAP.name
    configmap = yaml.safe_load(configmap_file.read_text())
    configmap["data"]["executer"] = configmap["data"].pop("executor")
    configmap_file.write_text(yaml.safe_dump(configmap))
    result = validate_deployment([deployments])
    (problem,) = [p for p in result.problems if p.path == "$.data"]
    assert "unknown key(s) executer" in problem.message


def test_cli_prints_the_pods_it_built(capsys):
    parser = argparse.ArgumentParser()
    add_validate_parser(parser.add_subparsers())
    args = parser.parse_args(["validate", str(DEPLOYMENTS)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "24 pod(s) built as Argo builds them, 0 refused at admission, 0 problem(s)" in out
    assert out.count("containers per pod: 3 (init, wait, main)") == 3
