"""The pods Argo builds (workflows/pods.py) from the committed templates and a controller
configuration, checked field by field against workflowpod.go's rules."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from workflows.controller_config import ControllerConfigError, parse_configmap
from workflows.pod_patch import strategic_merge
from workflows.pods import (
    ARGOEXEC,
    DEFAULT_EXECUTOR_IMAGE,
    PodBuildError,
    build_pods,
    leaves_spot,
)
from workflows.settings import SPOT_LABEL

REPO = Path(__file__).resolve().parents[2]
ARGO = REPO / "deployments" / "argo"
TEMPLATE = ARGO / "fraudpipe-train-workflowtemplate.yaml"
CRON = ARGO / "fraudpipe-daily-cronworkflow.yaml"

EXECUTOR = {
    "image": "quay.io/argoproj/argoexec:v4.1.2",
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                  "limits": {"cpu": "500m", "memory": "512Mi"}},
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True, "runAsUser": 8737,
                        "seccompProfile": {"type": "RuntimeDefault"}},
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def configmap(**data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "workflow-controller-configmap", "namespace": "argo"},
            "data": data}


def by_name(pod_spec: dict, name: str) -> dict:
    (found,) = [c for c in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]
                if c["name"] == name]
    return found


def test_every_step_template_gets_init_wait_and_main_with_the_executor_settings():
    # GIVEN the committed template and a ConfigMap whose `executor` key holds YAML
    pods = build_pods(load(TEMPLATE), configmap(executor=yaml.safe_dump(EXECUTOR)))
    # THEN each container/script template has a first try and an on-demand pod
    assert sorted({(p.template, p.attempt) for p in pods}) == sorted(
        (t, a) for t in ("plan", "train-batch", "drain-queue", "report")
        for a in ("first", "on-demand"))
    for pod in pods:
        assert pod.containers == ["init", "wait", "main"]
        for name in ("init", "wait"):
            container = by_name(pod.spec, name)
            assert container["image"] == EXECUTOR["image"]
            assert container["securityContext"] == EXECUTOR["securityContext"]
            assert container["resources"] == EXECUTOR["resources"]
            assert container["command"][:2] == ["argoexec", name]
        # the emissary runs the template's command, from the binary init copied
        main = by_name(pod.spec, "main")
        assert main["command"][:2] == [ARGOEXEC, "emissary"]
        assert main["command"][main["command"].index("--") + 1:] in (["sh", "-c"], ["python"],
                                                                     ["fraudpipe"])
        volumes = {v["name"] for v in pod.spec["volumes"]}
        assert {"var-run-argo", "tmp-dir-argo"} <= volumes
        for container in pod.spec["initContainers"] + pod.spec["containers"]:
            assert {"name": "var-run-argo", "mountPath": "/var/run/argo"} in \
                container["volumeMounts"]
        assert pod.spec["restartPolicy"] == "Never"
        assert pod.metadata["labels"]["workflows.argoproj.io/completed"] == "false"


def test_without_executor_config_init_and_wait_have_no_security_context():
    # The install manifests ship the ConfigMap empty (config/config.go GetExecutor).
    for pod in build_pods(load(TEMPLATE), None):
        for name in ("init", "wait"):
            container = by_name(pod.spec, name)
            assert "securityContext" not in container and "resources" not in container
            assert container["image"] == DEFAULT_EXECUTOR_IMAGE


def test_main_mounts_are_mirrored_into_wait_and_workflow_volumes_follow_mounts():
    (train,) = [p for p in build_pods(load(TEMPLATE), None)
                if p.template == "train-batch" and p.attempt == "first"]
    wait = by_name(train.spec, "wait")
    assert {"mountPath": "/mainctrfs/mnt/fileserver", "name": "fileserver",
            "readOnly": False} in wait["volumeMounts"]
    assert {"name": "tmp-dir-argo", "mountPath": "/tmp", "subPath": "0"} in wait["volumeMounts"]
    names = [v["name"] for v in train.spec["volumes"]]
    assert names == ["var-run-argo", "tmp-dir-argo", "fileserver", "tmp"]
    (plan,) = [p for p in build_pods(load(TEMPLATE), None)
               if p.template == "plan" and p.attempt == "first"]
    # plan mounts only /tmp: the share is not added to its pod
    assert [v["name"] for v in plan.spec["volumes"]] == [
        "var-run-argo", "tmp-dir-argo", "tmp", "argo-staging"]
    assert by_name(plan.spec, "main")["args"] == ["/argo/staging/script"]
    assert {"name": "argo-staging", "mountPath": "/argo/staging"} in \
        by_name(plan.spec, "init")["volumeMounts"]


def test_first_try_stays_on_spot_and_the_on_demand_retry_leaves_it():
    manifest = load(TEMPLATE)
    threshold = int(next(p["value"] for p in manifest["spec"]["arguments"]["parameters"]
                         if p["name"] == "on-demand-after-retries"))
    pods = {(p.template, p.attempt): p for p in build_pods(manifest, None)}
    first, on_demand = pods["train-batch", "first"], pods["train-batch", "on-demand"]
    assert not leaves_spot(first.spec) and first.retries == 0
    assert leaves_spot(on_demand.spec) and on_demand.retries == threshold
    assert SPOT_LABEL not in on_demand.spec.get("nodeSelector", {})
    # the patch changed scheduling only: the containers are the first try's
    assert on_demand.spec["containers"] == first.spec["containers"]
    assert first.spec["activeDeadlineSeconds"] == 3600


def test_cron_pods_are_the_referenced_template_pods_with_the_cron_arguments():
    template = load(TEMPLATE)
    templates = {template["metadata"]["name"]: template}
    cron = load(CRON)
    cron_pods = build_pods(cron, None, workflow_templates=templates)
    assert [(p.template, p.attempt) for p in cron_pods] == [
        (p.template, p.attempt) for p in build_pods(template, None)]
    with pytest.raises(PodBuildError, match="workflowTemplateRef .* not found"):
        build_pods(cron, None)
    # a parameter given at submission reaches the main container
    (plan,) = [p for p in build_pods(template, None, parameters={"image": "reg/x:1"})
               if p.template == "plan" and p.attempt == "first"]
    assert by_name(plan.spec, "main")["image"] == "reg/x:1"


def test_main_container_defaults_merge_under_the_template():
    config = {"mainContainer": {"resources": {"requests": {"ephemeral-storage": "1Gi"}},
                                "imagePullPolicy": "Always"}}
    (report,) = [p for p in build_pods(load(TEMPLATE), config)
                 if p.template == "report" and p.attempt == "first"]
    main = by_name(report.spec, "main")
    assert main["imagePullPolicy"] == "IfNotPresent"  # the template wins
    assert main["resources"]["requests"] == {"ephemeral-storage": "1Gi", "cpu": "1",
                                             "memory": "2Gi"}


def test_configmap_forms_and_strict_keys():
    executor = yaml.safe_dump(EXECUTOR)
    whole = configmap(config=yaml.safe_dump({"executor": EXECUTOR}))
    assert parse_configmap(configmap(executor=executor)) == parse_configmap(whole)
    with pytest.raises(ControllerConfigError, match="unknown key.*executer"):
        parse_configmap(configmap(executer=executor))
    with pytest.raises(ControllerConfigError, match="'config' it must be the only item"):
        parse_configmap(configmap(config="{}", executor=executor))
    with pytest.raises(ControllerConfigError, match="data.executor: not YAML"):
        parse_configmap(configmap(executor="a: [b"))


def test_what_is_not_modelled_is_refused_not_built_wrong():
    manifest = load(TEMPLATE)
    broken = copy.deepcopy(manifest)
    report = next(t for t in broken["spec"]["templates"] if t["name"] == "report")
    report["outputs"] = {"artifacts": [{"name": "log", "path": "/tmp/log"}]}
    with pytest.raises(PodBuildError, match="template report: artifacts"):
        build_pods(broken, None)
    broken = copy.deepcopy(manifest)
    report = next(t for t in broken["spec"]["templates"] if t["name"] == "report")
    report["podSpecPatch"] = '{"hostname": "{{=inputs.parameters.x}}"}'
    with pytest.raises(PodBuildError, match="template report: podSpecPatch"):
        build_pods(broken, None)
    broken = copy.deepcopy(manifest)
    report = next(t for t in broken["spec"]["templates"] if t["name"] == "report")
    report["container"]["volumeMounts"].append({"name": "missing", "mountPath": "/x"})
    with pytest.raises(PodBuildError, match="volume 'missing' not found"):
        build_pods(broken, None)


def test_strategic_merge_merges_containers_by_name_and_null_deletes():
    spec = {"nodeSelector": {"a": "1", "b": "2"},
            "containers": [{"name": "wait", "image": "w"},
                           {"name": "main", "image": "m", "command": ["x"],
                            "env": [{"name": "A", "value": "1"}]}],
            "tolerations": [{"key": "k"}]}
    patch = {"nodeSelector": {"a": None},
             "containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}],
             "tolerations": [{"key": "other"}]}
    merged = strategic_merge(spec, patch)
    assert merged["nodeSelector"] == {"b": "2"}
    assert merged["containers"][1] == {"name": "main", "image": "m", "command": ["x"],
                                       "env": [{"name": "A", "value": "1"},
                                               {"name": "B", "value": "2"}]}
    assert merged["tolerations"] == [{"key": "other"}]  # no merge key: replaced
    assert spec["nodeSelector"] == {"a": "1", "b": "2"}  # inputs untouched
