"""The Argo controller's rules (tests/argo_controller.py) applied to the committed YAML.

Every check runs on the committed workflow and on the workflow as it was before it followed
the controller's rules (`tests/fixtures/argo/before-controller-rules-workflow.yaml`), and
must reject the latter: each
test shows the bug it guards against. Pods other than `plan` are not run here (their exit
codes are scripted); `tests/integration/test_argo_simulated.py` runs them for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from argo_controller import (
    DEADLINE_EXCEEDED,
    POOLS,
    PREEMPTED,
    SPOT_POOL,
    Controller,
    PodCall,
    PodResult,
    Preempting,
    SpotShortage,
    TemplateError,
    apply_pod_spec_patch,
    check_templates,
    evaluate,
    fits,
    parse_duration,
    split_tags,
    substitute,
)

from flows.argo_backend import final_failure

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "deployments" / "argo" / "fraudpipe-train-workflow.yaml"
TEMPLATE = REPO / "deployments" / "argo" / "fraudpipe-train-workflowtemplate.yaml"
BEFORE = REPO / "tests" / "fixtures" / "argo" / "before-controller-rules-workflow.yaml"
DAYS = ["2018-04-01", "2018-04-02", "2018-04-03"]

#: Simulated seconds each kind of pod takes when nothing happens to it.
DURATIONS = {"plan": 20, "features": 60, "train-batch": 20 * 60, "report": 30}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def tags_repaired(manifest: dict) -> dict:
    """The before-13 workflow with only its `}}` bug fixed, to reach its other bugs."""
    text = json.dumps(manifest).replace('null}}', 'null} }')
    return json.loads(text)


class Pods:
    """Runs `plan` for real (its script, its environment); other pods exit as scripted."""

    def __init__(self, tmp_path: Path, exits: dict[tuple[str, str, int], tuple[int, str]]
                 | None = None) -> None:
        self.tmp_path = tmp_path
        self.exits = exits or {}

    def __call__(self, call: PodCall) -> PodResult:
        if call.template == "plan":
            return self.plan(call)
        key = (call.template, call.inputs.get("first", ""), call.retries or 0)
        code, logs = self.exits.get(key, (0, ""))
        return PodResult(code, logs=logs)

    def plan(self, call: PodCall) -> PodResult:
        out = self.tmp_path / f"plan-{len(list(self.tmp_path.iterdir()))}"
        out.mkdir()
        source = call.body["source"].replace("/tmp/plan", str(out))
        env = {**os.environ, **{e["name"]: e["value"] for e in call.body.get("env", [])
                                if "value" in e}}
        done = subprocess.run([sys.executable, "-c", source], env=env, cwd=out,
                              capture_output=True, text=True, timeout=60)
        outputs = {}
        if done.returncode == 0:
            outputs = {o["name"]: (out / Path(o["valueFrom"]["path"]).name).read_text()
                       for o in call.outputs}
        return PodResult(done.returncode, outputs, done.stdout + done.stderr)


def simulate(manifest: dict, tmp_path: Path, *, cluster: Preempting | None = None,
             pods: Pods | None = None, **parameters: str) -> tuple[Controller, object]:
    controller = Controller(manifest, {"datasets": json.dumps(DAYS), **parameters},
                            pods or Pods(tmp_path), cluster or Preempting(DURATIONS))
    return controller, controller.run()


def train_pods(controller: Controller) -> list[PodCall]:
    return [p for p in controller.pods if p.template == "train-batch"]


# --- the rules themselves ------------------------------------------------------------------

def test_a_tag_ends_at_the_first_closing_braces_even_inside_an_expression():
    text = "{{='{\"a\":{\"b\":null}}' }}"
    ((_, _, tag),) = split_tags(text)
    assert tag == "='{\"a\":{\"b\":null"
    with pytest.raises(TemplateError, match="failed to evaluate expression"):
        substitute(text, {})
    assert substitute("{{='{\"a\":{\"b\":null} }'}}", {}) == '{"a":{"b":null} }'
    with pytest.raises(TemplateError, match="failed to resolve"):
        substitute("{{inputs.parameters.missing}}", {})


def test_expressions_see_strings_and_asint_converts():
    scope = {"retries": "2", "workflow.parameters.on-demand-after-retries": "2",
             "lastRetry.exitCode": "-1", "lastRetry.message": PREEMPTED}
    assert evaluate("asInt(retries) >= asInt(workflow.parameters['on-demand-after-retries'])",
                    scope) is True
    assert evaluate("lastRetry.exitCode in ['5', '-1']", scope) is True
    assert evaluate("lastRetry.exitCode in [5, -1]", scope) is False  # strings, not numbers
    with pytest.raises(TemplateError, match="mismatched types"):
        evaluate("retries >= 2", scope)
    assert evaluate("lastRetry.message matches 'imminent node shutdown'", scope) is True


def test_durations_follow_argo():
    assert parse_duration("30") == 30 and parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    with pytest.raises(TemplateError):
        parse_duration("ten minutes")


def test_scheduling_follows_selector_affinity_and_taints():
    tolerates = {"tolerations": [{"key": SPOT_POOL.taints[0][0], "operator": "Equal",
                                  "value": "true", "effect": "NoSchedule"}]}
    assert not fits({}, SPOT_POOL)  # the taint keeps untolerating pods off Spot
    assert fits(tolerates, SPOT_POOL)  # tolerating is enough to land there
    leave = {**tolerates, "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cloud.google.com/gke-spot",
                                   "operator": "DoesNotExist"}]}]}}}}
    assert not fits(leave, SPOT_POOL)


# --- static checks of the YAML ----------------------------------------------------------------

def test_no_expression_is_cut_by_closing_braces():
    # GIVEN the committed workflow and template, and the workflow before the fix
    # THEN every tag of the committed files splits and every expression parses
    assert check_templates(load(COMMITTED)) == []
    assert check_templates(load(TEMPLATE)) == []
    problems = check_templates(load(BEFORE))
    assert len(problems) == 5 and all("failed to evaluate expression" in p for p in problems)


def retried_work_seconds(template: dict) -> float:
    """Longest time the retried work may take: every attempt to its deadline, plus delays."""
    strategy = template["retryStrategy"]
    backoff = strategy.get("backoff", {})
    attempts = int(strategy["limit"]) + 1
    delays, wait = 0.0, parse_duration(backoff.get("duration", "0"))
    for _ in range(attempts - 1):
        capped = min(wait, parse_duration(backoff["cap"])) if "cap" in backoff else wait
        delays += capped
        wait *= int(backoff.get("factor", 1))
    return attempts * float(template["activeDeadlineSeconds"]) + delays


def short_max_durations(manifest: dict) -> list[str]:
    return [t["name"] for t in manifest["spec"]["templates"]
            if "maxDuration" in t.get("retryStrategy", {}).get("backoff", {})
            and parse_duration(t["retryStrategy"]["backoff"]["maxDuration"])
            < retried_work_seconds(t)]


def test_no_max_duration_shorter_than_the_retried_work():
    assert short_max_durations(load(COMMITTED)) == []
    assert short_max_durations(load(BEFORE)) == [
        "plan", "features", "train-batch", "drain-queue", "report"]
    for template in load(COMMITTED)["spec"]["templates"]:
        if "retryStrategy" in template:
            assert template["retryStrategy"]["backoff"]["cap"] == "10m"


def loops_over_retried_leaves(manifest: dict) -> list[str]:
    """Steps templates with failFast or parallelism 1 whose loop calls a retried pod."""
    templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    found = []
    for template in templates.values():
        if "steps" in template and (template.get("failFast") or template.get("parallelism") == 1):
            for step in (s for group in template["steps"] for s in group):
                callee = templates[step["template"]]
                if "retryStrategy" in callee and "steps" not in callee:
                    found.append(f"{template['name']} -> {callee['name']}")
    return found


def test_no_failfast_or_serial_loop_over_a_directly_retried_leaf():
    assert loops_over_retried_leaves(load(COMMITTED)) == []
    assert loops_over_retried_leaves(load(BEFORE)) == ["train-chain -> train-batch"]
    chain = {t["name"]: t for t in load(COMMITTED)["spec"]["templates"]}["train-chain"]
    assert chain["parallelism"] == 1 and chain["steps"][0][0]["template"] == "train-link"


# --- scenarios on the committed YAML ---------------------------------------------------------

def test_two_preemptions_then_on_demand_chain_in_order_and_report_runs(tmp_path):
    # GIVEN the second batch's pod is preempted on its first and second attempts
    cluster = Preempting(DURATIONS, {("2018-04-02", 0): 5 * 60, ("2018-04-02", 1): 5 * 60})
    # WHEN the committed workflow runs
    controller, root = simulate(load(COMMITTED), tmp_path, cluster=cluster)
    # THEN it succeeds, the third attempt ran off Spot, one batch after the other
    assert root.phase == "Succeeded", controller.summary()
    trains = train_pods(controller)
    assert [(p.inputs["first"], p.retries) for p in trains] == [
        ("2018-04-01", 0), ("2018-04-02", 0), ("2018-04-02", 1), ("2018-04-02", 2),
        ("2018-04-03", 0)]
    assert [p.pool.spot for p in trains] == [True, True, True, False, True]
    third = trains[3].spec
    assert "cloud.google.com/gke-spot" not in third.get("nodeSelector", {})
    assert "cloud.google.com/compute-class" not in third.get("nodeSelector", {})
    assert not any(fits(third, pool) for pool in POOLS if pool.spot)
    ends = {n.name: n.finished for n in controller.nodes.values() if n.type == "Pod"}
    for earlier, later in zip(trains, trains[1:], strict=False):
        assert later.started >= ends[earlier.node]  # strictly one after the other
    assert [p.template for p in controller.pods][-1] == "report"
    # the retries waited 30s, then 60s (backoff.duration, factor 2)
    assert trains[2].started - ends[trains[1].node] == 30
    assert trains[3].started - ends[trains[2].node] == 60


def test_the_same_preemptions_break_the_workflow_before_the_fix(tmp_path):
    cluster = Preempting(DURATIONS, {("2018-04-02", 0): 5 * 60, ("2018-04-02", 1): 5 * 60})
    with pytest.raises(TemplateError, match="failed to evaluate expression"):
        simulate(load(BEFORE), tmp_path, cluster=cluster)
    # with the tags repaired, failFast fails the chain at the first preemption
    controller, root = simulate(tags_repaired(load(BEFORE)), tmp_path, cluster=cluster)
    assert root.phase == "Failed"
    chain = [n for n in controller.nodes.values() if n.template == "train-chain"][0]
    assert chain.message == "template has failed or errored children and failFast enabled"
    assert "report" not in [p.template for p in controller.pods]


def test_without_failfast_parallelism_1_lets_the_next_day_start_during_a_backoff(tmp_path):
    # The before-13 chain with failFast removed: the Retry node in backoff is not counted.
    manifest = tags_repaired(load(BEFORE))
    for template in manifest["spec"]["templates"]:
        template.pop("failFast", None)
    cluster = Preempting(DURATIONS, {("2018-04-02", 0): 5 * 60})
    controller, root = simulate(manifest, tmp_path, cluster=cluster)
    trains = train_pods(controller)
    # THEN 2018-04-03 started while 2018-04-02 was still waiting to retry (a gap in the
    # chain), and that running pod then kept the chain from retrying 04-02 in time
    assert [p.inputs["first"] for p in trains] == ["2018-04-01", "2018-04-02", "2018-04-03"]
    retry = [n for n in controller.nodes.values()
             if n.type == "Retry" and n.inputs.get("first") == "2018-04-02"][0]
    assert trains[2].started < retry.finished
    assert root.phase == "Failed"


def test_a_preemption_after_nine_and_a_half_minutes_is_still_retried(tmp_path):
    cluster = Preempting(DURATIONS, {("2018-04-01", 0): 9.5 * 60})
    controller, root = simulate(load(COMMITTED), tmp_path, cluster=cluster)
    assert root.phase == "Succeeded", controller.summary()
    first = [p for p in train_pods(controller) if p.inputs["first"] == "2018-04-01"]
    assert [p.retries for p in first] == [0, 1]
    assert first[1].deadline_seconds == 3600  # the retry keeps its full pod deadline
    # before the fix (tags repaired, failFast removed), maxDuration 10m ends the retries
    manifest = tags_repaired(load(BEFORE))
    for template in manifest["spec"]["templates"]:
        template.pop("failFast", None)
    controller, root = simulate(manifest, tmp_path, cluster=cluster)
    assert root.phase == "Failed"
    retry = [n for n in controller.nodes.values()
             if n.type == "Retry" and n.template == "train-batch"][0]
    assert retry.message in ("Max duration limit exceeded",
                             "Backoff would exceed max duration limit")
    attempts = [n for n in controller.nodes.values()
                if n.type == "Pod" and n.name.startswith(retry.name + "(")]
    assert len(attempts) == 1 or attempts[-1].message == DEADLINE_EXCEEDED


def test_exit_code_3_is_never_retried_and_fails_the_workflow_with_its_message(tmp_path):
    # GIVEN the second batch's step refuses its data (a permanent error, exit code 3)
    reason = "error: dataset 2018-04-02: column TX_AMOUNT missing"
    pods = Pods(tmp_path, {("train-batch", "2018-04-02", 0): (3, f"training...\n{reason}\n")})
    # WHEN the committed workflow runs
    controller, root = simulate(load(COMMITTED), tmp_path, pods=pods)
    # THEN one attempt only, no later batch, no report, and the reason is the node's message
    assert root.phase == "Failed"
    trains = train_pods(controller)
    assert [(p.inputs["first"], p.retries) for p in trains] == [("2018-04-01", 0),
                                                              ("2018-04-02", 0)]
    assert "report" not in [p.template for p in controller.pods]
    failed = [n for n in controller.nodes.values() if n.type == "Pod" and n.phase == "Failed"]
    assert [n.message for n in failed] == [f"main: Error (exit code 3): training...\n{reason}"]
    retry = [n for n in controller.nodes.values() if n.type == "Retry" and n.phase == "Failed"]
    assert [n.message for n in retry] == ["retryStrategy.expression evaluated to false"]


def test_the_final_cause_is_the_last_attempt(tmp_path):
    # preempted, then a permanent error: the bridge must report the exit code 3
    reason = "error: dataset 2018-04-02: column TX_AMOUNT missing"
    pods = Pods(tmp_path, {("train-batch", "2018-04-02", 1): (3, reason)})
    controller, root = simulate(load(COMMITTED), tmp_path, pods=pods,
                                cluster=Preempting(DURATIONS, {("2018-04-02", 0): 60}))
    assert root.phase == "Failed"
    status = status_of(controller)
    assert final_failure(status).endswith(f"main: Error (exit code 3): {reason}")


def status_of(controller: Controller):
    """The simulated nodes as the Argo Server would return them (Hera models)."""
    from hera.workflows import models as m

    def stamp(seconds: float | None) -> str | None:
        return None if seconds is None else f"2026-01-01T{int(seconds) // 3600:02d}:" \
            f"{int(seconds) % 3600 // 60:02d}:{int(seconds) % 60:02d}Z"

    nodes = {n.name: m.NodeStatus(id=n.name, name=n.name, display_name=n.name.rsplit(".", 1)[-1],
                                  type=n.type, phase=n.phase, message=n.message or None,
                                  template_name=n.template, started_at=stamp(n.started),
                                  finished_at=stamp(n.finished))
             for n in controller.nodes.values()}
    return m.WorkflowStatus(phase="Failed", nodes=nodes)


@pytest.mark.parametrize("datasets", ["2018-04-01\\", "''');open('PWNED','w');('''"])
def test_plan_reads_datasets_as_data_never_as_code(tmp_path, datasets):
    pods = Pods(tmp_path)
    controller = Controller(load(COMMITTED), {"datasets": datasets}, pods, Preempting(DURATIONS))
    root = controller.run()
    # THEN plan refused the value with the permanent exit code, and nothing ran it
    assert root.phase == "Failed"
    (plan,) = [n for n in controller.nodes.values() if n.type == "Pod"]
    assert plan.exit_code == "3"
    assert "expected a date YYYY-MM-DD" in plan.message
    assert not any(tmp_path.rglob("PWNED"))
    # before the fix the same value broke the script (exit 1) or ran as code
    source = load(BEFORE)["spec"]["templates"][0]["script"]["source"]
    pasted = source.replace("{{inputs.parameters.datasets}}", datasets).replace(
        "{{inputs.parameters.days-per-step}}", "1").replace("/tmp/plan", str(tmp_path))
    done = subprocess.run([sys.executable, "-c", pasted], cwd=tmp_path, capture_output=True,
                          timeout=60)
    assert done.returncode != 3


@pytest.mark.parametrize(("path", "leaves_spot"), [(COMMITTED, True), (BEFORE, False)])
def test_the_on_demand_attempt_cannot_land_on_spot(tmp_path, path, leaves_spot):
    # GIVEN the pod an on-demand attempt gets: the workflow's Spot selector and toleration,
    # then the template's podSpecPatch substituted with its retry number
    manifest = tags_repaired(load(path))
    controller = Controller(manifest, {"datasets": json.dumps(DAYS)}, Pods(tmp_path),
                            Preempting(DURATIONS))
    template = controller.templates["train-batch"]
    threshold = controller.globals["workflow.parameters.on-demand-after-retries"]
    scope = {**controller.globals, "retries": threshold}
    spec = apply_pod_spec_patch(controller.base_pod_spec(template),
                                substitute(template["podSpecPatch"], scope))
    # THEN only the affinity keeps it off Spot; dropping the nodeSelector alone does not
    assert "cloud.google.com/gke-spot" not in spec.get("nodeSelector", {})
    assert fits(spec, SPOT_POOL) is not leaves_spot


# --- Spot shortage: the ComputeClass falls back, a Spot selector waits --------------------------

#: Assumed time GKE takes to create a node for a pod (not measured here: no cluster). The
#: bound asserted below is in these units: a pod waits for a node, never for Spot.
NODE_START_SECONDS = 120
SHORTAGE = SpotShortage(0, 6 * 3600)
CHAIN_DAYS = [f"2018-04-{day:02d}" for day in range(1, 25)]  # 24 days of 20 min: 8 hours


def spot_selector_only(manifest: dict) -> dict:
    """The scheduling the templates had before the ComputeClass: Spot by node selector."""
    manifest = json.loads(json.dumps(manifest))
    spec = manifest["spec"]
    spec["nodeSelector"] = {"cloud.google.com/gke-spot": "true"}
    spec["tolerations"] = [t for t in spec["tolerations"]
                           if t["key"] == "cloud.google.com/gke-spot"]
    return manifest


def shortage_run(manifest: dict, tmp_path: Path) -> tuple[Controller, object]:
    controller = Controller(manifest, {"datasets": json.dumps(CHAIN_DAYS)}, Pods(tmp_path),
                            Preempting(DURATIONS), capacity=SHORTAGE,
                            node_start_seconds=NODE_START_SECONDS)
    return controller, controller.run()


def test_no_spot_for_six_hours_the_chain_trains_every_day_in_order_on_demand_within_a_bound(
        tmp_path):
    # GIVEN no Spot capacity anywhere for the first 6 hours of a 24-day chain
    # WHEN the committed workflow runs
    controller, root = shortage_run(load(COMMITTED), tmp_path)
    # THEN every day is trained once, in date order, one pod after the other
    assert root.phase == "Succeeded", controller.summary()
    trains = train_pods(controller)
    assert [(p.inputs["first"], p.retries) for p in trains] == [(d, 0) for d in CHAIN_DAYS]
    ends = {n.name: n.finished for n in controller.nodes.values() if n.type == "Pod"}
    for earlier, later in zip(trains, trains[1:], strict=False):
        assert later.started >= ends[earlier.node]
    # on the class's on-demand nodes while Spot is short, on its Spot nodes after
    assert all(not p.pool.spot and p.pool.name == "class-on-demand"
               for p in trains if p.running < SHORTAGE.end)
    assert all(p.pool.spot for p in trains if p.started >= SHORTAGE.end)
    assert sum(not p.pool.spot for p in trains) >= 17
    # and no pod waits for Spot: each waits only for its node to start
    assert all(p.running - p.started == NODE_START_SECONDS for p in controller.pods)
    work = sum(DURATIONS[p.template] for p in controller.pods)
    assert root.finished <= work + len(controller.pods) * NODE_START_SECONDS


def test_the_same_shortage_stalls_a_chain_that_selects_spot_by_node_selector(tmp_path):
    # GIVEN the workflow as it scheduled before the ComputeClass (gke-spot node selector)
    controller, root = shortage_run(spot_selector_only(load(COMMITTED)), tmp_path)
    # THEN the first training pod is Pending until Spot returns, six hours later: its
    # activeDeadlineSeconds never starts, no retry happens, the on-demand patch never applies
    assert root.phase == "Succeeded"
    trains = train_pods(controller)
    assert trains[0].running >= SHORTAGE.end
    assert [p.retries for p in trains] == [0] * len(CHAIN_DAYS)
    assert all(p.pool.spot for p in trains)


def test_pending_timeout_on_a_retried_step_never_ends_a_pending_attempt(tmp_path):
    # GIVEN the Spot-selector workflow with pendingTimeout 10m on the retried training step
    manifest = spot_selector_only(load(COMMITTED))
    for template in manifest["spec"]["templates"]:
        if template["name"] == "train-batch":
            template["pendingTimeout"] = "10m"
    controller, root = shortage_run(manifest, tmp_path)
    # THEN the attempt still waits six hours: the controller checks pendingTimeout on the
    # Retry node, which is Running, not on its Pending attempt (operator.go)
    first = train_pods(controller)[0]
    assert first.retries == 0 and first.running >= SHORTAGE.end
    assert root.phase == "Succeeded"
    # while on a step that is not retried it does end the Pending pod: Spot vanishes for
    # good while the one-day chain trains, and the report's pod times out waiting
    report = next(t for t in manifest["spec"]["templates"] if t["name"] == "report")
    report["pendingTimeout"] = "10m"
    report.pop("retryStrategy")
    controller = Controller(manifest, {"datasets": json.dumps(CHAIN_DAYS[:1])}, Pods(tmp_path),
                            Preempting(DURATIONS), capacity=SpotShortage(600, 10 ** 7))
    root = controller.run()
    (report_node,) = [n for n in controller.nodes.values() if n.template == "report"]
    assert report_node.message == "timeout" and root.phase == "Failed"
    assert report_node.finished - report_node.started == pytest.approx(600, abs=1)


# --- a permanent error still waits the backoff of its attempt -----------------------------------

@pytest.mark.parametrize(("transient", "wait"), [(0, 30), (1, 60), (2, 120), (3, 0)])
def test_exit_code_3_fails_after_the_backoff_of_its_attempt_at_most_two_minutes(
        tmp_path, transient, wait):
    # GIVEN the second batch failing `transient` times with exit 5 (head moved), then
    # refusing its data (exit 3)
    exits = {("train-batch", "2018-04-02", k): (5, "head moved") for k in range(transient)}
    exits[("train-batch", "2018-04-02", transient)] = (3, "bad data")
    # WHEN the committed workflow runs
    controller, root = simulate(load(COMMITTED), tmp_path, pods=Pods(tmp_path, exits))
    # THEN it is not retried, but the Retry node fails only after the backoff of that attempt
    # (operator.go processNodeRetries waits before it reads the policy, limit and expression),
    # and not at all after the last attempt (limit 3: the attempt count skips the wait)
    assert root.phase == "Failed"
    retry = next(n for n in controller.nodes.values()
                 if n.type == "Retry" and n.inputs.get("first") == "2018-04-02")
    attempts = [controller.nodes[c] for c in retry.children]
    assert [a.exit_code for a in attempts] == ["5"] * transient + ["3"]
    assert retry.finished - attempts[-1].finished == wait
    template = controller.templates["train-batch"]
    backoff = template["retryStrategy"]["backoff"]
    longest = min(parse_duration(backoff["duration"]) * int(backoff["factor"]) ** (
        int(template["retryStrategy"]["limit"]) - 1), parse_duration(backoff["cap"]))
    assert wait <= longest == 120
    expected = ("No more retries left" if transient == 3
                else "retryStrategy.expression evaluated to false")
    assert retry.message == expected
