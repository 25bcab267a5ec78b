"""The GKE deployment kit: manifests validate, pods meet the restricted Pod Security
Standard, the hand-written objects agree with the rendered templates and settings, and the
Dockerfile installs the pinned set and runs the CLI as uid 10001.

Docker is not available where these tests run, so the Dockerfile is checked statically.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from trainer.cli import build_parser
from workflows.render import manifests
from workflows.settings import WorkflowSettings
from workflows.validate import KUBERNETES_KINDS, validate_document, validate_paths

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENTS = REPO / "deployments"
K8S = DEPLOYMENTS / "k8s"
DOCKERFILE = DEPLOYMENTS / "Dockerfile"
JOB_TEMPLATE = DEPLOYMENTS / "prefect" / "kubernetes-base-job-template.json"
SETTINGS = WorkflowSettings()
ARGO_POD_KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, d) for p in sorted(K8S.glob("*.yaml")) for d in load_all(p)
            if "kind" in d]


def find(kind: str, name: str) -> dict[str, Any]:
    for _, document in k8s_documents():
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    raise AssertionError(f"no {kind} {name} under {K8S}")


# ------------------------------------------------------------------ validation


def test_every_committed_manifest_validates_strictly():
    files, problems = validate_paths([DEPLOYMENTS])
    names = {f.relative_to(DEPLOYMENTS).as_posix() for f in files}
    assert {"k8s/redis.yaml", "k8s/prefect-worker.yaml", "k8s/argo-submitter.yaml",
            "k8s/namespace.yaml", "k8s/toolbox.yaml", "k8s/secrets.template.yaml",
            "argo/fraudpipe-train-workflowtemplate.yaml"} <= names
    assert [str(p) for p in problems] == []


def test_every_rendered_manifest_validates_strictly():
    rendered = manifests()
    assert "fraudpipe-rbac.yaml" in rendered
    problems = []
    for name, text in rendered.items():
        for index, document in enumerate(d for d in yaml.safe_load_all(text) if d):
            problems += validate_document(document, name, index)
    assert [str(p) for p in problems] == []


def test_core_kinds_go_through_the_kubernetes_schemas():
    # GIVEN the hand-written objects, which are all core kinds the validator knows
    pytest.importorskip("kubernetes_validate")
    kinds = {d["kind"] for _, d in k8s_documents()}
    assert kinds <= set(KUBERNETES_KINDS)
    # WHEN a field the Kubernetes schema does not define is slipped into the StatefulSet
    statefulset = find("StatefulSet", "redis")
    statefulset["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    problems = validate_document(statefulset, "redis.yaml", 0)
    # THEN the strict schema check names it
    assert problems and "readinessProbes" in problems[0].message


def test_kustomization_lists_every_manifest_but_the_secret_template():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "kind" not in kustomization  # `fraudpipe validate` skips kind-less documents
    manifests_on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests_on_disk - {"secrets.template.yaml"}
    assert kustomization["namespace"] == SETTINGS.namespace


# ------------------------------------------------------------------ pod security


def restricted_violations(pod_spec: dict[str, Any], where: str) -> list[str]:
    """What keeps a pod spec from the "restricted" Pod Security Standard."""
    problems = []
    pod_context = pod_spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(flag):
            problems.append(f"{where}: {flag} is set")
    for volume in pod_spec.get("volumes") or []:
        if "hostPath" in volume:
            problems.append(f"{where}: volume {volume.get('name')} is a hostPath")
    containers = [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]
    if not containers:
        problems.append(f"{where}: no containers")
    for container in containers:
        name = f"{where}/{container.get('name', '?')}"
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set((context.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            problems.append(f"{name}: runs as uid 0")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {})
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    return problems


def argo_pod_specs(document: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    """One pod spec per container/script template, with the workflow-level pod settings."""
    spec = document["spec"]
    if document["kind"] == "CronWorkflow":
        spec = spec["workflowSpec"]
    pods = []
    for template in spec.get("templates") or []:
        container = template.get("container") or template.get("script")
        if container is None:
            continue
        pod = {
            "securityContext": template.get("securityContext", spec.get("securityContext")),
            "hostNetwork": template.get("hostNetwork", spec.get("hostNetwork")),
            "volumes": [*(spec.get("volumes") or []), *(template.get("volumes") or [])],
            "initContainers": template.get("initContainers") or [],
            "containers": [{"name": "main", **container}, *(template.get("sidecars") or [])],
        }
        pods.append((f"{where}:{template['name']}", pod))
    return pods


SHARE_OWNER = K8S / "share-owner" / "share-owner-job.yaml"
#: Baseline's allowed additions to the default capabilities (Pod Security Standards).
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                         "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP",
                         "SETUID", "SYS_CHROOT"}


def namespace_levels() -> dict[str, str]:
    """Pod Security level each Namespace under deployments/ enforces."""
    return {d["metadata"]["name"]: d["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
            for path in sorted(DEPLOYMENTS.rglob("*.yaml")) for d in load_all(path)
            if d.get("kind") == "Namespace"}


def every_pod_spec(level: str = "restricted") -> list[tuple[str, dict[str, Any]]]:
    """Pod specs of the objects that land in a namespace enforcing `level`.

    An object without a namespace lands in the fraudpipe namespace (kustomization.yaml
    sets it, the rendered templates carry it).
    """
    levels = namespace_levels()
    pods = []
    for path in sorted(DEPLOYMENTS.rglob("*.yaml")):
        for document in load_all(path):
            kind = document.get("kind")
            if kind is None:
                continue  # kustomization.yaml
            namespace = document["metadata"].get("namespace", SETTINGS.namespace)
            if levels.get(namespace, "restricted") != level:
                continue
            where = f"{path.relative_to(DEPLOYMENTS)}:{kind}/{document['metadata'].get('name')}"
            if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                pods.append((where, document["spec"]["template"]["spec"]))
            elif kind == "Pod":
                pods.append((where, document["spec"]))
            elif kind in ARGO_POD_KINDS:
                pods += argo_pod_specs(document, where)
                pods += built_argo_pods(document, where)
    return pods


def built_argo_pods(document: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    """The pods Argo's controller builds from `document` with the committed ConfigMap (its
    init and wait containers included), as `fraudpipe validate` builds them."""
    from workflows.pods import build_pods
    from workflows.render import CONTROLLER_CONFIGMAP_FILE

    argo = DEPLOYMENTS / "argo"
    (configmap,) = load_all(argo / CONTROLLER_CONFIGMAP_FILE)
    templates = {d["metadata"]["name"]: d for path in sorted(argo.glob("*.yaml"))
                 for d in load_all(path) if d.get("kind") == "WorkflowTemplate"}
    return [(f"{where}:{pod.template}({pod.attempt}, as built)", pod.spec)
            for pod in build_pods(document, configmap, workflow_templates=templates)]


def test_every_pod_spec_meets_the_restricted_standard():
    pods = every_pod_spec()
    where = {w.split(":")[0] for w, _ in pods}
    # Redis, the Prefect worker, the toolbox and every Argo step template are covered.
    assert {"k8s/redis.yaml", "k8s/prefect-worker.yaml", "k8s/toolbox.yaml",
            "argo/fraudpipe-train-workflowtemplate.yaml"} <= where
    problems = [p for name, pod in pods for p in restricted_violations(pod, name)]
    assert problems == []
    # the pods Argo builds are checked too: 4 step templates x 2 tries x 3 manifests
    built = [w for w, _ in pods if w.endswith(", as built)")]
    assert len(built) == 24


def test_the_restricted_check_catches_each_violation():
    good = find("Deployment", "fraudpipe-toolbox")["spec"]["template"]["spec"]
    assert restricted_violations(good, "toolbox") == []
    breakages = {
        "hostNetwork": lambda s: s.update(hostNetwork=True),
        "hostPath": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "privileged": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
        "allowPrivilegeEscalation": lambda s: s["containers"][0]["securityContext"].pop(
            "allowPrivilegeEscalation"),
        "drop ALL": lambda s: s["containers"][0]["securityContext"].update(capabilities={}),
        "runAsNonRoot": lambda s: s["securityContext"].pop("runAsNonRoot")
        and s["containers"][0]["securityContext"].pop("runAsNonRoot"),
        "uid 0": lambda s: s["containers"][0]["securityContext"].update(runAsUser=0),
        "seccompProfile": lambda s: s["securityContext"].pop("seccompProfile")
        and s["containers"][0]["securityContext"].pop("seccompProfile"),
    }
    for expected, breakage in breakages.items():
        spec = json.loads(json.dumps(good))
        breakage(spec)
        problems = restricted_violations(spec, "toolbox")
        assert any(expected in p for p in problems), (expected, problems)


def test_namespace_enforces_the_restricted_standard():
    namespace = find("Namespace", SETTINGS.namespace)
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def baseline_violations(pod_spec: dict[str, Any], where: str) -> list[str]:
    """What keeps a pod spec from the "baseline" Pod Security Standard."""
    problems = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(flag):
            problems.append(f"{where}: {flag} is set")
    for volume in pod_spec.get("volumes") or []:
        if "hostPath" in volume:
            problems.append(f"{where}: volume {volume.get('name')} is a hostPath")
    seccomp = (pod_spec.get("securityContext") or {}).get("seccompProfile") or {}
    for container in [*(pod_spec.get("initContainers") or []), *pod_spec["containers"]]:
        context = container.get("securityContext") or {}
        name = f"{where}/{container['name']}"
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if set((context.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES:
            problems.append(f"{name}: adds capabilities beyond baseline's")
        if (context.get("seccompProfile") or seccomp).get("type") == "Unconfined":
            problems.append(f"{name}: seccomp Unconfined")
        if container.get("ports") and any(p.get("hostPort") for p in container["ports"]):
            problems.append(f"{name}: hostPort")
    return problems


def test_only_the_share_owner_job_leaves_the_restricted_namespace():
    # GIVEN every namespace the kit creates and the pods outside "restricted"
    levels = namespace_levels()
    assert levels[SETTINGS.namespace] == "restricted"
    relaxed = every_pod_spec("baseline")
    # THEN the only one is the one-time chown, in its own namespace, never in fraudpipe
    assert [w for w, _ in relaxed] == [
        "k8s/share-owner/share-owner-job.yaml:Job/share-owner"]
    documents = load_all(SHARE_OWNER)
    job = next(d for d in documents if d["kind"] == "Job")
    assert job["metadata"]["namespace"] != SETTINGS.namespace
    assert levels[job["metadata"]["namespace"]] == "baseline"
    assert set(levels) == {SETTINGS.namespace, job["metadata"]["namespace"]}
    # It is outside "restricted" only for what a chown needs: uid 0 and two capabilities ...
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 0
    assert {p.split(": ", 1)[1] for p in restricted_violations(pod, "share-owner")} == {
        "runAsNonRoot is not true", "runs as uid 0", "adds capabilities"}
    # ... and meets "baseline" with everything dropped but CHOWN and FOWNER.
    assert baseline_violations(pod, "share-owner") == []
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER"]}
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False


def test_the_baseline_check_catches_each_violation():
    good = next(d for d in load_all(SHARE_OWNER) if d["kind"] == "Job")["spec"]["template"][
        "spec"]
    breakages = {
        "privileged": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
        "beyond baseline": lambda s: s["containers"][0]["securityContext"]["capabilities"][
            "add"].append("SYS_ADMIN"),
        "hostPath": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "Unconfined": lambda s: s["securityContext"].update(
            seccompProfile={"type": "Unconfined"}),
    }
    for expected, breakage in breakages.items():
        spec = json.loads(json.dumps(good))
        breakage(spec)
        assert any(expected in p for p in baseline_violations(spec, "x")), expected


def test_share_owner_job_chowns_the_mount_to_the_image_user():
    job = next(d for d in load_all(SHARE_OWNER) if d["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == SETTINGS.mount_path
    script = container["command"][2]
    uid, _, gid = [a for i, a in stages()["runtime"] if i == "USER"][-1].partition(":")
    assert f"chown {uid}:{gid} {SETTINGS.mount_path}" in script
    assert script.startswith("set -eu")
    # The NFS server and export are placeholders the walk-through's sed fills in.
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    walkthrough = (DEPLOYMENTS / "README.md").read_text()
    for placeholder in (volume["nfs"]["server"], volume["nfs"]["path"]):
        assert "REPLACE_WITH_" in placeholder
        assert f"s|{placeholder}|" in walkthrough, placeholder
    assert "deployments/k8s/share-owner/share-owner-job.yaml | kubectl apply -f -" in walkthrough
    assert f"kubectl delete namespace {job['metadata']['namespace']}" in walkthrough
    # The restricted namespace is never relabelled to let a root pod in.
    assert "enforce=baseline" not in walkthrough
    # Not in the kustomization: `kubectl apply -k deployments/k8s` never creates it.
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert not any("share-owner" in r for r in kustomization["resources"])


def test_prefect_flow_run_pods_meet_the_restricted_standard():
    template = json.loads(JOB_TEMPLATE.read_text())
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert restricted_violations(pod, "kubernetes-base-job-template") == []
    # The uid/gid are the image's (the share is chowned to them), and the pod can write
    # nothing but /tmp, an emptyDir.
    uid, _, gid = [a for i, a in stages()["runtime"] if i == "USER"][-1].partition(":")
    context = pod["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (
        int(uid), int(gid), int(gid))
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    tmp = next(m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp)


def render_flow_run_job(job_variables: dict[str, Any]) -> dict[str, Any]:
    """The Job the Kubernetes worker would create for a flow run of a GKE deployment.

    prefect-kubernetes' own code does the work: the base job template and the deployment's
    job variables go through `from_template_and_values` (Prefect's placeholder
    substitution and env merge) and `prepare_for_flow_run` (its manifest validation, env
    list, labels, command). No block or variable placeholder is used, so the client is
    never called: it points at a closed port.
    """
    import asyncio
    import uuid

    pytest.importorskip("prefect_kubernetes", reason="the `kubernetes` extra is not installed")
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = json.loads(JOB_TEMPLATE.read_text())

    async def render() -> dict[str, Any]:
        configuration = await KubernetesWorkerJobConfiguration.from_template_and_values(
            template, job_variables, client=PrefectClient("http://127.0.0.1:9/api"))
        configuration.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name="brave-otter"))
        return configuration.job_manifest

    return asyncio.run(render())


def test_gke_flow_run_job_renders_valid_and_restricted_with_prefect_kubernetes():
    # GIVEN the job variables prefect.yaml gives the GKE deployments
    prefect_yaml = yaml.safe_load((REPO / "prefect.yaml").read_text())
    job_variables = prefect_yaml["definitions"]["work_pools"]["gke"]["job_variables"]
    # WHEN prefect-kubernetes renders the Job of a flow run (it raises if the template
    # lacks what its validator requires)
    manifest = render_flow_run_job(job_variables)
    # THEN the pod runs the step image from the repository's directory, with the share,
    # a writable HOME/PREFECT_HOME on /tmp, and the deployment's env merged over those
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert manifest["metadata"]["namespace"] == SETTINGS.namespace
    assert container["image"] == job_variables["image"]
    assert container["workingDir"] == job_variables["working_dir"]
    assert container["args"] == ["prefect", "flow-run", "execute"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HOME"] == "/tmp" and env["PREFECT_HOME"].startswith("/tmp/")
    assert env["MPLBACKEND"] == job_variables["env"]["MPLBACKEND"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims[mounts[SETTINGS.mount_path]] == SETTINGS.pvc_name
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"])
    assert restricted_violations(pod, "rendered flow-run Job") == []
    # prefect-kubernetes 0.8.0 refuses a template without `completions` and `parallelism`
    # in the pod spec (its default template puts these Job fields there); the API server,
    # whose default field validation is Warn, drops them. Everything else is strict.
    assert (pod.pop("completions"), pod.pop("parallelism")) == (1, 1)
    manifest["metadata"]["name"] = manifest["metadata"].pop("generateName") + "x1"
    assert [str(p) for p in validate_document(manifest, "rendered flow-run Job", 0)] == []


def test_prefect_server_accepts_the_template_for_a_kubernetes_pool():
    # The same validation `prefect work-pool create --base-job-template` meets on the server:
    # every placeholder of job_configuration is a declared variable.
    from prefect.server.schemas.actions import WorkPoolCreate

    template = json.loads(JOB_TEMPLATE.read_text())
    pool = WorkPoolCreate(name="fraudpipe-gke", type="kubernetes", base_job_template=template)
    assert pool.base_job_template["variables"]["properties"]["env"]["default"]["PREFECT_HOME"]
    broken = json.loads(JOB_TEMPLATE.read_text())
    broken["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "securityContext"]["runAsUser"] = "{{ run_as_user }}"
    with pytest.raises(ValueError, match="run_as_user"):
        WorkPoolCreate(name="fraudpipe-gke", type="kubernetes", base_job_template=broken)


def test_job_variables_cannot_switch_the_pod_security_off():
    # A deployment may override any variable; none of them reaches the securityContext.
    template = json.loads(JOB_TEMPLATE.read_text())
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    text = json.dumps([pod["securityContext"], pod["containers"][0]["securityContext"]])
    assert "{{" not in text
    manifest = render_flow_run_job({"env": {"EXTRA": "1"}, "image": "other:1"})
    assert restricted_violations(manifest["spec"]["template"]["spec"], "override") == []


# ------------------------------------------------------------------ agreement


def test_redis_objects_match_what_the_templates_expect():
    service = find("Service", SETTINGS.redis_host)
    assert [p["port"] for p in service["spec"]["ports"]] == [SETTINGS.redis_port]
    statefulset = find("StatefulSet", "redis")
    pod = statefulset["spec"]["template"]["spec"]
    assert service["spec"]["selector"].items() <= statefulset["spec"]["template"]["metadata"][
        "labels"].items()
    secret_refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                   for c in [*pod["initContainers"], *pod["containers"]] for e in c.get("env", [])
                   if "secretKeyRef" in e.get("valueFrom", {})}
    assert (SETTINGS.redis_secret_name, SETTINGS.redis_secret_key) in secret_refs
    assert pod["containers"][0]["readinessProbe"]
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] in {
        m["name"] for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/data"}


def test_redis_persists_and_limits_the_queue_user_to_its_keys():
    from trainer.queue.settings import RedisSettings

    config = find("ConfigMap", "fraudpipe-redis-config")["data"]
    directives = dict(line.split(" ", 1) for line in config["redis.conf"].splitlines()
                      if line and not line.startswith("#"))
    assert directives["appendonly"] == "yes"
    assert directives["dir"] == "/data"
    rules = config["queue-user.acl"].split()
    queue = RedisSettings()
    assert rules[:1] == ["resetkeys"]
    assert {r for r in rules if r.startswith("~")} == {f"~{queue.key_prefix}:*",
                                                       f"~{queue.queue_name}"}
    assert "-@all" in rules and "-@dangerous" in rules and "-@admin" in rules
    assert "resetchannels" in rules and "+@all" not in rules


def test_secret_template_holds_placeholders_only():
    for document in load_all(K8S / "secrets.template.yaml"):
        assert document["kind"] == "Secret"
        values = document["stringData"].values()
        assert values and all(v.startswith("REPLACE_WITH_") for v in values)
    names = {d["metadata"]["name"] for d in load_all(K8S / "secrets.template.yaml")}
    assert SETTINGS.redis_secret_name in names


def test_prefect_worker_serves_the_gke_pool_with_the_auth_string_from_a_secret():
    prefect_yaml = yaml.safe_load((REPO / "prefect.yaml").read_text())
    pool = prefect_yaml["definitions"]["work_pools"]["gke"]["name"]
    deployment = find("Deployment", "prefect-worker")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert container["command"] == ["prefect"]
    assert args[args.index("--pool") + 1] == pool and args[args.index("--type") + 1] == "kubernetes"
    env = {e["name"]: e for e in container["env"]}
    auth = env["PREFECT_API_AUTH_STRING"]["valueFrom"]["secretKeyRef"]
    assert "value" not in env["PREFECT_API_AUTH_STRING"]
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME"][
        "value"] == auth["name"]
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_KEY"][
        "value"] == auth["key"]
    role = find("Role", deployment["spec"]["template"]["spec"]["serviceAccountName"])
    job_rules = [r for r in role["rules"] if "jobs" in r["resources"]]
    assert job_rules and {"create", "delete", "watch"} <= set(job_rules[0]["verbs"])
    assert not any("secrets" in r["resources"] for r in role["rules"])


def test_submitter_can_submit_from_the_template_but_not_create_pods():
    role = find("Role", "fraudpipe-submitter")
    verbs = {(res, verb) for rule in role["rules"] for res in rule["resources"]
             for verb in rule["verbs"]}
    assert {("workflows", "create"), ("workflowtemplates", "get")} <= verbs
    assert not {v for v in verbs if v[0] in ("pods", "secrets") and v[1] in
                ("create", "delete", "patch", "update")}
    assert not any(r[0] == "secrets" for r in verbs)
    token = find("Secret", "fraudpipe-submitter.service-account-token")
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == \
        "fraudpipe-submitter"


def test_toolbox_mounts_the_claim_where_the_steps_do():
    pod = find("Deployment", "fraudpipe-toolbox")["spec"]["template"]["spec"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert claims[mounts[SETTINGS.mount_path]] == SETTINGS.pvc_name


# ------------------------------------------------------------------ Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(" ", 1)[0].upper(), line.split(" ", 1)[1]) for line in lines]


def stages() -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    name = None
    for instruction, args in dockerfile_instructions():
        if instruction == "FROM":
            name = args.split(" AS ")[-1].strip() if " AS " in args else args
            result[name] = []
        elif name is not None:
            result[name].append((instruction, args))
    return result


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_dockerfile_is_multi_stage_on_slim_python_of_the_project():
    args = dict(a.split("=", 1) for i, a in dockerfile_instructions() if i == "ARG" and "=" in a)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base
    assert pyproject()["project"]["requires-python"] == ">=3.11"
    assert list(stages()) == ["builder", "runtime"]


def lock_pins(path: Path) -> dict[str, str]:
    """name -> version of every pin of a lock file (markers ignored)."""
    return dict(re.findall(r"^([A-Za-z0-9][\w.-]*)==([^\s;\\]+)", path.read_text(), re.M))


def test_dockerfile_installs_the_lock_with_hashes_then_the_project_alone():
    builder = stages()["builder"]
    copied = {a.split()[0] for i, a in builder if i == "COPY"}
    assert {"requirements.lock", "pyproject.toml"} <= copied
    installs = [shlex.split(a) for i, a in builder if i == "RUN" and "pip install" in a]
    # First the lock, every file checked against its hashes; then the project, nothing
    # resolved (no version is written in the Dockerfile: `make lock` writes the lock).
    lock_install = next(w for w in installs if "-r" in w)
    assert "--require-hashes" in lock_install
    assert lock_install[lock_install.index("-r") + 1].endswith("requirements.lock")
    project = next(w for w in installs if "." in w)
    assert "--no-deps" in project
    assert not re.search(r"[A-Za-z0-9_.\-]+==[0-9]", DOCKERFILE.read_text()), \
        "a version pin in the Dockerfile: pin it in pyproject.toml and run `make lock`"


def test_image_lock_is_the_runtime_and_kubernetes_set_at_the_tested_versions():
    image, dev = lock_pins(REPO / "requirements.lock"), lock_pins(REPO / "requirements-dev.lock")
    optional = pyproject()["project"]["optional-dependencies"]
    # The image has the runtime dependencies and the kubernetes extra (its Prefect worker),
    # not the dev tools, each at the version the tests ran with (requirements-dev.lock).
    for requirement in pyproject()["project"]["dependencies"] + optional["kubernetes"]:
        assert requirement_name(requirement) in {n.lower() for n in image}, requirement
    for requirement in optional["dev"]:
        assert requirement_name(requirement) not in {n.lower() for n in image}, requirement
    assert {name: dev.get(name) for name in image} == image


def test_runtime_stage_has_no_build_tools_or_caches():
    runtime = stages()["runtime"]
    runs = " ".join(a for i, a in runtime if i == "RUN")
    assert "apt-get install" not in runs and "build-essential" not in runs
    assert "pip install" not in runs
    # The runtime takes the builder's virtualenv whole: no compiler, no wheels, no cache.
    assert [a for i, a in runtime if i == "COPY" and "--from=builder" in a] == [
        "--from=builder /opt/venv /opt/venv"]


def test_runtime_runs_as_the_templates_numeric_user():
    runtime = stages()["runtime"]
    users = [a for i, a in runtime if i == "USER"]
    assert users, "no USER in the final stage"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and gid.isdigit(), "USER must be numeric for runAsNonRoot"
    template = yaml.safe_load(
        (DEPLOYMENTS / "argo" / "fraudpipe-train-workflowtemplate.yaml").read_text())
    context = template["spec"]["securityContext"]
    assert (int(uid), int(gid)) == (context["runAsUser"], context["runAsGroup"])
    for _, document in k8s_documents():
        if document["kind"] == "Deployment":
            pod_context = document["spec"]["template"]["spec"]["securityContext"]
            assert pod_context["runAsUser"] == int(uid), document["metadata"]["name"]


def test_entrypoint_is_the_cli_and_the_templates_commands_exist():
    instructions = dockerfile_instructions()
    entrypoint = json.loads(next(a for i, a in instructions if i == "ENTRYPOINT"))
    assert entrypoint == ["fraudpipe"]
    assert pyproject()["project"]["scripts"]["fraudpipe"] == "trainer.cli:main"
    commands = set(next(a for a in build_parser()._actions
                        if a.__class__.__name__ == "_SubParsersAction").choices)
    cmd = json.loads(next(a for i, a in instructions if i == "CMD"))
    assert cmd == ["--help"]
    # Every `fraudpipe <command>` the rendered templates run exists in the CLI.
    text = (DEPLOYMENTS / "argo" / "fraudpipe-train-workflowtemplate.yaml").read_text()
    template = yaml.safe_load(text)
    used = set(re.findall(r"exec\s+fraudpipe (\w+)", text))
    for t in template["spec"]["templates"]:
        container = t.get("container") or {}
        if container.get("command") == ["fraudpipe"]:
            used.add(container["args"][0])
    assert used >= {"step", "worker", "report"}
    assert used <= commands


def test_image_layout_matches_prefect_yaml_and_dockerignore():
    runtime = stages()["runtime"]
    workdir = [a for i, a in runtime if i == "WORKDIR"][-1]
    prefect_yaml = yaml.safe_load((REPO / "prefect.yaml").read_text())
    gke = prefect_yaml["definitions"]["work_pools"]["gke"]["job_variables"]
    pull = prefect_yaml["definitions"]["gke_pull"][0]
    assert workdir == gke["working_dir"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == workdir
    # Every file a COPY names exists and is let through by .dockerignore.
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for instruction, args in dockerfile_instructions():
        if instruction != "COPY" or "--from" in args:
            continue
        sources = [w for w in args.split()[:-1] if not w.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), source
            assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
    for entry in pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        assert entry in allowed, f"package {entry} is excluded by .dockerignore"


def runtime_tree() -> dict[str, str]:
    """Where each runtime COPY puts its sources: {absolute path in the image: source}."""
    tree, workdir = {}, "/"
    for instruction, args in stages()["runtime"]:
        if instruction == "WORKDIR":
            workdir = posixpath.join(workdir, args.strip())
        elif instruction == "COPY" and "--from" not in args:
            words = [w for w in args.split() if not w.startswith("--")]
            sources, destination = words[:-1], posixpath.join(workdir, words[-1])
            for source in sources:
                if destination.endswith("/") and len(sources) > 1 or not source.endswith("/"):
                    target = posixpath.join(destination, posixpath.basename(source))
                else:
                    target = destination
                tree[posixpath.normpath(target)] = source
    return tree


def test_project_is_at_the_working_dir_of_the_gke_deployments():
    # GIVEN prefect.yaml's GKE deployments: working_dir and pull step name a directory,
    # the entrypoints are paths relative to it
    prefect_yaml = yaml.safe_load((REPO / "prefect.yaml").read_text())
    working_dir = prefect_yaml["definitions"]["work_pools"]["gke"]["job_variables"][
        "working_dir"]
    gke = [d for d in prefect_yaml["deployments"]
           if d["work_pool"]["name"] == prefect_yaml["definitions"]["work_pools"]["gke"]["name"]]
    assert gke, "no deployment on the GKE pool"
    # WHEN the image's final WORKDIR and files are read from the Dockerfile
    runtime = stages()["runtime"]
    tree = runtime_tree()
    # THEN the image's working directory is that directory, prefect.yaml is in it, and
    # every GKE entrypoint's file is there with the packages the flows import
    assert [a for i, a in runtime if i == "WORKDIR"][-1] == working_dir == "/opt/fraudpipe"
    assert tree[posixpath.join(working_dir, "prefect.yaml")] == "prefect.yaml"
    for deployment in gke:
        assert deployment["pull"][0]["prefect.deployments.steps.set_working_directory"][
            "directory"] == working_dir
        path = deployment["entrypoint"].split(":")[0]
        top = path.split("/")[0]
        assert tree.get(posixpath.join(working_dir, top)) == f"{top}/", (path, tree)
        assert (REPO / path).is_file()
    imported = set()
    for module in (REPO / "flows").glob("*.py"):
        imported |= set(re.findall(r"^(?:from|import) (\w+)", module.read_text(), re.M))
    first_party = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    for package in imported & first_party:
        assert tree.get(posixpath.join(working_dir, package)) == f"{package}/", package
