"""`WorkflowTemplate` fraudpipe-train-<version>, the one definition the cluster runs.

`argo template create`, then
`argo submit --from workflowtemplate/fraudpipe-train-<version> -p datasets='[...]'`.
"""

from __future__ import annotations

from hera.workflows import WorkflowTemplate

from workflows.settings import WorkflowSettings
from workflows.spec import add_templates, spec_kwargs


def build(settings: WorkflowSettings | None = None) -> WorkflowTemplate:
    """The training WorkflowTemplate for `settings` (defaults: the committed one)."""
    settings = settings or WorkflowSettings()
    with WorkflowTemplate(
        name=settings.template_name,
        labels={"app.kubernetes.io/name": "fraudpipe",
                "app.kubernetes.io/version": settings.version},
        **spec_kwargs(settings),
    ) as template:
        add_templates(settings)
    return template


w = build()
