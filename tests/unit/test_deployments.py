"""The GKE deployment kit: manifests validate, pods meet the restricted Pod Security
Standard, the hand-written objects agree with the rendered templates and settings, and the
Dockerfile installs the pinned set and runs the CLI as uid 10001.

Docker is not available where these tests run, so the Dockerfile is checked statically.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import tomllib
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


def every_pod_spec() -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for path in sorted(DEPLOYMENTS.rglob("*.yaml")):
        for document in load_all(path):
            kind = document.get("kind")
            if kind is None:
                continue  # kustomization.yaml
            where = f"{path.relative_to(DEPLOYMENTS)}:{kind}/{document['metadata'].get('name')}"
            if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                pods.append((where, document["spec"]["template"]["spec"]))
            elif kind == "Pod":
                pods.append((where, document["spec"]))
            elif kind in ARGO_POD_KINDS:
                pods += argo_pod_specs(document, where)
    return pods


def test_every_pod_spec_meets_the_restricted_standard():
    pods = every_pod_spec()
    where = {w.split(":")[0] for w, _ in pods}
    # Redis, the Prefect worker, the toolbox and every Argo step template are covered.
    assert {"k8s/redis.yaml", "k8s/prefect-worker.yaml", "k8s/toolbox.yaml",
            "argo/fraudpipe-train-workflowtemplate.yaml"} <= where
    problems = [p for name, pod in pods for p in restricted_violations(pod, name)]
    assert problems == []


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


@pytest.mark.xfail(strict=True, reason=(
    "deployments/prefect/kubernetes-base-job-template.json (not this kit's file) sets no "
    "securityContext, so the restricted namespace refuses the flow-run pods; the lead was "
    "told. This test passes, and must lose this mark, once the template sets them."))
def test_prefect_flow_run_pods_meet_the_restricted_standard():
    template = json.loads(JOB_TEMPLATE.read_text())
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert restricted_violations(pod, "kubernetes-base-job-template") == []


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
    from trainer.redis_settings import RedisSettings

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


def test_dockerfile_builds_the_pinned_set_from_pyproject():
    builder = stages()["builder"]
    runs = [a for i, a in builder if i == "RUN"]
    wheel = next(r for r in runs if "pip wheel" in r)
    words = shlex.split(wheel)
    # `pip wheel ... .`: the project itself, so pip resolves pyproject.toml's list.
    assert "." in words
    assert "--no-cache-dir" in words
    copied = {a.split()[0] for i, a in builder if i == "COPY"}
    assert "pyproject.toml" in copied
    # Extra packages are exact pins and never a second pin of a pyproject dependency.
    extra = dict(a.split("=", 1) for i, a in builder if i == "ARG" and "=" in a)
    extras = extra.get("WORKER_PACKAGES", "").strip('"').split()
    dependencies = {requirement_name(d) for d in pyproject()["project"]["dependencies"]}
    for requirement in extras:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9.]*", requirement), requirement
        assert requirement_name(requirement) not in dependencies


def test_worker_package_pin_matches_the_tested_environment():
    from importlib.metadata import PackageNotFoundError, version

    builder = dict(a.split("=", 1) for i, a in stages()["builder"] if i == "ARG" and "=" in a)
    for requirement in builder["WORKER_PACKAGES"].strip('"').split():
        name, pinned = requirement.split("==")
        try:
            installed = version(name)
        except PackageNotFoundError:
            pytest.skip(f"{name} is not installed in this virtualenv")
        assert installed == pinned


def test_runtime_stage_has_no_build_tools_or_caches():
    runtime = stages()["runtime"]
    runs = " ".join(a for i, a in runtime if i == "RUN")
    assert "apt-get install" not in runs and "build-essential" not in runs
    install = next(a for i, a in runtime if i == "RUN" and "pip install" in a)
    assert "--no-cache-dir" in install and "--no-index" in install
    # The wheels arrive through a bind mount, so no layer keeps them.
    assert "--mount=type=bind,from=builder" in install
    assert not any(i == "COPY" and "--from=builder" in a for i, a in runtime)


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
    assert used >= {"features", "step", "worker", "report"}
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
