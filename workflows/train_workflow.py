"""Stand-alone `Workflow` with the same spec as the template: `argo submit` it directly.

This is also the file the simulated-execution test runs.
"""

from __future__ import annotations

from hera.workflows import Workflow

from workflows.settings import WorkflowSettings
from workflows.spec import add_templates, spec_kwargs


def build(settings: WorkflowSettings | None = None) -> Workflow:
    """The training Workflow for `settings` (defaults: the committed one)."""
    settings = settings or WorkflowSettings()
    with Workflow(
        generate_name=f"{settings.template_name}-",
        labels={"app.kubernetes.io/name": "fraudpipe",
                "app.kubernetes.io/version": settings.version},
        **spec_kwargs(settings),
    ) as workflow:
        add_templates(settings)
    return workflow


w = build()
