"""The training workflow's shape, built once with Hera and shared by every variant.

Shape (ARCHITECTURE.md): `plan` -> one training pod per batch of days, each inside its
own chain link (a steps template), strictly in date order and one at a time under a mutex
-> `report`. There is no features stage: a step computes its day's features from the
carried feature state, that day and a few boundary days (trainer/features/state.py), so a
parallel stage would only repeat what the step does anyway. The controller rules
this shape relies on are in docs/argo-rules.md. With `datasets=queued` the chain is replaced by one
`fraudpipe worker --burst` pod that drains the Redis queue under the same mutex.

Every pod runs the `fraudpipe` CLI of the step image with the Filestore PVC mounted, on
Spot nodes through a GKE ComputeClass that falls back to on-demand nodes when Spot is
short, with a retry strategy that retries preemptions and never a permanent error.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hera.workflows import (
    Container,
    Env,
    Parameter,
    RetryStrategy,
    Script,
    Step,
    Steps,
)
from hera.workflows import (
    models as m,
)

from workflows.plan import PLAN_DIR, PLAN_ENV, script_source
from workflows.settings import (
    COMPUTE_CLASS_LABEL,
    PERMANENT_EXIT_CODE,
    PREEMPTION_MESSAGE_PATTERN,
    QUEUED,
    SPOT_LABEL,
    WorkflowSettings,
)

#: Exit codes of transient fraudpipe errors worth another attempt: head moved (5),
#: lease lost (6), queue unreachable (7), share full (8). See trainer/errors.py.
TRANSIENT_EXIT_CODES = ("5", "6", "7", "8")

#: A failed step's last log lines become its container's termination message, which Argo
#: appends to the node's message (workflow/controller/operator.go, "(exit code %d)"): the
#: reason of a failure reaches the Argo UI and the Prefect bridge, not only `argo logs`.
TERMINATION_MESSAGE_POLICY = "FallbackToLogsOnError"

APP_LABEL = "app.kubernetes.io/name"
RUN_LABEL = "fraudpipe.io/run"
STEP_LABEL = "fraudpipe.io/step"
FIRST_DAY_LABEL = "fraudpipe.io/first-dataset"
LAST_DAY_LABEL = "fraudpipe.io/last-dataset"


def retry_expression() -> str:
    """When to retry: preempted or errored pods and transient errors, never exit code 3."""
    transient = ", ".join(f"'{code}'" for code in TRANSIENT_EXIT_CODES)
    return (
        f"lastRetry.exitCode != '{PERMANENT_EXIT_CODE}' && ("
        f"lastRetry.status == 'Error' || "
        f"lastRetry.message matches '{PREEMPTION_MESSAGE_PATTERN}' || "
        f"lastRetry.exitCode in [{transient}])"
    )


def retry_strategy(settings: WorkflowSettings) -> RetryStrategy:
    """Retries with a capped backoff; the policy is Always so the expression alone decides.

    A Spot preemption reaches Argo as *Failed* ("imminent node shutdown"), which OnError
    would not retry; the expression filters instead (Argo evaluates both the policy and
    the expression, workflow/controller/operator.go `processNodeRetries`). The delay is
    capped with `cap`; there is no `maxDuration` (see `WorkflowSettings.backoff_cap`).
    """
    return RetryStrategy(
        limit=str(settings.retry_limit),
        retry_policy="Always",
        expression=retry_expression(),
        backoff=m.Backoff(
            duration=settings.backoff_duration,
            factor=m.IntOrString(str(settings.backoff_factor)),
            cap=settings.backoff_cap,
        ),
    )


def on_demand_patch_json() -> str:
    """The pod spec patch of an on-demand attempt, as JSON that holds no `}}`.

    It leaves the Spot-first ComputeClass (a strategic-merge `null` removes the
    nodeSelector key, workflow/util/util.go `ApplyPodSpecPatch`), so GKE places the pod on
    its default on-demand nodes. Dropping the selector alone is not enough while the pods
    tolerate the Spot and class taints, so the patch also requires nodes *without* the
    Spot label.
    The text goes inside a `{{= }}` expression, and Argo's template engine ends a tag at
    the first `}}` (util/template/template.go, fasttemplate), so every closing brace that
    follows another is written `} }`: still JSON, never the end of a tag.
    """
    patch = {
        "nodeSelector": {COMPUTE_CLASS_LABEL: None},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": SPOT_LABEL, "operator": "DoesNotExist"}]}]}}},
    }
    return re.sub(r"\}(?=\})", "} ", json.dumps(patch, separators=(",", ":")))


def on_demand_patch() -> str:
    """The podSpecPatch moving an attempt off Spot once `retries` reaches the threshold.

    `retries` is the attempt's retry number, substituted in podSpecPatch before the patch
    is applied (workflow/controller/workflowpod.go `processPodSpecPatch`); podSpecPatch with
    parameters follows upstream `examples/pod-spec-patch.yaml`.
    """
    return (
        "{{=asInt(retries) >= asInt(workflow.parameters['on-demand-after-retries'])"
        f" ? '{on_demand_patch_json()}' : '{{ }}'}}}}"
    )


def container_security() -> m.SecurityContext:
    """Restricted container security context with a read-only root filesystem."""
    return m.SecurityContext(
        allow_privilege_escalation=False,
        capabilities=m.Capabilities(drop=["ALL"]),
        read_only_root_filesystem=True,
        run_as_non_root=True,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def pod_security() -> m.PodSecurityContext:
    """Pod security context: non-root user, RuntimeDefault seccomp."""
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=10001,
        run_as_group=10001,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def resources(settings: WorkflowSettings) -> m.ResourceRequirements:
    """Requests and limits of every step container."""
    return m.ResourceRequirements(
        requests={"cpu": m.Quantity(settings.cpu_request),
                  "memory": m.Quantity(settings.memory_request)},
        limits={"cpu": m.Quantity(settings.cpu_limit),
                "memory": m.Quantity(settings.memory_limit)},
    )


def volume_mounts(settings: WorkflowSettings) -> list[m.VolumeMount]:
    """The share and a writable /tmp (the root filesystem is read-only)."""
    return [
        m.VolumeMount(name="fileserver", mount_path=settings.mount_path),
        m.VolumeMount(name="tmp", mount_path="/tmp"),
    ]


def volumes(settings: WorkflowSettings) -> list[m.Volume]:
    """The Filestore PVC and the emptyDir behind /tmp."""
    return [
        m.Volume(
            name="fileserver",
            persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(claim_name=settings.pvc_name),
        ),
        m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource(
            size_limit=m.Quantity(settings.tmp_size_limit))),
    ]


def common_env() -> list[Any]:
    """Environment every step needs with a read-only root filesystem."""
    return [
        Env(name="HOME", value="/tmp"),
        Env(name="MPLCONFIGDIR", value="/tmp/matplotlib"),
        Env(name="PYTHONDONTWRITEBYTECODE", value="1"),
    ]


def redis_env(settings: WorkflowSettings) -> list[Any]:
    """Queue settings as `FRAUDPIPE_REDIS_*` variables, the password from a Secret.

    No `--redis-url` on purpose: `RedisSettings.from_env` ignores the `FRAUDPIPE_REDIS_*`
    variables (the password among them) when a URL is given, so host, port and db travel
    as variables too and the password never appears in the workflow.
    """
    return [
        Env(name="FRAUDPIPE_REDIS_HOST", value="{{workflow.parameters.redis-host}}"),
        Env(name="FRAUDPIPE_REDIS_PORT", value="{{workflow.parameters.redis-port}}"),
        Env(name="FRAUDPIPE_REDIS_DB", value="{{workflow.parameters.redis-db}}"),
        m.EnvVar(
            name="FRAUDPIPE_REDIS_PASSWORD",
            value_from=m.EnvVarSource(
                secret_key_ref=m.SecretKeySelector(
                    name=settings.redis_secret_name, key=settings.redis_secret_key, optional=True
                )
            ),
        )
    ]


#: Shell that turns the space-separated batch into repeated `--dataset` options. The
#: plan validated every item as an ISO date, so word splitting is safe here.
STEP_SHELL = (
    'set -eu; set -- ; for day in $FRAUDPIPE_DATASETS; do set -- "$@" --dataset "$day"; done; '
    'exec fraudpipe step --storage "$FRAUDPIPE_STORAGE" "$@" --json'
)


def step_template(settings: WorkflowSettings, **kwargs: Any) -> dict[str, Any]:
    """Keyword arguments every pod template shares."""
    return dict(
        image="{{workflow.parameters.image}}",
        image_pull_policy="IfNotPresent",
        security_context=container_security(),
        resources=resources(settings),
        volume_mounts=volume_mounts(settings),
        retry_strategy=retry_strategy(settings),
        pod_spec_patch=on_demand_patch(),
        termination_message_policy=TERMINATION_MESSAGE_POLICY,
        **kwargs,
    )


def image_parameter(settings: WorkflowSettings) -> Parameter:
    """The `image` parameter, with no value at all when no image is set.

    Hera writes `value=None` as the string "null"; leaving the keyword out leaves the
    value out, and Argo then refuses a submission that does not pass the image.
    """
    description = "the pushed step image, REGISTRY/PATH/fraudpipe-step:TAG"
    if settings.image is None:
        return Parameter(name="image", description=description)
    return Parameter(name="image", value=settings.image, description=description)


def arguments(settings: WorkflowSettings) -> list[Parameter]:
    """Workflow parameters and their defaults."""
    return [
        Parameter(name="datasets", value=QUEUED,
                  description="JSON list of dates, dates separated by commas, or 'queued'"),
        Parameter(name="days-per-step", value=str(settings.days_per_step),
                  description="days trained by one pod (amortises pod start-up)"),
        image_parameter(settings),
        Parameter(name="redis-host", value=settings.redis_host,
                  description="queue host (the password comes from a Secret)"),
        Parameter(name="redis-port", value=str(settings.redis_port), description="queue port"),
        Parameter(name="redis-db", value=str(settings.redis_db), description="queue database"),
        Parameter(name="on-demand-after-retries", value=str(settings.on_demand_after_retries),
                  description="retry number from which attempts leave Spot nodes"),
    ]


def tolerations(settings: WorkflowSettings) -> list[m.Toleration]:
    """The taints of the Spot-first ComputeClass's nodes: the class's own and Spot's.

    GKE taints the nodes it creates for a custom ComputeClass with the class and its Spot
    nodes with `cloud.google.com/gke-spot` (GKE docs, "About custom ComputeClasses",
    "Spot VMs"); GKE adds these tolerations to a pod selecting the class itself, and they
    are written here so that the pod spec says where it may run.
    """
    return [
        m.Toleration(key=COMPUTE_CLASS_LABEL, operator="Equal", value=settings.compute_class,
                     effect="NoSchedule"),
        m.Toleration(key=SPOT_LABEL, operator="Equal", value="true", effect="NoSchedule"),
    ]


def spec_kwargs(settings: WorkflowSettings) -> dict[str, Any]:
    """Workflow-level fields shared by the Workflow, the WorkflowTemplate and the cron."""
    return dict(
        entrypoint="main",
        namespace=settings.namespace,
        service_account_name=settings.service_account,
        arguments=arguments(settings),
        active_deadline_seconds=settings.workflow_deadline_seconds,
        security_context=pod_security(),
        node_selector={COMPUTE_CLASS_LABEL: settings.compute_class},
        tolerations=tolerations(settings),
        volumes=volumes(settings),
        pod_metadata=m.Metadata(labels={APP_LABEL: "fraudpipe", RUN_LABEL: "{{workflow.name}}"}),
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        ttl_strategy=m.TTLStrategy(seconds_after_completion=7 * 24 * 3600),
    )


def add_templates(settings: WorkflowSettings) -> None:
    """Define every template inside the active Hera workflow context.

    Template-level `activeDeadlineSeconds` and retry `limit` are strings: Argo's v4.1
    schema types them as IntOrString with `type: string`.
    """
    storage = settings.mount_path
    plan_t = Script(
        name="plan",
        image="{{workflow.parameters.image}}",
        command=["python"],
        source=script_source(),
        inputs=[Parameter(name="datasets"), Parameter(name="days-per-step")],
        outputs=[
            Parameter(name="mode", value_from=m.ValueFrom(path=f"{PLAN_DIR}/mode")),
            Parameter(name="batches", value_from=m.ValueFrom(path=f"{PLAN_DIR}/batches.json")),
        ],
        security_context=container_security(),
        volume_mounts=[m.VolumeMount(name="tmp", mount_path="/tmp")],
        env=common_env() + [Env(name=name, value=f"{{{{inputs.parameters.{parameter}}}}}")
                            for parameter, name in PLAN_ENV.items()],
        retry_strategy=retry_strategy(settings),
        pod_spec_patch=on_demand_patch(),
        termination_message_policy=TERMINATION_MESSAGE_POLICY,
        active_deadline_seconds="300",
        labels={STEP_LABEL: "plan"},
    )
    train_t = Container(
        name="train-batch",
        command=["sh", "-c"],
        args=[STEP_SHELL],
        inputs=[Parameter(name="datasets"), Parameter(name="first"), Parameter(name="last")],
        env=common_env() + [
            Env(name="FRAUDPIPE_DATASETS", value="{{inputs.parameters.datasets}}"),
            Env(name="FRAUDPIPE_STORAGE", value=storage),
        ],
        active_deadline_seconds=str(settings.step_deadline_seconds),
        labels={STEP_LABEL: "train", FIRST_DAY_LABEL: "{{inputs.parameters.first}}",
                LAST_DAY_LABEL: "{{inputs.parameters.last}}"},
        **step_template(settings),
    )
    worker_t = Container(
        name="drain-queue",
        command=["fraudpipe"],
        args=["worker", "--storage", storage, "--burst"],
        env=common_env() + redis_env(settings),
        active_deadline_seconds=str(settings.workflow_deadline_seconds),
        labels={STEP_LABEL: "worker"},
        synchronization=m.Synchronization(mutexes=[m.Mutex(name=settings.training_mutex)]),
        **step_template(settings),
    )
    report_t = Container(
        name="report",
        command=["fraudpipe"],
        args=["report", "--storage", storage, "--json"],
        env=common_env(),
        active_deadline_seconds="600",
        labels={STEP_LABEL: "report"},
        **step_template(settings),
    )

    # One link of the chain: a steps template whose single step calls the retried pod.
    # The loop below then counts this Steps node, which stays Running through the pod's
    # backoff and fails only when its retries are spent; a directly retried leaf would not
    # be counted while backing off (workflow/controller/node_counters.go) and would trip
    # failFast at its first failed attempt (workflow/controller/operator.go,
    # checkParallelism; argoproj/argo-workflows#16849).
    with Steps(name="train-link",
               inputs=[Parameter(name="datasets"), Parameter(name="first"),
                       Parameter(name="last")]) as link_t:
        Step(name="train", template=train_t,
             arguments={"datasets": "{{inputs.parameters.datasets}}",
                        "first": "{{inputs.parameters.first}}",
                        "last": "{{inputs.parameters.last}}"})

    # Items start in list (date) order (workflow/controller/steps.go); parallelism 1 holds
    # the next link until the previous one succeeded or failed for good; failFast then
    # stops the chain, so no later day is trained on top of a gap. The mutex keeps a
    # second workflow's chain out for the whole chain.
    with Steps(name="train-chain", inputs=[Parameter(name="batches")], parallelism=1,
               fail_fast=True,
               synchronization=m.Synchronization(mutexes=[m.Mutex(name=settings.training_mutex)]),
               ) as chain_t:
        Step(name="train", template=link_t,
             arguments={"datasets": "{{item.dates}}", "first": "{{item.first}}",
                        "last": "{{item.last}}"},
             with_param="{{inputs.parameters.batches}}")

    with Steps(name="main") as main_t:
        Step(name="plan", template=plan_t, arguments={
            "datasets": "{{workflow.parameters.datasets}}",
            "days-per-step": "{{workflow.parameters.days-per-step}}"})
        with main_t.parallel():
            Step(name="train-chain", template=chain_t,
                 when="{{steps.plan.outputs.parameters.mode}} == dates",
                 arguments={"batches": "{{steps.plan.outputs.parameters.batches}}"})
            Step(name="drain-queue", template=worker_t,
                 when="{{steps.plan.outputs.parameters.mode}} == queued")
        Step(name="report", template=report_t)
