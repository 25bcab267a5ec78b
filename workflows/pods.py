"""The pods Argo's controller creates for a workflow, built offline.

A pod spec in a template is not the pod the cluster admits: the controller adds its own
`init` and `wait` containers with the executor settings of its ConfigMap, volumes and
mounts of its own, copies workflow-level fields, then applies `podSpecPatch`. This module
builds that pod, following `workflow/controller/workflowpod.go` of argoproj/argo-workflows
v4.1.2 (the default "legacy" layout: `init` + `wait`; line numbers of that file):

- `build` (398-966): main containers merged over `mainContainer` defaults (417-447);
  `activeDeadlineSeconds` the template's, never beyond the workflow's (449-476);
  `restartPolicy: Never`, the volumes of `createVolumes` (`var-run-argo`, `tmp-dir-argo`,
  the template's volumes; 1261-1278, 38-55) and `imagePullSecrets` (477-499);
  `hostNetwork` (512-514), DNS (1337-1345), service account (1824-1859); the `wait`
  container before `main` (532-551); annotations (553-566); the `init` container
  (568-576, 1027-1031, 1094-1116); scheduling and the pod securityContext, template over
  workflow (1348-1405); pod metadata (1325-1334); workflow volumes referenced by a mount
  (1444-1543); the script staging volume (1864-1908); template init containers and
  sidecars (1912-1935); main's mounts mirrored into `wait` under `/mainctrfs`
  (1691-1736); `var-run-argo` on init containers (631-634); Argo's environment
  (643-698, 1212-1250); then `podSpecPatch`, the workflow's then the template's, each
  substituted and strategic-merged (734-747, 299-323); then the emissary command
  prepended to every user container, `/tmp` for executor containers and `var-run-argo`
  on every container (749-798).
- `newExecContainer` (1280-1322): `init` and `wait` take `image`, `imagePullPolicy`,
  `resources`, `securityContext`, `args` and `env` from the ConfigMap's `executor`, and
  nothing else: with the default (empty) configuration (`config/config.go` 229-234) they
  carry no securityContext at all. Only resource templates get a locked-down default.

Not modelled (a template using them is refused with `PodBuildError`, never built wrong):
artifacts (input, output, archive location), `containerSet`, `resource` and `data`
templates, `podSpecPatch` expressions over runtime inputs, the init-less layout
(`initlessPod.enabled`), and `$patch` directives in a podSpecPatch. Node ids, the deadline
and the workflow's uid are run-time values: the built pods carry placeholders for them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.argo_template import TemplateError, split_tags, substitute
from workflows.controller_config import controller_config as parse_controller_config
from workflows.pod_patch import apply_pod_spec_patches, strategic_merge

#: The executor image of v4.1.2 when the ConfigMap names none (controller/config.go 116-125).
DEFAULT_EXECUTOR_IMAGE = "quay.io/argoproj/argoexec:v4.1.2"
#: Where the init container copies argoexec for the emissary (common.LegacyArgoExecBinPath).
ARGOEXEC = "/var/run/argo/argoexec"
#: The controller's log options passed to every argoexec (workflowpod.go 1206-1210).
EXECUTOR_LOG_OPTS = ["--loglevel", "info", "--log-format", "text", "--gloglevel", "0"]
WORKFLOW_LABELS = "workflows.argoproj.io"
SCRIPT_SOURCE = "/argo/staging/script"
ARGO_SIDECARS = ("wait",)
POD_TEMPLATE_TYPES = ("container", "script")
UNMODELLED_TYPES = ("containerSet", "resource", "data")
ON_DEMAND = "on-demand"
FIRST = "first"


class PodBuildError(ValueError):
    """A workflow whose pods cannot be built offline, naming the template and why."""


@dataclass(frozen=True)
class BuiltPod:
    """One pod the controller would create for a template's attempt."""

    template: str
    """The container/script template."""
    attempt: str
    """`first` (retry 0), `on-demand` (the first retry whose patch leaves Spot), or
    `retry-N` for another distinct patch result."""
    spec: dict[str, Any]
    """The pod spec after Argo's additions and the podSpecPatch."""
    retries: int = 0
    """The retry number this pod was built for (`{{retries}}`)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Labels and annotations the controller sets."""

    @property
    def containers(self) -> list[str]:
        """Names of the init containers then the containers, in pod order."""
        return [c["name"] for c in self.spec.get("initContainers") or []] + \
            [c["name"] for c in self.spec.get("containers") or []]


def workflow_spec(manifest: dict[str, Any],
                  workflow_templates: Mapping[str, dict[str, Any]] | None = None,
                  defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec the controller executes: defaults, then the referenced template, then ours.

    A CronWorkflow's `workflowSpec` is the workflow's spec. With `workflowTemplateRef` the
    template's spec is merged under the workflow's, arguments merged by name
    (`operator.go` setExecWorkflow, `workflow/util/merge.go`); `workflowDefaults` of the
    controller configuration lie under both.
    """
    kind = manifest.get("kind")
    spec = manifest.get("spec") or {}
    if kind == "CronWorkflow":
        spec = spec.get("workflowSpec") or {}
    spec = copy.deepcopy(spec)
    reference = spec.pop("workflowTemplateRef", None)
    layers = [(defaults or {}).get("spec") or {}]
    if reference is not None:
        name = reference.get("name")
        found = (workflow_templates or {}).get(name)
        if found is None:
            raise PodBuildError(
                f"{kind} {manifest.get('metadata', {}).get('name')}: workflowTemplateRef "
                f"{name!r} not found among the WorkflowTemplates given")
        layers.append(found.get("spec") or {})
    layers.append(spec)
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge_spec(merged, layer)
    return merged


def _merge_spec(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = strategic_merge(base, {k: v for k, v in over.items() if k != "arguments"})
    parameters = {p["name"]: p for p in (base.get("arguments") or {}).get("parameters") or []}
    for parameter in (over.get("arguments") or {}).get("parameters") or []:
        parameters[parameter["name"]] = {**parameters.get(parameter["name"], {}), **parameter}
    if parameters:
        merged["arguments"] = {"parameters": list(parameters.values())}
    return merged


def global_scope(spec: dict[str, Any], name: str, namespace: str,
                 parameters: Mapping[str, str] | None = None) -> dict[str, str]:
    """`workflow.*` variables a pod's fields may use, argument defaults then `parameters`."""
    values = {p["name"]: p.get("value") for p in (spec.get("arguments") or {}).get(
        "parameters") or []}
    values.update(parameters or {})
    scope = {f"workflow.parameters.{k}": str(v) for k, v in values.items() if v is not None}
    scope.update({"workflow.name": name, "workflow.namespace": namespace,
                  "workflow.serviceAccountName": spec.get("serviceAccountName", "default")})
    return scope


def _keep_unresolved(value: Any, scope: dict[str, str]) -> Any:
    """Simple tags the scope knows replaced; run-time tags (inputs, expressions) kept."""
    if isinstance(value, str):
        known = {tag.strip(): None for _, _, tag in split_tags(value)
                 if not tag.startswith("=") and tag.strip() in scope}
        return substitute(value, {k: scope[k] for k in known}, strict=False) \
            if known else value
    if isinstance(value, list):
        return [_keep_unresolved(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: _keep_unresolved(item, scope) for key, item in value.items()}
    return value


def exec_container(name: str, config: dict[str, Any], workflow: str) -> dict[str, Any]:
    """Argo's `init`/`wait` container: only what the ConfigMap's `executor` sets."""
    executor = config.get("executor") or {}
    env = [
        {"name": "ARGO_POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                             "fieldPath": "metadata.name"}}},
        {"name": "ARGO_POD_UID", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                            "fieldPath": "metadata.uid"}}},
        {"name": "ARGO_WORKFLOW_NAME", "value": workflow},
        {"name": "ARGO_WORKFLOW_UID", "value": "<workflow uid>"},
    ]
    if config.get("instanceID"):
        env.append({"name": "ARGO_INSTANCE_ID", "value": config["instanceID"]})
    env += copy.deepcopy(executor.get("env") or [])
    container: dict[str, Any] = {
        "name": name,
        "image": executor.get("image") or DEFAULT_EXECUTOR_IMAGE,
        "command": ["argoexec", name, *EXECUTOR_LOG_OPTS],
        "env": env,
    }
    for key in ("imagePullPolicy", "resources", "securityContext", "args"):
        if executor.get(key):
            container[key] = copy.deepcopy(executor[key])
    return container


def _template_kind(template: dict[str, Any]) -> str | None:
    for kind in (*POD_TEMPLATE_TYPES, *UNMODELLED_TYPES):
        if template.get(kind) is not None:
            return kind
    return None


def _refuse_unmodelled(template: dict[str, Any], config: dict[str, Any]) -> None:
    name = template.get("name")
    if (config.get("initlessPod") or {}).get("enabled"):
        raise PodBuildError("initlessPod.enabled: the init-less layout is not modelled")
    if (template.get("inputs") or {}).get("artifacts") or \
            (template.get("outputs") or {}).get("artifacts") or template.get("archiveLocation"):
        raise PodBuildError(f"template {name}: artifacts are not modelled")


def build_template_pod(template: dict[str, Any], spec: dict[str, Any], config: dict[str, Any],
                       scope: dict[str, str], retries: int = 0) -> BuiltPod:
    """The pod of one container/script template's attempt `retries`."""
    name = template["name"]
    _refuse_unmodelled(template, config)
    kind = _template_kind(template)
    if kind not in POD_TEMPLATE_TYPES:
        raise PodBuildError(f"template {name}: {kind} templates are not modelled")
    workflow = scope["workflow.name"]
    body = _keep_unresolved(copy.deepcopy(template[kind]), scope)
    body.pop("source", None)
    main = {"name": "main", **body}
    if kind == "script" and template[kind].get("source"):
        main["args"] = [*(main.get("args") or []), SCRIPT_SOURCE]
    if config.get("mainContainer"):
        main = strategic_merge(config["mainContainer"], main)

    pod: dict[str, Any] = {"restartPolicy": "Never"}
    pod["volumes"] = [{"name": "var-run-argo", "emptyDir": {}},
                      {"name": "tmp-dir-argo", "emptyDir": {}},
                      *copy.deepcopy(template.get("volumes") or [])]
    if config.get("kubeConfig"):
        raise PodBuildError("kubeConfig: an out-of-cluster executor is not modelled")
    deadline = _deadline(template.get("activeDeadlineSeconds"), spec.get("activeDeadlineSeconds"))
    if deadline is not None:
        pod["activeDeadlineSeconds"] = deadline
    for key in ("imagePullSecrets", "hostNetwork", "dnsPolicy", "dnsConfig"):
        if spec.get(key) is not None:
            pod[key] = copy.deepcopy(spec[key])
    account = template.get("serviceAccountName") or spec.get("serviceAccountName")
    if account:
        pod["serviceAccountName"] = account
    automount = template.get("automountServiceAccountToken",
                             spec.get("automountServiceAccountToken"))
    if automount is False:
        pod["automountServiceAccountToken"] = False
    wait = exec_container("wait", config, workflow)
    init = exec_container("init", config, workflow)
    pod["containers"] = [wait, main]
    pod["initContainers"] = [init]
    for key, template_key, spec_key in (
            ("nodeSelector", "nodeSelector", "nodeSelector"), ("affinity", "affinity", "affinity"),
            ("tolerations", "tolerations", "tolerations"),
            ("schedulerName", "schedulerName", "schedulerName"),
            ("priorityClassName", "priorityClassName", "podPriorityClassName"),
            ("securityContext", "securityContext", "securityContext")):
        value = template.get(template_key) or spec.get(spec_key)
        if value:
            pod[key] = copy.deepcopy(value)
    aliases = [*(spec.get("hostAliases") or []), *(template.get("hostAliases") or [])]
    if aliases:
        pod["hostAliases"] = aliases
    _add_volume_references(pod, template, spec)
    if kind == "script":
        pod["volumes"].append({"name": "argo-staging", "emptyDir": {}})
        staging = {"name": "argo-staging", "mountPath": "/argo/staging"}
        init.setdefault("volumeMounts", []).append(dict(staging))
        main.setdefault("volumeMounts", []).append(dict(staging))
    pod["initContainers"] += copy.deepcopy(template.get("initContainers") or [])
    pod["containers"] += copy.deepcopy(template.get("sidecars") or [])
    wait.setdefault("volumeMounts", []).extend(
        {**mount, "mountPath": "/mainctrfs" + mount["mountPath"], "readOnly": False}
        for mount in main.get("volumeMounts") or [])
    if not wait["volumeMounts"]:
        del wait["volumeMounts"]
    for container in pod["initContainers"]:
        container.setdefault("volumeMounts", []).append(
            {"name": "var-run-argo", "mountPath": "/var/run/argo"})
    _add_argo_env(pod, template, workflow)

    patches = [p for p in (spec.get("podSpecPatch"), template.get("podSpecPatch")) if p]
    patch_scope = {**scope, "retries": str(retries), "pod.name": f"<pod of {name}>"}
    try:
        texts = [substitute(p, patch_scope) for p in patches]
    except TemplateError as exc:
        raise PodBuildError(f"template {name}: podSpecPatch: {exc}") from exc
    pod = apply_pod_spec_patches(pod, texts)
    _add_emissary(pod, config)
    return BuiltPod(name, FIRST, pod, retries, _metadata(template, spec, workflow))


def _deadline(template_value: Any, workflow_value: Any) -> int | None:
    values = [int(v) for v in (template_value, workflow_value)
              if v is not None and str(v).isdigit()]
    return min(values) if values else None


def _add_volume_references(pod: dict[str, Any], template: dict[str, Any],
                           spec: dict[str, Any]) -> None:
    available = {v["name"]: v for v in [*(spec.get("volumes") or []),
                                        *(template.get("volumes") or [])]}
    present = {v["name"] for v in pod["volumes"]}
    containers = [pod["containers"][1], *(template.get("initContainers") or []),
                  *(template.get("sidecars") or [])]
    for container in containers:
        for mount in container.get("volumeMounts") or []:
            if mount["name"] not in available:
                raise PodBuildError(f"template {template['name']}: volume "
                                    f"'{mount['name']}' not found in workflow spec")
            if mount["name"] not in present:
                pod["volumes"].append(copy.deepcopy(available[mount["name"]]))
                present.add(mount["name"])


def _add_argo_env(pod: dict[str, Any], template: dict[str, Any], workflow: str) -> None:
    simplified = {**copy.deepcopy(template),
                  "inputs": {"artifacts": (template.get("inputs") or {}).get("artifacts")}}
    common = [{"name": "ARGO_NODE_ID", "value": "<node id>"},
              {"name": "ARGO_INCLUDE_SCRIPT_OUTPUT", "value": str("script" in template).lower()},
              {"name": "ARGO_DEADLINE", "value": "<workflow deadline>"},
              {"name": "ARGO_WORKFLOW_NAME", "value": workflow}]
    for container in pod["initContainers"]:
        container["env"] = [*(container.get("env") or []),
                            {"name": "ARGO_CONTAINER_NAME", "value": container["name"]},
                            {"name": "ARGO_TEMPLATE", "value": json.dumps(simplified)},
                            *copy.deepcopy(common)]
    for container in pod["containers"]:
        container["env"] = [*(container.get("env") or []),
                            {"name": "ARGO_CONTAINER_NAME", "value": container["name"]},
                            *copy.deepcopy(common)]


def _add_emissary(pod: dict[str, Any], config: dict[str, Any]) -> None:
    executor_image = (config.get("executor") or {}).get("image") or DEFAULT_EXECUTOR_IMAGE
    for index, container in enumerate(pod["containers"]):
        if container["name"] not in ARGO_SIDECARS:
            if not container.get("command"):
                raise PodBuildError(
                    f"container {container['name']}: no command; Argo would look up the "
                    "image's entrypoint in the registry, which is not modelled")
            container["command"] = [ARGOEXEC, "emissary", *EXECUTOR_LOG_OPTS, "--",
                                    *container["command"]]
        mounts = container.setdefault("volumeMounts", [])
        if container.get("image") == executor_image:
            mounts.append({"name": "tmp-dir-argo", "mountPath": "/tmp", "subPath": str(index)})
        mounts.append({"name": "var-run-argo", "mountPath": "/var/run/argo"})


def _metadata(template: dict[str, Any], spec: dict[str, Any], workflow: str) -> dict[str, Any]:
    labels = {f"{WORKFLOW_LABELS}/workflow": workflow, f"{WORKFLOW_LABELS}/completed": "false"}
    annotations = {"kubectl.kubernetes.io/default-container": "main"}
    for source in ((spec.get("podMetadata") or {}), (template.get("metadata") or {})):
        labels.update(source.get("labels") or {})
        annotations.update(source.get("annotations") or {})
    if spec.get("podGC"):
        annotations[f"{WORKFLOW_LABELS}/pod-gc-strategy"] = \
            f"{spec['podGC'].get('strategy', '')}/0s"
    return {"labels": labels, "annotations": annotations}


def leaves_spot(spec: dict[str, Any]) -> bool:
    """Whether a pod spec keeps off Spot nodes.

    It does when it does not select Spot and its required node affinity excludes nodes
    labelled `cloud.google.com/gke-spot` in every term.
    """
    from workflows.settings import SPOT_LABEL

    selector = spec.get("nodeSelector") or {}
    if selector.get(SPOT_LABEL) == "true":
        return False
    terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    return bool(terms) and all(
        any(e.get("key") == SPOT_LABEL and e.get("operator") == "DoesNotExist"
            for e in term.get("matchExpressions") or []) for term in terms)


def _retry_limit(template: dict[str, Any]) -> int:
    limit = (template.get("retryStrategy") or {}).get("limit")
    if limit is None:
        return 0
    if not str(limit).isdigit():
        raise PodBuildError(f"template {template['name']}: retryStrategy.limit {limit!r} is "
                            "not a number known before the run")
    return int(limit)


def build_pods(manifest: dict[str, Any], controller_config: dict[str, Any] | None,
               *, workflow_templates: Mapping[str, dict[str, Any]] | None = None,
               parameters: Mapping[str, str] | None = None) -> list[BuiltPod]:
    """Every distinct pod the controller would create for the container/script templates.

    Args:
        manifest: a Workflow, WorkflowTemplate or CronWorkflow document.
        controller_config: the `workflow-controller-configmap` document, or its
            parsed configuration, or None for the install manifests' empty one.
        workflow_templates: WorkflowTemplates by name, for a `workflowTemplateRef`.
        parameters: workflow parameter values overriding the argument defaults.

    Returns:
        For each template, the pod of its first try, then one per later retry whose
        podSpecPatch gives a different pod (`on-demand` when that pod leaves Spot).

    Raises:
        PodBuildError: a template or configuration outside what is modelled, or one Argo
            would refuse (a volume not found, a podSpecPatch that does not evaluate).
    """
    config = parse_controller_config(controller_config)
    spec = workflow_spec(manifest, workflow_templates, config.get("workflowDefaults"))
    metadata = manifest.get("metadata") or {}
    name = metadata.get("name") or metadata.get("generateName") or "workflow"
    scope = global_scope(spec, name, metadata.get("namespace", "default"), parameters)
    pods: list[BuiltPod] = []
    for template in spec.get("templates") or []:
        if _template_kind(template) is None:
            continue  # steps, DAG, suspend: no pod
        seen: list[dict[str, Any]] = []
        for retries in range(_retry_limit(template) + 1):
            built = build_template_pod(template, spec, config, scope, retries)
            if built.spec in seen:
                continue
            seen.append(built.spec)
            attempt = FIRST if retries == 0 else \
                ON_DEMAND if leaves_spot(built.spec) else f"retry-{retries}"
            pods.append(BuiltPod(built.template, attempt, built.spec, retries, built.metadata))
    return pods
