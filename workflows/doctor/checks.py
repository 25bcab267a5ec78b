"""The doctor's checks: one verdict per thing the walk-through needs, with what to do.

Each check reads a `Snapshot` (what the API server returned) and gives a `Check`: its
name, pass or fail, what was found, and on a failure the command or step that fixes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workflows.doctor.cluster import Access, Snapshot, Target
from workflows.image import IMAGE_ENV, ImageError, check_image
from workflows.settings import SPOT_LABEL, WorkflowSettings

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
SUBMITTER = "fraudpipe-submitter"
WORKER = "prefect-worker"
TOOLBOX = "fraudpipe-toolbox"
#: What a registry check would need, said wherever the image passes by name only.
REGISTRY_NOTE = ("not pulled: that the registry holds it needs the registry's credentials "
                 "(Artifact Registry: `gcloud artifacts docker images describe IMAGE`, and "
                 "roles/artifactregistry.reader for the nodes' service account)")


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """`[ ok ] name: detail` or `[FAIL] name: detail -> fix`."""
        mark = " ok " if self.ok else "FAIL"
        return f"[{mark}] {self.name}: {self.detail}" + (
            f" -> {self.fix}" if not self.ok and self.fix else "")


def target(settings: WorkflowSettings) -> Target:
    """The names the walk-through gives the objects, and the access each account needs."""
    namespace, argo = settings.namespace, settings.argo_namespace
    submitter = f"system:serviceaccount:{namespace}:{SUBMITTER}"
    workflow = f"system:serviceaccount:{namespace}:{settings.service_account}"
    reviews = [Access(subject, verb, "argoproj.io", resource, namespace)
               for subject in ("you", submitter)
               for verb, resource in (("create", "workflows"), ("get", "workflowtemplates"),
                                      ("get", "workflows"))]
    reviews += [Access(workflow, verb, "argoproj.io", "workflowtaskresults", namespace)
                for verb in ("create", "patch")]
    return Target(
        namespace=namespace, argo_namespace=argo, configmap="workflow-controller-configmap",
        template=settings.template_name, cron=settings.cron_name, claim=settings.pvc_name,
        storage_class=settings.filestore_storage_class, compute_class=settings.compute_class,
        deployments=(f"{argo}/argo-server", f"{argo}/workflow-controller",
                     f"{namespace}/{WORKER}", f"{namespace}/{TOOLBOX}"),
        reviews=tuple(reviews))


def _unread(snapshot: Snapshot, key: str) -> str:
    error = snapshot.errors.get(key)
    return f"cannot read it ({error}): your kubeconfig's user needs get on it" if error else ""


def check_image_names(snapshot: Snapshot, settings: WorkflowSettings,
                      given: str | None) -> Check:
    """Every place that names the step image names the same pushed image."""
    places: dict[str, str] = {}
    if given:
        places[IMAGE_ENV] = given
    template = snapshot.workflow_template or {}
    for parameter in ((template.get("spec") or {}).get("arguments") or {}).get(
            "parameters") or []:
        if parameter.get("name") == "image" and "value" in parameter:
            places[f"workflowtemplate/{settings.template_name}"] = parameter["value"]
    cron_spec = ((snapshot.cron_workflow or {}).get("spec") or {}).get("workflowSpec") or {}
    for parameter in (cron_spec.get("arguments") or {}).get("parameters") or []:
        if parameter.get("name") == "image":
            places[f"cronworkflow/{settings.cron_name}"] = parameter.get("value", "")
    for key, deployment in snapshot.deployments.items():
        if key.split("/", 1)[1] in (WORKER, TOOLBOX) and deployment:
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                places[f"deployment/{key.split('/', 1)[1]}"] = container.get("image", "")
    if not places:
        return Check("image", False, f"no image anywhere: {IMAGE_ENV} is unset and "
                     f"workflowtemplate/{settings.template_name} names none",
                     f"export {IMAGE_ENV}=REGISTRY/PATH/fraudpipe-step:TAG, then "
                     "`fraudpipe render` and apply the template (step 8)")
    wrong = []
    for place, name in places.items():
        try:
            check_image(name, place)
        except ImageError as exc:
            wrong.append(str(exc).split(": expected", 1)[0])
    if wrong:
        return Check("image", False, "; ".join(wrong),
                     f"export {IMAGE_ENV} to the pushed image; `fraudpipe render` and apply "
                     "(step 8); `kubectl set image` the worker and toolbox (step 5)")
    names = set(places.values())
    if len(names) > 1:
        listed = ", ".join(f"{place}={name}" for place, name in places.items())
        return Check("image", False, f"different images: {listed}",
                     f"render and apply with one {IMAGE_ENV} (steps 5 and 8)")
    return Check("image", True, f"{names.pop()} in {', '.join(places)}; {REGISTRY_NOTE}")


def check_pod_security(snapshot: Snapshot, settings: WorkflowSettings,
                       local_template: Callable[[], dict[str, Any]],
                       image: str | None = None) -> Check:
    """The pods Argo builds, with the live controller ConfigMap, against the namespace."""
    from workflows.admission import violations
    from workflows.controller_config import ControllerConfigError
    from workflows.pods import PodBuildError, build_pods

    name = "pod security"
    if snapshot.namespace is None:
        return Check(name, False, _unread(snapshot, "namespace")
                     or f"namespace {settings.namespace} does not exist",
                     "kubectl apply -k deployments/k8s (step 3)")
    labels = snapshot.namespace["metadata"].get("labels") or {}
    level = labels.get(ENFORCE_LABEL, "privileged")
    template, source = snapshot.workflow_template, "installed"
    if template is None:
        template, source = local_template(), "rendered here (not installed yet)"
    try:
        # The image does not change admission; a template without one still builds.
        pods = build_pods(template, snapshot.controller_configmap,
                          parameters={"image": image or "registry.invalid/fraudpipe-step:0"})
    except (PodBuildError, ControllerConfigError) as exc:
        return Check(name, False, f"cannot build the pods Argo would: {exc}",
                     "kubectl apply -f deployments/argo/workflow-controller-configmap.yaml")
    refused = []
    for pod in pods:
        for problem in violations(pod.spec, level, pod.metadata):
            refused.append(f"{pod.template}/{pod.attempt}: {problem}")
    shape = f"{len(pods)} pods of the {source} template, containers " + \
        "/".join(sorted({",".join(p.containers) for p in pods}))
    if refused:
        shown = "; ".join(refused[:2]) + (f"; and {len(refused) - 2} more"
                                          if len(refused) > 2 else "")
        return Check(name, False, f"namespace {settings.namespace} enforces {level}: "
                     f"{len(refused)} refusal(s) in {shape}: {shown}",
                     f"kubectl apply -f deployments/argo/workflow-controller-configmap.yaml; "
                     f"kubectl -n {settings.argo_namespace} rollout restart "
                     "deployment/workflow-controller")
    return Check(name, True, f"namespace {settings.namespace} enforces {level}; {shape}: "
                 "0 refused")


def check_executor(snapshot: Snapshot, settings: WorkflowSettings) -> Check:
    """The controller's `executor` settings: a restricted securityContext and requests."""
    from workflows.controller_config import ControllerConfigError, parse_configmap

    name = "controller executor"
    fix = (f"kubectl apply -f deployments/argo/workflow-controller-configmap.yaml; kubectl -n "
           f"{settings.argo_namespace} rollout restart deployment/workflow-controller")
    if snapshot.controller_configmap is None:
        return Check(name, False, _unread(snapshot, "controller_configmap") or
                     f"no workflow-controller-configmap in {settings.argo_namespace}: init "
                     "and wait run with no securityContext", fix)
    try:
        executor = parse_configmap(snapshot.controller_configmap).get("executor") or {}
    except ControllerConfigError as exc:
        return Check(name, False, str(exc), fix)
    context = executor.get("securityContext") or {}
    missing = []
    if context.get("allowPrivilegeEscalation") is not False:
        missing.append("allowPrivilegeEscalation: false")
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        missing.append("capabilities.drop: [ALL]")
    if context.get("runAsNonRoot") is not True:
        missing.append("runAsNonRoot: true")
    if (context.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        missing.append("seccompProfile: RuntimeDefault")
    requests = (executor.get("resources") or {}).get("requests") or {}
    if not {"cpu", "memory"} <= set(requests):
        missing.append("resources.requests cpu and memory (else Autopilot's defaults)")
    if missing:
        return Check(name, False, f"executor lacks {', '.join(missing)}", fix)
    return Check(name, True, f"restricted securityContext, requests cpu {requests['cpu']} "
                 f"memory {requests['memory']}")


def check_storage_class(snapshot: Snapshot, settings: WorkflowSettings) -> Check:
    """The claim's class exists; its binding mode says when the claim can bind."""
    name = "storage class"
    if snapshot.storage_class is None:
        wanted = ((snapshot.claim or {}).get("spec") or {}).get("storageClassName") \
            or settings.filestore_storage_class
        return Check(name, False, _unread(snapshot, "storage_class")
                     or f"{wanted} does not exist",
                     "enable the Filestore CSI driver (Autopilot has it), or render the claim "
                     "with a class that exists (`kubectl get storageclass`)")
    mode = snapshot.storage_class.get("volumeBindingMode", "Immediate")
    return Check(name, True, f"{snapshot.storage_class['metadata']['name']} "
                 f"({snapshot.storage_class.get('provisioner')}) binds {mode}")


def check_claim(snapshot: Snapshot, settings: WorkflowSettings) -> Check:
    """The share's claim is Bound, or says why not and what starts it."""
    name = "claim"
    ns = settings.namespace
    if snapshot.claim is None:
        return Check(name, False, _unread(snapshot, "claim") or
                     f"{settings.pvc_name} does not exist in {ns}",
                     "kubectl apply -f deployments/argo/filestore-pv-pvc.yaml (step 8)")
    phase = (snapshot.claim.get("status") or {}).get("phase", "Pending")
    if phase == "Bound":
        return Check(name, True, f"{settings.pvc_name} Bound to "
                     f"{snapshot.claim['spec'].get('volumeName')}")
    mode = (snapshot.storage_class or {}).get("volumeBindingMode", "Immediate")
    if mode == "WaitForFirstConsumer":
        return Check(name, False, f"{settings.pvc_name} {phase}: its class binds on first "
                     "consumer and no pod mounts it yet",
                     f"kubectl -n {ns} scale deployment/{TOOLBOX} --replicas=1, then wait "
                     "for Bound (step 8)")
    return Check(name, False, f"{settings.pvc_name} {phase} although its class binds at once",
                 f"kubectl -n {ns} describe pvc {settings.pvc_name} (provisioning events)")


def _available(deployment: dict[str, Any] | None) -> int:
    return int(((deployment or {}).get("status") or {}).get("availableReplicas") or 0)


def check_template(snapshot: Snapshot, settings: WorkflowSettings) -> Check:
    """The versioned WorkflowTemplate every path starts from is installed."""
    name = f"workflowtemplate/{settings.template_name}"
    if snapshot.workflow_template is None:
        return Check("workflow template", False, _unread(snapshot, "workflow_template")
                     or f"{name} is not installed in {settings.namespace}: argo submit "
                     "--from, the CronWorkflow and the Prefect flows all start from it",
                     "kubectl apply -f deployments/argo/fraudpipe-train-workflowtemplate.yaml "
                     "(step 8)")
    cron = "installed" if snapshot.cron_workflow is not None else "not installed (optional)"
    return Check("workflow template", True, f"{name} installed; "
                 f"cronworkflow/{settings.cron_name} {cron}")


def check_argo(snapshot: Snapshot, settings: WorkflowSettings,
               server_url_answer: str | None = None) -> Check:
    """The Argo Server and controller run (and answer at the given URL, if one is given)."""
    argo = settings.argo_namespace
    down = [key.split("/", 1)[1] for key in (f"{argo}/argo-server", f"{argo}/workflow-controller")
            if _available(snapshot.deployments.get(key)) < 1]
    if down:
        unread = [_unread(snapshot, f"deployment {argo}/{d}") for d in down]
        detail = "; ".join(u for u in unread if u) or \
            f"{', '.join(down)} not available in {argo}"
        return Check("argo server", False, detail,
                     f"kubectl -n {argo} rollout status deployment/argo-server (step 6)")
    if server_url_answer is not None and not server_url_answer.startswith("ok"):
        return Check("argo server", False, server_url_answer,
                     "check the ArgoServer block's url and token (step 10)")
    extra = f"; {server_url_answer[3:]}" if server_url_answer else ""
    return Check("argo server", True, f"argo-server and workflow-controller available in "
                 f"{argo}{extra}")


def check_access(snapshot: Snapshot, settings: WorkflowSettings) -> list[Check]:
    """One line per account: may it do what its part of the walk-through does?"""
    checks = []
    for subject in dict.fromkeys(a.subject for a in snapshot.access):
        reviews = [a for a in snapshot.access if a.subject == subject]
        short = subject.rsplit(":", 1)[-1]
        refused = [f"{a.verb} {a.resource}" + (f" ({a.reason})" if a.allowed is None else "")
                   for a in reviews if not a.allowed]
        allowed = ", ".join(f"{a.verb} {a.resource}" for a in reviews)
        if not refused:
            checks.append(Check(f"rbac {short}", True, f"may {allowed} in {settings.namespace}"))
            continue
        fix = ("kubectl apply -k deployments/k8s (step 3)" if short == SUBMITTER else
               "kubectl apply -f deployments/argo/fraudpipe-rbac.yaml (step 8)"
               if short == settings.service_account else
               f"ask for a Role with these verbs in {settings.namespace}")
        checks.append(Check(f"rbac {short}", False, f"may not {', '.join(refused)} in "
                            f"{settings.namespace}", fix))
    return checks


def _ready(node: dict[str, Any]) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def check_nodes(snapshot: Snapshot, settings: WorkflowSettings) -> list[Check]:
    """Spot capacity (or the Spot-then-on-demand ComputeClass) and on-demand nodes."""
    ready = [n for n in snapshot.nodes if _ready(n)]
    spot = [n for n in ready if (n["metadata"].get("labels") or {}).get(SPOT_LABEL) == "true"]
    on_demand = len(ready) - len(spot)
    klass = snapshot.compute_class
    if klass is not None:
        priorities = (klass.get("spec") or {}).get("priorities") or []
        falls_back = any(p.get("spot") is False for p in priorities)
        auto = ((klass.get("spec") or {}).get("nodePoolAutoCreation") or {}).get("enabled")
        spot_check = Check("spot", bool(falls_back), f"ComputeClass {settings.compute_class}: "
                           f"{'Spot then on-demand' if falls_back else 'no on-demand priority'}"
                           f"{', creates node pools' if auto else ''}; {len(spot)} Spot "
                           "node(s) ready",
                           "kubectl apply -f deployments/argo/fraudpipe-computeclass.yaml")
    else:
        detail = _unread(snapshot, "compute_class") or \
            f"no ComputeClass {settings.compute_class}"
        spot_check = Check("spot", False, f"{detail}; {len(spot)} Spot node(s) ready: first "
                           "tries wait for Spot capacity without falling back",
                           "kubectl apply -f deployments/argo/fraudpipe-computeclass.yaml")
    if snapshot.errors.get("nodes"):
        return [spot_check, Check("on-demand", False, _unread(snapshot, "nodes"),
                                  "ask for list on nodes")]
    demand = Check("on-demand", on_demand > 0,
                   f"{on_demand} on-demand node(s) ready of {len(snapshot.nodes)}",
                   "Redis, the Prefect worker and the flow-run Jobs need on-demand nodes: "
                   "on Standard add a node pool without Spot")
    return [spot_check, demand]


def run_checks(snapshot: Snapshot, settings: WorkflowSettings,
               local_template: Callable[[], dict[str, Any]], image: str | None,
               server_url_answer: str | None = None) -> list[Check]:
    """Every check, in the walk-through's order.

    `local_template` renders this checkout's WorkflowTemplate (Hera: seconds), called only
    when the cluster has none installed.
    """
    return [
        check_image_names(snapshot, settings, image),
        check_pod_security(snapshot, settings, local_template, image),
        check_executor(snapshot, settings),
        check_storage_class(snapshot, settings),
        check_claim(snapshot, settings),
        check_template(snapshot, settings),
        check_argo(snapshot, settings, server_url_answer),
        *check_access(snapshot, settings),
        *check_nodes(snapshot, settings),
    ]
