"""`fraudpipe validate`, second half: the pods the cluster builds, not only the specs we write.

Among the manifests given, the controller's `workflow-controller-configmap` and the
Namespace documents are found; every Workflow, WorkflowTemplate and CronWorkflow then has
its pods built the way Argo's controller builds them (`workflows.pods`, with that
ConfigMap's executor settings, or the empty default when it is not among the files) and
each pod is checked against the Pod Security level its namespace enforces
(`workflows.admission`). A ConfigMap missing or emptied shows here as Argo's `init` and
`wait` containers refused, as the API server would refuse every workflow pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflows.admission import violations
from workflows.controller_config import CONFIGMAP_NAME, ControllerConfigError, parse_configmap
from workflows.pods import BuiltPod, PodBuildError, build_pods
from workflows.problems import Problem

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
POD_KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow")


@dataclass
class PodReport:
    """The pods built for one workflow manifest and what admission says of them."""

    file: str
    """The manifest file."""
    kind: str
    """Workflow, WorkflowTemplate or CronWorkflow."""
    name: str
    """Its metadata.name."""
    namespace: str
    """The namespace its pods are created in."""
    level: str | None
    """The Pod Security level that namespace enforces; None when no Namespace manifest
    among the files declares it."""
    pods: list[BuiltPod] = field(default_factory=list)
    """Every distinct pod (template, attempt)."""
    refused: int = 0
    """How many of those pods admission would refuse."""

    def summary(self) -> str:
        """One line: pods, containers per pod, the level and how many are refused."""
        shapes = sorted({f"{len(p.containers)} ({', '.join(p.containers)})" for p in self.pods})
        level = f"Pod Security {self.level!r} of namespace {self.namespace}" if self.level \
            else f"namespace {self.namespace}: no Namespace manifest, Pod Security not checked"
        attempts = "/".join(dict.fromkeys(p.attempt for p in self.pods))
        return (f"{self.file}: {self.kind} {self.name}: {len(self.pods)} pod(s) built "
                f"({len({p.template for p in self.pods})} templates, tries {attempts or '-'}), "
                f"containers per pod: {'; '.join(shapes) or '-'}; {level}: "
                f"{self.refused} refused")


@dataclass
class Found:
    """The documents the pod check needs, gathered from every file."""

    configmaps: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    levels: dict[str, str] = field(default_factory=dict)
    workflows: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)


def gather(documents: list[tuple[str, int, Any]]) -> Found:
    """Sort (file, index, document) triples into what the pod check reads."""
    found = Found()
    for file, index, document in documents:
        if not isinstance(document, dict):
            continue
        kind = document.get("kind")
        metadata = document.get("metadata") or {}
        if kind == "ConfigMap" and metadata.get("name") == CONFIGMAP_NAME:
            found.configmaps.append((file, index, document))
        elif kind == "Namespace":
            level = (metadata.get("labels") or {}).get(ENFORCE_LABEL)
            if level:
                found.levels[metadata.get("name", "")] = level
        elif kind in POD_KINDS:
            found.workflows.append((file, index, document))
            if kind == "WorkflowTemplate":
                found.templates[metadata.get("name", "")] = document
    return found


def check_pods(documents: list[tuple[str, int, Any]]) -> tuple[list[PodReport], list[Problem]]:
    """Build the pods of every workflow manifest and check their admission.

    Args:
        documents: (file, document index, document) of every YAML document checked.

    Returns:
        One report per workflow manifest, and the problems: a ConfigMap Argo could not
        load, a workflow whose pods cannot be built, a pod its namespace would refuse.
    """
    found = gather(documents)
    problems: list[Problem] = []
    config: dict[str, Any] | None = None
    for file, index, configmap in found.configmaps:
        try:
            config = parse_configmap(configmap, file)
        except ControllerConfigError as exc:
            problems.append(Problem(file, index, "$.data", str(exc)))
    if len(found.configmaps) > 1:
        file, index, _ = found.configmaps[1]
        problems.append(Problem(file, index, "$.metadata.name",
                                f"a second {CONFIGMAP_NAME}: the controller reads one"))
    reports = []
    for file, index, manifest in found.workflows:
        metadata = manifest.get("metadata") or {}
        namespace = metadata.get("namespace", "default")
        name = metadata.get("name") or f"{metadata.get('generateName', '?')}*"
        report = PodReport(file, manifest["kind"], name, namespace,
                           found.levels.get(namespace))
        reports.append(report)
        try:
            report.pods = build_pods(manifest, config, workflow_templates=found.templates)
        except PodBuildError as exc:
            problems.append(Problem(file, index, "$.spec", f"cannot build its pods: {exc}"))
            continue
        for pod in report.pods:
            refused = violations(pod.spec, report.level, pod.metadata) if report.level else []
            report.refused += bool(refused)
            problems += [Problem(file, index, template_path(manifest, pod.template),
                                 f"pod of template {pod.template!r}, {pod.attempt} try (as "
                                 f"Argo builds it), is refused by Pod Security "
                                 f"{report.level!r}: {why}")
                         for why in refused]
    return reports, problems


def template_path(manifest: dict[str, Any], template: str) -> str:
    """JSON path of `template` in `manifest`, or of the reference that brings it in."""
    spec = manifest.get("spec") or {}
    prefix = "$.spec"
    if manifest.get("kind") == "CronWorkflow":
        spec, prefix = spec.get("workflowSpec") or {}, "$.spec.workflowSpec"
    names = [t.get("name") for t in spec.get("templates") or []]
    if template in names:
        return f"{prefix}.templates[{names.index(template)}]"
    return f"{prefix}.workflowTemplateRef"


def pod_documents(files: list[Path]) -> list[tuple[str, int, Any]]:
    """(file, index, document) of every readable YAML document of `files`."""
    import yaml

    documents: list[tuple[str, int, Any]] = []
    for path in files:
        try:
            loaded = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
                      if d is not None]
        except (OSError, yaml.YAMLError):
            continue  # reported by the schema check
        documents += [(str(path), index, document) for index, document in enumerate(loaded)]
    return documents
