"""A local stand-in for the Argo controller: the rules fraudpipe's workflows depend on.

Each rule is re-implemented from the controller's source (argoproj/argo-workflows at
v4.1.2; the same at v3.7.18 unless noted), and names the file it comes from. Nothing
here is copied code; it is what the source says the controller does:

- Tags (`util/template/template.go`, which hands the text to valyala/fasttemplate): a tag
  opens at `{{` and ends at the FIRST `}}` after it, also inside an expression; a tag
  starting with `=` is an expression (`util/template/kind.go`), evaluated with expr-lang
  (`util/template/expression_template.go`), whose environment is the flat variable map
  expanded on dots (`util/expr/env/env.go`: `asInt` is expr's `int`). Any other tag is a
  variable that must resolve (`util/template/simple_template.go`).
- podSpecPatch (`workflow/controller/workflowpod.go` processPodSpecPatch): substituted
  with the attempt's variables, `retries` included (set in `operator.go` executeTemplate),
  then parsed as YAML/JSON, checked to be a PodSpec and strategic-merged onto the pod spec
  (`workflow/util/util.go` ApplyPodSpecPatch).
- Retries (`workflow/controller/operator.go` processNodeRetries, executeTemplate): a
  Retry node whose attempts `name(N)` are pods in the loop's boundary; backoff delay
  `duration * factor^(attempts-1)` capped by `cap`, waited from the last attempt's end;
  `maxDuration` is a deadline counted from the FIRST attempt's start ("Max duration limit
  exceeded", "Backoff would exceed max duration limit") that also bounds the next pod;
  `retryPolicy` then `limit` ("No more retries left") then `expression` over `lastRetry.*`
  (strings; exitCode "-1" without one; built by buildRetryStrategyLocalScope), all of
  which must allow the retry.
- Steps (`workflow/controller/steps.go`): groups one after the other; `withParam` items
  expanded in list order and started in that order; `when` decides; a group fails when a
  child fails, and its steps node with "child '...' failed".
- Counting (`workflow/controller/node_counters.go`, `operator.go` checkParallelism):
  `parallelism` counts the boundary's Running/Pending Pod, Steps and DAG children (not a
  Retry node); `failFast` trips on any Failed/Error Pod, Steps or DAG child of the
  boundary, a failed retry attempt included.
- Pod messages (`operator.go`, "%s (exit code %d)"): `main: Error (exit code N)` plus the
  container's termination message; with `terminationMessagePolicy:
  FallbackToLogsOnError` Kubernetes uses the log tail when the container failed.

Time is simulated: pods take the time the test gives them, the clock jumps from event to
event, nothing sleeps. Scheduling uses Kubernetes' rules for nodeSelector, required node
affinity and NoSchedule taints (Kubernetes docs, "Assign Pods to Nodes", "Taints and
Tolerations"). Known differences from a live controller are listed in
`docs/argo-rules.md`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workflows.argo_template import (  # noqa: F401 (re-exported for the tests)
    BINARY,
    FUNCTIONS,
    GO_UNITS,
    TOKEN,
    Parser,
    TemplateError,
    as_int,
    evaluate,
    expand,
    expression_tags,
    parse_duration,
    parse_expression,
    split_tags,
    substitute,
    substitute_all,
    to_json,
    tokenize,
)
from workflows.pod_patch import (  # noqa: F401 (re-exported for the tests)
    PodSpecPatchError,
    apply_pod_spec_patches,
    strategic_merge,
)
from workflows.pods import build_template_pod
from workflows.settings import COMPUTE_CLASS_LABEL, WorkflowSettings

SPOT_LABEL = "cloud.google.com/gke-spot"
PREEMPTED = "Pod was terminated due to imminent node shutdown"
DEADLINE_EXCEEDED = "Pod was active on the node longer than the specified deadline"

FULFILLED = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")
FAILED = ("Failed", "Error")


# ----------------------------------------------------------------------------------------
# Pod spec patch (workflowpod.go, workflow/util/util.go) and scheduling (Kubernetes)
# ----------------------------------------------------------------------------------------

def apply_pod_spec_patch(pod_spec: dict[str, Any], patch_text: str) -> dict[str, Any]:
    """Parse the substituted patch (YAML or JSON), check it is a PodSpec map, merge it
    (Kubernetes' strategic merge, `workflows/pod_patch.py`)."""
    try:
        return apply_pod_spec_patches(pod_spec, [patch_text])
    except PodSpecPatchError as exc:
        raise TemplateError(str(exc)) from exc


@dataclass(frozen=True)
class NodePool:
    """A kind of Kubernetes node: its labels and NoSchedule taints."""

    name: str
    labels: dict[str, str]
    taints: tuple[tuple[str, str], ...] = ()

    @property
    def spot(self) -> bool:
        """Spot VMs: GKE labels them `cloud.google.com/gke-spot=true`."""
        return self.labels.get(SPOT_LABEL) == "true"


#: The Spot-first ComputeClass the committed templates select.
COMPUTE_CLASS = WorkflowSettings().compute_class
#: Spot nodes of Autopilot's Spot Pods (a pod selecting `gke-spot: "true"`).
SPOT_POOL = NodePool("spot", {SPOT_LABEL: "true"}, ((SPOT_LABEL, "true"),))
#: Nodes GKE creates for the ComputeClass: its Spot priority, then its on-demand one. GKE
#: labels and taints them with the class; its Spot nodes carry the Spot label and taint.
CLASS_SPOT_POOL = NodePool("class-spot", {SPOT_LABEL: "true", COMPUTE_CLASS_LABEL: COMPUTE_CLASS},
                           ((COMPUTE_CLASS_LABEL, COMPUTE_CLASS), (SPOT_LABEL, "true")))
CLASS_ON_DEMAND_POOL = NodePool("class-on-demand", {COMPUTE_CLASS_LABEL: COMPUTE_CLASS},
                                ((COMPUTE_CLASS_LABEL, COMPUTE_CLASS),))
#: Autopilot's default on-demand nodes.
ON_DEMAND_POOL = NodePool("on-demand", {})
#: In the order the scheduler (and the class's priorities) prefer them.
POOLS = (SPOT_POOL, CLASS_SPOT_POOL, CLASS_ON_DEMAND_POOL, ON_DEMAND_POOL)


class Capacity:
    """Which pools can get a node at a time: by default all, always.

    Subclasses model shortages; `changes()` lists the times availability changes, so the
    simulation re-tries Pending pods then.
    """

    def available(self, pool: NodePool, at: float) -> bool:
        """Whether a node of `pool` can be had at time `at`."""
        return True

    def changes(self) -> list[float]:
        """Times at which availability changes."""
        return []


class SpotShortage(Capacity):
    """No Spot capacity anywhere from `start` to `end` (seconds of the simulated clock)."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end

    def available(self, pool: NodePool, at: float) -> bool:
        return not (pool.spot and self.start <= at < self.end)

    def changes(self) -> list[float]:
        return [self.start, self.end]


def _tolerates(spec: dict[str, Any], key: str, value: str) -> bool:
    for toleration in spec.get("tolerations") or []:
        effect_ok = toleration.get("effect") in (None, "", "NoSchedule")
        if toleration.get("operator") == "Exists" and toleration.get("key") in (None, key):
            return effect_ok
        if toleration.get("key") == key and str(toleration.get("value")) == value:
            return effect_ok
    return False


def _expression_holds(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values")
    return {"In": lambda: labels.get(key) in (values or []),
            "NotIn": lambda: labels.get(key) not in (values or []),
            "Exists": lambda: key in labels,
            "DoesNotExist": lambda: key not in labels}[operator]()


def fits(spec: dict[str, Any], pool: NodePool) -> bool:
    """Whether a pod with `spec` may be scheduled on `pool` (nodeSelector, required node
    affinity, NoSchedule taints)."""
    if any(pool.labels.get(k) != str(v) for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required and not any(
            all(_expression_holds(e, pool.labels) for e in term.get("matchExpressions") or [])
            for term in required["nodeSelectorTerms"]):
        return False
    return all(_tolerates(spec, key, value) for key, value in pool.taints)


# ----------------------------------------------------------------------------------------
# The workflow: nodes, retries, steps, counting
# ----------------------------------------------------------------------------------------

@dataclass
class Node:
    """One node of `status.nodes`."""

    name: str
    type: str
    template: str
    boundary: str | None
    phase: str = "Running"
    started: float = 0.0
    finished: float | None = None
    message: str = ""
    children: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    exit_code: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def fulfilled(self) -> bool:
        return self.phase in FULFILLED


@dataclass
class PodCall:
    """A pod the controller starts: what the runner and the cluster see."""

    node: str
    template: str
    inputs: dict[str, str]
    retries: int | None
    body: dict[str, Any]
    """The substituted container or script (with `source`)."""
    outputs: list[dict[str, Any]]
    """The template's output parameters (substituted)."""
    spec: dict[str, Any]
    """The pod spec after podSpecPatch."""
    started: float
    deadline_seconds: float | None
    """activeDeadlineSeconds the pod gets (the template's, shortened by maxDuration)."""
    pool: NodePool | None = None
    running: float | None = None
    """When the pod got a node and started (None while it is Pending)."""


@dataclass
class PodResult:
    """How a pod ended: exit code, output parameters, log tail."""

    exit_code: int
    outputs: dict[str, str] = field(default_factory=dict)
    logs: str = ""


@dataclass
class Fate:
    """What the cluster does to one pod: run it for `seconds`, or preempt it after that."""

    seconds: float
    preempted: bool = False


class Preempting:
    """Each template runs for its duration; given (first day, retry number) pairs of
    `train-batch` are preempted after the given seconds."""

    def __init__(self, durations: dict[str, float],
                 preempt: dict[tuple[str, int], float] | None = None) -> None:
        self.durations, self.preempt = durations, preempt or {}

    def __call__(self, call: PodCall) -> Fate:
        after = self.preempt.get((call.inputs.get("first", ""), call.retries or 0))
        if call.template == "train-batch" and after is not None:
            return Fate(after, preempted=True)
        return Fate(self.durations.get(call.template, 60))


class Stuck(AssertionError):
    """The simulated workflow waits on nothing: a bug in the workflow or the executor."""


Runner = Callable[[PodCall], PodResult]
Cluster = Callable[[PodCall], Fate]


class Controller:
    """Runs one Workflow manifest by the rules above, on a simulated clock.

    Args:
        manifest: a Workflow (or WorkflowTemplate) document.
        parameters: values of workflow parameters (strings).
        runner: runs a pod's command and returns its result (called at the pod's start).
        cluster: decides each pod's duration and whether its node is preempted; a pod is
            preempted only if it was placed on a Spot node.
        pools: where pods may go, in the scheduler's order of preference (for a pod of the
            ComputeClass, the class's priorities: Spot, then on-demand).
        capacity: which pools can get a node when; a pod no available pool fits stays
            Pending (its activeDeadlineSeconds does not run) until one can.
        node_start_seconds: how long a new node takes before a placed pod runs.
        controller_config: the workflow controller's configuration (pods are built with
            `workflows.pods`, as the controller builds them).
    """

    def __init__(self, manifest: dict[str, Any], parameters: dict[str, str], runner: Runner,
                 cluster: Cluster, pools: tuple[NodePool, ...] = POOLS,
                 name: str = "fraudpipe-train-sim", capacity: Capacity | None = None,
                 node_start_seconds: float = 0.0,
                 controller_config: dict[str, Any] | None = None) -> None:
        self.spec = manifest["spec"]
        self.templates = {t["name"]: t for t in self.spec["templates"]}
        declared = {p["name"]: p.get("value") for p in self.spec["arguments"]["parameters"]}
        unknown = set(parameters) - set(declared)
        if unknown:
            raise TemplateError(f"parameters the workflow does not declare: {sorted(unknown)}")
        declared.update(parameters)
        self.globals = {f"workflow.parameters.{k}": str(v) for k, v in declared.items()}
        self.globals["workflow.name"] = name
        self.name = name
        self.runner = runner
        self.cluster = cluster
        self.pools = pools
        self.now = 0.0
        self.nodes: dict[str, Node] = {}
        self.pods: list[PodCall] = []
        self.results: dict[str, PodResult] = {}
        self._ends: dict[str, tuple[float, str, str, str | None, dict[str, str]]] = {}
        self._wakes: list[float] = []
        self.capacity = capacity or Capacity()
        self.node_start_seconds = node_start_seconds
        self.controller_config = controller_config or {}
        self._pending: dict[str, PodCall] = {}
        deadline = self.spec.get("activeDeadlineSeconds")
        #: The workflow's deadline (operator.go: pending nodes fail at it, retries stop).
        self.deadline = float(deadline) if deadline is not None else None

    # --- counting: node_counters.go ------------------------------------------------------
    def _count(self, boundary: str, types: tuple[str, ...], phases: tuple[str, ...]) -> int:
        return sum(1 for n in self.nodes.values()
                   if n.boundary == boundary and n.type in types and n.phase in phases)

    def active_children(self, boundary: str) -> int:
        return self._count(boundary, ("Pod", "Steps", "DAG"), ("Pending", "Running"))

    def active_pods(self, boundary: str) -> int:
        return self._count(boundary, ("Pod",), ("Pending", "Running"))

    def unsuccessful_children(self, boundary: str) -> int:
        return self._count(boundary, ("Pod", "Steps", "DAG"), FAILED)

    def mark(self, node: Node, phase: str, message: str | None = None) -> Node:
        node.phase = phase
        if message is not None:
            node.message = message
        if phase in FULFILLED and node.finished is None:
            node.finished = self.now
        return node

    # --- checkParallelism: operator.go --------------------------------------------------
    def parallelism_reached(self, template: dict[str, Any], node: Node | None,
                            boundary: str | None) -> bool:
        if node is not None and "steps" in template:
            if template.get("failFast") and self.unsuccessful_children(node.name) > 0:
                if self.active_pods(node.name) == 0:
                    self.mark(node, "Failed",
                              "template has failed or errored children and failFast enabled")
                return True
            if template.get("parallelism") and \
                    self.active_pods(node.name) >= template["parallelism"]:
                return True
        if boundary is not None and (node is None or node.phase not in ("Pending", "Running")):
            owner = self.nodes[boundary]
            owner_template = self.templates[owner.template]
            if owner_template.get("failFast") and self.unsuccessful_children(boundary) > 0:
                if self.active_pods(boundary) == 0:
                    self.mark(owner, "Failed",
                              "template has failed or errored children and failFast enabled")
                return True
            if owner_template.get("parallelism") and \
                    self.active_children(boundary) >= owner_template["parallelism"]:
                return True
        return False

    # --- checkTemplateTimeouts: operator.go --------------------------------------------
    def pending_timed_out(self, template: dict[str, Any], node: Node | None) -> bool:
        """`pendingTimeout` of the node executeTemplate is called with, if it is Pending.

        For a retried template that node is the Retry node, which is Running from its
        creation: a Pending attempt is never timed out (operator.go checkTemplateTimeouts
        is called before processNodeRetries, with the node named by the step).
        """
        if not template.get("pendingTimeout") or node is None or node.phase != "Pending":
            return False
        limit = node.started + parse_duration(template["pendingTimeout"])
        if self.now < limit:  # the controller requeues for the deadline, then finds it past
            self._wakes.append(limit)
            return False
        self._pending.pop(node.name, None)  # the controller deletes the timed-out pod
        self.mark(node, "Failed", "timeout")
        return True

    # --- executeTemplate: operator.go ---------------------------------------------------
    def execute(self, name: str, template_name: str, inputs: dict[str, str],
                boundary: str | None) -> Node | None:
        template = self.templates[template_name]
        declared = [p["name"] for p in template.get("inputs", {}).get("parameters", [])]
        if set(inputs) != set(declared):
            raise TemplateError(f"{template_name}: inputs {sorted(inputs)} != {sorted(declared)}")
        node = self.nodes.get(name)
        if node is not None and node.fulfilled:
            return node
        if self.pending_timed_out(template, node):
            return node
        if self.parallelism_reached(template, node, boundary):
            return node
        strategy = template.get("retryStrategy")
        if strategy is None:
            return self.execute_body(name, template, inputs, boundary, None, None)
        if node is None:
            node = self.nodes[name] = Node(name, "Retry", template_name, boundary,
                                           started=self.now, inputs=inputs)
        go_on, execution_deadline = self.process_retries(node, strategy)
        if not go_on or node.fulfilled:
            return node
        attempts = [self.nodes[c] for c in node.children]
        if attempts and not attempts[-1].fulfilled:
            attempt, retries = attempts[-1].name, len(attempts) - 1
        else:
            retries = len(attempts)
            attempt = f"{name}({retries})"
            node.children.append(attempt)
        self.execute_body(attempt, template, inputs, boundary, retries, execution_deadline)
        return node

    def execute_body(self, name: str, template: dict[str, Any], inputs: dict[str, str],
                     boundary: str | None, retries: int | None,
                     execution_deadline: float | None) -> Node:
        if "steps" in template:
            return self.execute_steps(name, template, inputs, boundary)
        existing = self.nodes.get(name)
        if existing is not None:
            return existing
        return self.start_pod(name, template, inputs, boundary, retries, execution_deadline)

    # --- processNodeRetries: operator.go ------------------------------------------------
    def process_retries(self, node: Node, strategy: dict[str, Any]) -> tuple[bool, float | None]:
        """(continue, execution deadline); marks the Retry node when it is over."""
        if node.fulfilled:
            return True, None
        attempts = [self.nodes[c] for c in node.children]
        if not attempts:
            return True, None
        last = attempts[-1]
        if not last.fulfilled:
            return True, None
        if last.phase not in FAILED:
            node.outputs = dict(last.outputs)
            self.mark(node, "Succeeded")
            return True, None
        if self.deadline is not None and self.now > self.deadline:
            self.mark(node, last.phase, "retry exceeded workflow deadline")
            return True, None
        limit = int(strategy["limit"]) if "limit" in strategy else None
        execution_deadline = None
        backoff = strategy.get("backoff")
        if backoff is not None:
            if backoff.get("maxDuration"):
                execution_deadline = attempts[0].started + parse_duration(backoff["maxDuration"])
                if self.now > execution_deadline:
                    self.mark(node, last.phase, "Max duration limit exceeded")
                    return True, None
            if not backoff.get("duration"):
                raise TemplateError("no base duration specified for retryStrategy")
            wait = parse_duration(backoff["duration"])
            factor = int(backoff.get("factor") or 0)
            if factor > 0:
                wait *= math.pow(factor, len(attempts) - 1)
            if backoff.get("cap"):
                wait = min(wait, parse_duration(backoff["cap"]))
            waiting_deadline = last.finished + wait
            if execution_deadline is not None and waiting_deadline > execution_deadline:
                self.mark(node, last.phase, "Backoff would exceed max duration limit")
                return True, None
            if self.now < waiting_deadline and limit is not None and len(attempts) <= limit:
                self._wakes.append(waiting_deadline)
                node.message = f"Backoff for {wait:g}s"
                return False, None
            node.message = ""
        policy = strategy.get("retryPolicy", "OnFailure")
        on_failed = policy in ("Always", "OnFailure")
        on_error = policy in ("Always", "OnError")
        if (last.phase == "Failed" and not on_failed) or (last.phase == "Error" and not on_error):
            self.mark(node, last.phase, last.message)
            return True, None
        if limit is not None and len(attempts) > limit:
            self.mark(node, last.phase, "No more retries left")
            return True, None
        if strategy.get("expression"):
            scope = {"retries": str(len(attempts) - 1),
                     "lastRetry.exitCode": last.exit_code if last.exit_code is not None else "-1",
                     "lastRetry.status": last.phase,
                     "lastRetry.duration": str(float((last.finished or 0) - last.started)),
                     "lastRetry.message": last.message}
            allowed = evaluate(strategy["expression"], scope)
            if not isinstance(allowed, bool):
                raise TemplateError(f"expression {strategy['expression']!r} is not boolean")
            if not allowed:
                self.mark(node, last.phase, "retryStrategy.expression evaluated to false")
                return True, None
        return True, execution_deadline

    # --- pods: workflowpod.go -----------------------------------------------------------
    def build_pod(self, template: dict[str, Any], scope: dict[str, str],
                  retries: int | None) -> dict[str, Any]:
        """The pod Argo builds (workflows/pods.py), podSpecPatch applied for `retries`."""
        try:
            return build_template_pod(template, self.spec, self.controller_config, scope,
                                      retries or 0).spec
        except ValueError as exc:
            raise TemplateError(str(exc)) from exc

    def base_pod_spec(self, template: dict[str, Any]) -> dict[str, Any]:
        """The pod Argo builds before any podSpecPatch."""
        unpatched = {k: v for k, v in template.items() if k != "podSpecPatch"}
        return self.build_pod(unpatched, dict(self.globals), None)

    def start_pod(self, name: str, template: dict[str, Any], inputs: dict[str, str],
                  boundary: str | None, retries: int | None,
                  execution_deadline: float | None) -> Node:
        scope = dict(self.globals)
        scope.update({f"inputs.parameters.{k}": v for k, v in inputs.items()})
        if retries is not None:
            scope["retries"] = str(retries)
        node = self.nodes[name] = Node(name, "Pod", template["name"], boundary,
                                       phase="Pending", started=self.now, inputs=inputs)
        kind = "container" if template.get("container") is not None else "script"
        body = substitute_all(template[kind], scope)
        spec = self.build_pod({**template, kind: body}, scope, retries)
        deadline = (float(template["activeDeadlineSeconds"])
                    if "activeDeadlineSeconds" in template else None)
        if execution_deadline is not None:
            remaining = max(execution_deadline - self.now, 0.0)
            deadline = remaining if deadline is None else min(deadline, remaining)
        call = PodCall(name, template["name"], inputs, retries, body,
                       substitute_all(template.get("outputs", {}).get("parameters", []), scope),
                       spec, self.now, deadline)
        self.pods.append(call)
        if not any(fits(spec, pool) for pool in self.pools):
            raise Stuck(f"pod {name} fits no node pool: {spec}")
        self._pending[name] = call
        self.place_pending()
        return node

    def place_pending(self) -> None:
        """Give each Pending pod the first pool it fits that can get a node now.

        A pod no pool can take stays Pending: Kubernetes starts activeDeadlineSeconds only
        once the pod runs, and Argo fails a Pending pod only at the workflow's deadline.
        """
        for name, call in list(self._pending.items()):
            pool = next((pool for pool in self.pools if fits(call.spec, pool)
                         and self.capacity.available(pool, self.now)), None)
            if pool is None:
                continue
            call.pool = pool
            call.running = self.now + self.node_start_seconds
            del self._pending[name]
            self.mark(self.nodes[name], "Running")
            self.launch(call)

    def launch(self, call: PodCall) -> None:
        """Run a placed pod: its fate from the cluster, its result from the runner."""
        name, start, deadline = call.node, call.running or self.now, call.deadline_seconds
        fate = self.cluster(call)
        preempted = fate.preempted and call.pool is not None and call.pool.spot
        seconds = fate.seconds
        killed = deadline is not None and seconds > deadline
        if killed:
            self._ends[name] = (start + (deadline or 0), "Failed", DEADLINE_EXCEEDED, None, {})
        elif preempted:
            self._ends[name] = (start + seconds, "Failed", PREEMPTED, None, {})
        else:
            result = self.runner(call)
            self.results[name] = result
            if result.exit_code == 0:
                self._ends[name] = (start + seconds, "Succeeded", "", "0", result.outputs)
            else:
                message = f"main: Error (exit code {result.exit_code})"
                if call.body.get("terminationMessagePolicy") == "FallbackToLogsOnError" and \
                        result.logs.strip():
                    message += ": " + termination_tail(result.logs)
                self._ends[name] = (start + seconds, "Failed", message,
                                    str(result.exit_code), {})

    def fail_pending_at_deadline(self) -> None:
        """Past the workflow's deadline Pending pods fail (operator.go, "Step exceeded its
        deadline"); nothing else ends a pod that never got a node."""
        if self.deadline is None or self.now < self.deadline:
            return
        for name in list(self._pending):
            del self._pending[name]
            self.mark(self.nodes[name], "Failed", "Step exceeded its deadline")

    def reconcile_pods(self) -> None:
        for name, (end, phase, message, exit_code, outputs) in list(self._ends.items()):
            if end <= self.now:
                node = self.nodes[name]
                node.exit_code, node.outputs = exit_code, outputs
                node.finished = end
                self.mark(node, phase, message)
                del self._ends[name]

    # --- executeSteps: steps.go ---------------------------------------------------------
    def execute_steps(self, name: str, template: dict[str, Any], inputs: dict[str, str],
                      boundary: str | None) -> Node:
        node = self.nodes.get(name)
        if node is None:
            node = self.nodes[name] = Node(name, "Steps", template["name"], boundary,
                                           started=self.now, inputs=inputs)
        if node.fulfilled:
            return node
        scope = dict(self.globals)
        scope.update({f"inputs.parameters.{k}": v for k, v in inputs.items()})
        for index, group in enumerate(template["steps"]):
            group_name = f"{name}[{index}]"
            group_node = self.nodes.get(group_name)
            if group_node is None:
                group_node = self.nodes[group_name] = Node(group_name, "StepGroup",
                                                           template["name"], name,
                                                           started=self.now)
                node.children.append(group_name)
            children = self.expand_group(group_name, group, scope)
            for child_name, step, arguments in children:
                if child_name not in group_node.children:
                    if step.get("when") is not None and not when(substitute(step["when"], scope)):
                        self.nodes[child_name] = Node(child_name, "Skipped", step["template"],
                                                      name, phase="Skipped",
                                                      started=self.now, finished=self.now)
                        group_node.children.append(child_name)
                        continue
                child = self.execute(child_name, step["template"], arguments, name)
                if child is not None and child_name not in group_node.children:
                    group_node.children.append(child_name)
                if node.fulfilled:  # failFast failed this steps node meanwhile
                    return node
            if len(group_node.children) < len(children) or \
                    any(not self.nodes[c].fulfilled for c in group_node.children):
                return node
            failed = [c for c in group_node.children if self.nodes[c].phase in FAILED]
            if failed:
                self.mark(group_node, "Failed")
                short = self.nodes[failed[0]].name.rsplit(".", 1)[-1]
                return self.mark(node, "Failed", f"child '{short}' failed")
            self.mark(group_node, "Succeeded")
            for child_name, step, _ in children:
                child = self.nodes[child_name]
                for key, value in child.outputs.items():
                    scope[f"steps.{step['name']}.outputs.parameters.{key}"] = value
        return self.mark(node, "Succeeded")

    def expand_group(self, group_name: str, group: list[dict[str, Any]], scope: dict[str, Any]
                     ) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
        """(node name, step, arguments) of every child, `withParam` items in list order;
        names as in steps.go: `<steps node>[<group>].<step>(<index>:<item>)`."""
        children = []
        for step in group:
            arguments = step.get("arguments", {}).get("parameters", [])
            if "withParam" not in step:
                children.append((f"{group_name}.{step['name']}", step,
                                 {a["name"]: substitute(a["value"], scope) for a in arguments}))
                continue
            items = json.loads(substitute(step["withParam"], scope))
            if not isinstance(items, list):
                raise TemplateError(f"withParam value could not be parsed as a JSON list: {items}")
            for position, item in enumerate(items):
                local = dict(scope)
                if isinstance(item, dict):
                    local.update({f"item.{k}": v if isinstance(v, str) else to_json(v)
                                  for k, v in item.items()})
                    label = ",".join(f"{k}:{v}" for k, v in item.items())
                else:
                    local["item"] = item if isinstance(item, str) else to_json(item)
                    label = str(item)
                children.append((f"{group_name}.{step['name']}({position}:{label})", step,
                                 {a["name"]: substitute(a["value"], local) for a in arguments}))
        return children

    # --- the operator loop ----------------------------------------------------------------
    def run(self, max_events: int = 10_000) -> Node:
        """Reconcile, jump to the next event, repeat until the workflow is over."""
        for _ in range(max_events):
            self.place_pending()
            self.fail_pending_at_deadline()
            self.reconcile_pods()
            before = None
            while before != (state := self.summary()):  # settle: a pass may enable the next
                before = state
                self._wakes = []
                root = self.execute(self.name, self.spec["entrypoint"], {}, None)
                if root is not None and root.fulfilled:
                    return root
            events = [end for end, *_ in self._ends.values()] + self._wakes
            if self._pending:
                events += [at for at in self.capacity.changes() if at > self.now]
                if self.deadline is not None:
                    events.append(self.deadline)
            if not events:
                raise Stuck(f"nothing left to wait for at t={self.now}s: {self.summary()}")
            self.now = max(self.now, min(events))
        raise Stuck(f"more than {max_events} events")

    # --- what tests read ------------------------------------------------------------------
    def summary(self) -> list[tuple[str, str, str]]:
        return [(n.name, n.phase, n.message) for n in self.nodes.values()]

    def attempts(self, template: str) -> list[Node]:
        """Pod nodes of `template`, in start order."""
        return sorted((n for n in self.nodes.values()
                       if n.type == "Pod" and n.template == template), key=lambda n: n.started)


def when(condition: str) -> bool:
    """The `when` conditions the templates use: `a == b` / `a != b` after substitution."""
    match = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", condition)
    if match is None:
        raise TemplateError(f"unsupported when {condition!r}")
    left, operator, right = match.groups()
    return (left == right) if operator == "==" else (left != right)


def termination_tail(logs: str) -> str:
    """Kubernetes' FallbackToLogsOnError: the last 80 lines, at most 2048 bytes."""
    tail = "\n".join(logs.strip().splitlines()[-80:])
    return tail.encode()[-2048:].decode(errors="ignore").strip()


def check_templates(manifest: dict[str, Any]) -> list[str]:
    """Static checks of every template: tags split, every expression parses.

    Returns a list of problems (empty when the manifest is fine).
    """
    problems = []
    for template in manifest["spec"]["templates"]:
        text = json.dumps(template)  # the controller substitutes the template's JSON text
        try:
            tags = split_tags(text)
        except TemplateError as exc:
            problems.append(f"{template['name']}: {exc}")
            continue
        for _, _, tag in tags:
            if tag.startswith("="):
                source = json.loads(f'"{tag[1:]}"')
                try:
                    parse_expression(source)
                except TemplateError as exc:
                    problems.append(f"{template['name']}: {exc}")
    return problems
