"""Parameters and defaults of the Argo workflows, in one validated model.

The rendered YAML is committed and compared in a test, so rendering reads these
defaults only, never the environment: what a team changes per run (dates, image,
Redis URL, days per step) are Argo parameters with these values as defaults; what
shapes the templates (retries, parallelism, deadlines) is a field here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainer.errors import PermanentError
from workflows.image import check_image

#: Exit code of a validation or out-of-order error: the retry expression never retries it.
PERMANENT_EXIT_CODE: int = PermanentError.exit_code

#: Messages Argo records for a node whose pod disappeared under it
#: (argoproj/argo-workflows#9880 and upstream `examples/retry-conditional.yaml`).
PREEMPTION_MESSAGE_PATTERN = "imminent node shutdown|pod deleted"

#: Node label and taint GKE puts on Spot nodes.
SPOT_LABEL = "cloud.google.com/gke-spot"
#: Node label (and taint key) of a GKE ComputeClass; a pod selects the class with it.
COMPUTE_CLASS_LABEL = "cloud.google.com/compute-class"

#: Value of the `datasets` parameter that means "train whatever is queued in Redis".
QUEUED = "queued"


def package_version() -> str:
    """The installed fraudpipe version (`0.0.0` when running from an uninstalled tree)."""
    try:
        return version("fraudpipe")
    except PackageNotFoundError:  # pragma: no cover - the venv installs it editable
        return "0.0.0"


def version_suffix(raw: str) -> str:
    """A version usable in a Kubernetes name: `0.1.0` -> `v0-1-0`."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in raw.lower()).strip("-")
    return f"v{cleaned}"


class WorkflowSettings(BaseModel):
    """What the rendered templates are made of; every default is the committed one."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(default_factory=package_version, description="fraudpipe version")
    """Version of the package; it goes into every template name (STYLE.md, Versioning)."""

    namespace: str = Field(default="fraudpipe", min_length=1, description="Kubernetes namespace")
    """Namespace the templates are created in."""

    image: str | None = Field(
        default=None,
        description="the pushed step image, the `image` parameter's default (none: "
                    "every submission must pass it)",
    )
    """Step image built from `deployments/Dockerfile` and pushed (`workflows/image.py`).

    None by default: the committed templates name no image, so Argo refuses a submission
    that does not give one ("spec.arguments.image.value or ...valueFrom is required")
    instead of pulling a name that exists nowhere. `fraudpipe render` sets it from
    `--image` or `$FRAUDPIPE_IMAGE`."""

    service_account: str = Field(default="fraudpipe-workflow", min_length=1)
    """Service account of the pods (RBAC rendered beside the templates)."""

    pvc_name: str = Field(default="fileserver-claim", min_length=1)
    """Filestore PVC, as in the GKE sample."""

    filestore_storage_class: str = Field(default="standard-rwx", min_length=1)
    """StorageClass of the rendered claim (GKE's Filestore CSI driver, basic HDD tier)."""

    mount_path: str = Field(default="/mnt/fileserver", pattern=r"^/")
    """Where the share is mounted in every pod; the CLI's `--storage`."""

    redis_host: str = Field(default="redis", min_length=1, description="default queue host")
    """Redis host (in-cluster Service or Memorystore IP); the password comes from a Secret."""

    redis_port: int = Field(default=6379, ge=1, le=65535)
    """Redis port."""

    redis_db: int = Field(default=0, ge=0, le=15)
    """Redis logical database."""

    redis_secret_name: str = Field(default="fraudpipe-redis", min_length=1)
    """Secret holding the Redis password under `redis_secret_key`."""

    redis_secret_key: str = Field(default="password", min_length=1)
    """Key of the password in the Secret."""

    days_per_step: int = Field(default=1, ge=1, le=366)
    """Default number of days one training pod trains (batches amortise pod start-up)."""

    retry_limit: int = Field(default=3, ge=0, le=10)
    """Retries after the first attempt (Argo's `limit` counts retries, not attempts)."""

    on_demand_after_retries: int = Field(default=2, ge=0, le=11)
    """Attempts whose retry number reaches this run off Spot (set above the limit to never)."""

    backoff_duration: str = Field(default="30s")
    """First delay between attempts."""

    backoff_factor: int = Field(default=2, ge=1, le=10)
    """Growth of the delay between attempts."""

    backoff_cap: str = Field(default="10m")
    """Longest delay between attempts (`backoff.cap`, Argo v3.7+). There is deliberately no
    `backoff.maxDuration`: Argo counts it from the first attempt's start as a deadline for the
    whole retrying node (workflow/controller/operator.go, processNodeRetries), so any value
    shorter than the retried work would stop retrying a long step."""

    step_deadline_seconds: int = Field(default=3600, ge=60)
    """activeDeadlineSeconds of one training pod (a batch of days)."""

    workflow_deadline_seconds: int = Field(default=7 * 24 * 3600, ge=600)
    """activeDeadlineSeconds of a whole workflow (a 183-day backfill fits)."""

    cpu_request: str = Field(default="1")
    memory_request: str = Field(default="2Gi")
    cpu_limit: str = Field(default="2")
    memory_limit: str = Field(default="4Gi")
    tmp_size_limit: str = Field(default="1Gi")
    """Size of the emptyDir mounted at /tmp (the root filesystem is read-only)."""

    training_mutex: str = Field(default="fraudpipe-training", min_length=1)
    """Mutex every training pod holds: two workflows never train at once."""

    cron_schedule: str = Field(default="30 2 * * *")
    """When the CronWorkflow variant trains whatever is queued (UTC)."""

    cron_timezone: str = Field(default="UTC")

    argo_namespace: str = Field(default="argo", min_length=1)
    """Namespace of the Argo controller and its `workflow-controller-configmap`."""

    executor_run_as_user: int = Field(default=8737, ge=1)
    """uid of Argo's `init` and `wait` containers: the argoexec image's own user (Argo's
    `common.MinimalCtrSC`). They run with the executor settings of the controller's
    ConfigMap, not the workflow's (workflow/controller/workflowpod.go, newExecContainer)."""

    executor_cpu_request: str = Field(default="100m")
    executor_memory_request: str = Field(default="128Mi")
    executor_cpu_limit: str = Field(default="500m")
    executor_memory_limit: str = Field(default="256Mi")
    """Resources of `init` and `wait`. Set so that GKE Autopilot does not apply its own
    defaults to containers without requests."""

    compute_class: str = Field(default="fraudpipe-spot-first", min_length=1)
    """GKE custom ComputeClass of every first try: Spot nodes, and on-demand nodes when
    GKE cannot create Spot ones (docs/argo-rules.md, "Spot without stalls")."""

    @field_validator("image")
    @classmethod
    def _image_names_a_registry(cls, value: str | None) -> str | None:
        return None if value is None else check_image(value, "image")

    @property
    def suffix(self) -> str:
        """`v0-1-0` for version 0.1.0."""
        return version_suffix(self.version)

    @property
    def template_name(self) -> str:
        """Name of the WorkflowTemplate, version included."""
        return f"fraudpipe-train-{self.suffix}"

    @property
    def cron_name(self) -> str:
        """Name of the CronWorkflow, version included."""
        return f"fraudpipe-daily-{self.suffix}"
