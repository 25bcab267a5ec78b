"""`CronWorkflow` fraudpipe-daily-<version>: trains whatever is queued, every day.

From Argo alone, for teams that do not schedule from Prefect.

It references the WorkflowTemplate instead of copying it, so the template stays the one
definition; `concurrencyPolicy: Forbid` and the training mutex keep runs from overlapping.
"""

from __future__ import annotations

from hera.workflows import CronWorkflow, Parameter
from hera.workflows import models as m

from workflows.settings import QUEUED, WorkflowSettings


def build(settings: WorkflowSettings | None = None) -> CronWorkflow:
    """The daily CronWorkflow for `settings` (defaults: the committed one)."""
    settings = settings or WorkflowSettings()
    return CronWorkflow(
        name=settings.cron_name,
        namespace=settings.namespace,
        labels={"app.kubernetes.io/name": "fraudpipe",
                "app.kubernetes.io/version": settings.version},
        schedules=[settings.cron_schedule],
        timezone=settings.cron_timezone,
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=7,
        failed_jobs_history_limit=7,
        workflow_template_ref=m.WorkflowTemplateRef(name=settings.template_name),
        # The image travels with the cron too: a template applied from another render
        # (or the committed one, which names none) cannot change what the cron runs.
        arguments=[Parameter(name="datasets", value=QUEUED)]
        + ([Parameter(name="image", value=settings.image)] if settings.image else []),
    )


w = build()
