"""Strict offline validation of the rendered manifests (`fraudpipe validate`).

Argo kinds are checked against Argo's published JSON schema (`api/jsonschema/schema.json`
of argoproj/argo-workflows v4.1.2, vendored in `workflows/argo_schema/`). That schema
checks types and required fields but leaves unknown keys alone, while Argo's server
decodes strictly, so a second pass walks the schema's `$ref`s together with the
manifest and reports every key the schema does not define. Kubernetes core kinds go
through the strict schemas shipped by `kubernetes-validate` (offline), or a minimal
structural check when that package is missing; GKE's ComputeClass through a check of the
fields used. Then the pods of every workflow are built the way Argo's controller builds
them and checked against their namespace's Pod Security level (`workflows.validate_pods`).
Every problem names the file, the document and the JSON path of the bad field.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from workflows.problems import Problem

#: Argo's JSON schema, vendored (see the README beside it for its source and licence).
ARGO_SCHEMA = (Path(__file__).resolve().parent / "argo_schema"
               / "workflows-v4.1.2-jsonschema.json.gz")
ARGO_API_VERSION = "argoproj.io/v1alpha1"
ARGO_KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow",
              "WorkflowEventBinding")
KUBERNETES_KINDS = ("PersistentVolume", "PersistentVolumeClaim", "Service", "StatefulSet",
                    "Deployment", "Job", "Pod", "ServiceAccount", "Role", "RoleBinding",
                    "ConfigMap", "Secret", "Namespace", "HorizontalPodAutoscaler",
                    "PodDisruptionBudget")
#: Kubernetes version whose schemas `kubernetes-validate` checks against.
KUBERNETES_VERSION = "1.33"
#: GKE's ComputeClass (`cloud.google.com/v1`): no published JSON schema, so the fields
#: fraudpipe uses are checked by hand (GKE docs, "ComputeClass CustomResourceDefinition").
COMPUTE_CLASS_API_VERSION = "cloud.google.com/v1"
COMPUTE_CLASS_SPEC_KEYS = frozenset({
    "priorities", "priorityDefaults", "nodePoolAutoCreation", "activeMigration",
    "autoscalingPolicy", "whenUnsatisfiable", "nodePoolConfig", "nodePoolGroup",
    "description", "autopilot"})
COMPUTE_CLASS_RULE_KEYS = frozenset({
    "machineFamily", "machineType", "spot", "minCores", "minMemoryGb", "gpu", "tpu",
    "storage", "nodepools", "podFamily", "reservations", "location", "maxPodsPerNode",
    "flexStart", "nodeSystemConfig", "capacityCheckWaitTimeSeconds", "placement"})


def json_path(parts: Iterable[Any]) -> str:
    """`$.spec.templates[0].name` from a sequence of keys and indices."""
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


@functools.cache
def argo_schema(path: str | None = None) -> dict[str, Any]:
    """Argo's JSON schema, loaded once: the vendored one, or `path` (`.json` or `.json.gz`)."""
    location = Path(path) if path else ARGO_SCHEMA
    if not location.is_file():
        raise FileNotFoundError(f"Argo JSON schema not found at {location}")
    data = location.read_bytes()
    if location.suffix == ".gz":
        data = gzip.decompress(data)
    return json.loads(data)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s (`#/definitions/...`) until a concrete schema."""
    seen = 0
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = target
        seen += 1
        if seen > 64:
            raise ValueError(f"$ref loop at {ref!r}")
    return schema


def unknown_keys(instance: Any, schema: dict[str, Any], root: dict[str, Any],
                 path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Yield (path, key) for every mapping key the schema does not define.

    Objects with `properties` accept only those keys, unless `additionalProperties` is
    a schema (maps such as labels), whose values are walked in turn. Objects with no
    `properties` at all (free-form, e.g. `x-kubernetes-preserve-unknown-fields`) are left
    alone. Arrays walk their `items` schema.
    """
    schema = _resolve(schema, root)
    if isinstance(instance, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            if properties is not None and key in properties:
                yield from unknown_keys(value, properties[key], root, (*path, key))
            elif isinstance(extra, dict):
                yield from unknown_keys(value, extra, root, (*path, key))
            elif properties is not None and extra is not True:
                yield (*path, key), key
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(instance):
            yield from unknown_keys(item, schema["items"], root, (*path, index))


def validate_argo(document: dict[str, Any], file: str, index: int,
                  schema_path: str | None = None) -> list[Problem]:
    """Schema errors and unknown keys of one Argo manifest."""
    root = argo_schema(schema_path)
    kind = document.get("kind")
    definition = f"io.argoproj.workflow.v1alpha1.{kind}"
    schema = {"$schema": root.get("$schema"), "definitions": root["definitions"],
              "$ref": f"#/definitions/{definition}"}
    validator = jsonschema.Draft202012Validator(schema)
    problems = [
        Problem(file, index, json_path(error.absolute_path), error.message)
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    ]
    problems += [
        Problem(file, index, json_path(where),
                f"unknown key {key!r}: the Argo v4.1 schema does not define it "
                "(Argo's server decodes strictly)")
        for where, key in unknown_keys(document, schema, schema)
    ]
    return problems


def validate_kubernetes(document: dict[str, Any], file: str, index: int) -> list[Problem]:
    """Strict Kubernetes schema check of one core manifest."""
    try:
        import kubernetes_validate
    except ImportError:
        return structural_kubernetes(document, file, index)
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [Problem(file, index, json_path(error.absolute_path), error.message)]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [Problem(file, index, "$.apiVersion", error.message)]
    return []


def structural_kubernetes(document: dict[str, Any], file: str, index: int) -> list[Problem]:
    """Fallback without `kubernetes-validate`: the fields every object must have."""
    problems = []
    metadata = document.get("metadata")
    if not isinstance(document.get("apiVersion"), str):
        problems.append(Problem(file, index, "$.apiVersion", "expected a string"))
    if not isinstance(metadata, dict):
        problems.append(Problem(file, index, "$.metadata", "expected an object"))
    elif not isinstance(metadata.get("name"), str):
        problems.append(Problem(file, index, "$.metadata.name", "expected a string"))
    return problems


def validate_compute_class(document: dict[str, Any], file: str, index: int) -> list[Problem]:
    """The fields of a GKE ComputeClass fraudpipe relies on, strictly."""
    problems = []
    if document.get("apiVersion") != COMPUTE_CLASS_API_VERSION:
        problems.append(Problem(file, index, "$.apiVersion",
                                f"expected {COMPUTE_CLASS_API_VERSION!r}"))
    if (document.get("metadata") or {}).get("namespace"):
        problems.append(Problem(file, index, "$.metadata.namespace",
                                "a ComputeClass is cluster-scoped: no namespace"))
    spec = document.get("spec")
    if not isinstance(spec, dict):
        return [*problems, Problem(file, index, "$.spec", "expected an object")]
    problems += [Problem(file, index, f"$.spec.{key}", f"unknown key {key!r}")
                 for key in spec if key not in COMPUTE_CLASS_SPEC_KEYS]
    priorities = spec.get("priorities")
    if not isinstance(priorities, list) or not priorities:
        problems.append(Problem(file, index, "$.spec.priorities", "expected a non-empty list"))
        priorities = []
    for position, rule in enumerate(priorities):
        where = f"$.spec.priorities[{position}]"
        if not isinstance(rule, dict):
            problems.append(Problem(file, index, where, "expected an object"))
            continue
        problems += [Problem(file, index, f"{where}.{key}", f"unknown key {key!r}")
                     for key in rule if key not in COMPUTE_CLASS_RULE_KEYS]
        if "spot" in rule and not isinstance(rule["spot"], bool):
            problems.append(Problem(file, index, f"{where}.spot", "expected a boolean"))
    if spec.get("whenUnsatisfiable", "ScaleUpAnyway") not in ("ScaleUpAnyway", "DoNotScaleUp"):
        problems.append(Problem(file, index, "$.spec.whenUnsatisfiable",
                                "expected 'ScaleUpAnyway' or 'DoNotScaleUp'"))
    for key, flag in (("nodePoolAutoCreation", "enabled"),
                      ("activeMigration", "optimizeRulePriority")):
        value = (spec.get(key) or {}).get(flag, False)
        if not isinstance(value, bool):
            problems.append(Problem(file, index, f"$.spec.{key}.{flag}", "expected a boolean"))
    return problems


def validate_document(document: Any, file: str, index: int,
                      schema_path: str | None = None) -> list[Problem]:
    """Problems of one YAML document, dispatched on its kind."""
    if not isinstance(document, dict):
        return [Problem(file, index, "$", "expected a mapping (a Kubernetes object)")]
    kind = document.get("kind")
    if kind is None and "apiVersion" not in document:
        return []  # not a Kubernetes object (e.g. a Prefect job template beside ours)
    if kind in ARGO_KINDS:
        if document.get("apiVersion") != ARGO_API_VERSION:
            return [Problem(file, index, "$.apiVersion", f"expected {ARGO_API_VERSION!r}, got "
                            f"{document.get('apiVersion')!r}")]
        return validate_argo(document, file, index, schema_path)
    if kind in KUBERNETES_KINDS:
        return validate_kubernetes(document, file, index)
    if kind == "ComputeClass":
        return validate_compute_class(document, file, index)
    return [Problem(file, index, "$.kind", f"no schema for kind {kind!r}; expected one of "
                    f"{', '.join(ARGO_KINDS + KUBERNETES_KINDS + ('ComputeClass',))}")]


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    """The YAML files named, directories searched recursively, in sorted order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


def validate_file(path: str | Path, schema_path: str | None = None) -> list[Problem]:
    """Problems of every document in one file (YAML syntax errors included)."""
    name = str(path)
    try:
        documents = list(yaml.safe_load_all(Path(path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        return [Problem(name, 0, "$", f"cannot read YAML: {exc}")]
    problems: list[Problem] = []
    for index, document in enumerate(d for d in documents if d is not None):
        problems += validate_document(document, name, index, schema_path)
    return problems


@dataclass
class Validation:
    """What `fraudpipe validate` found: files, problems, and the pods Argo would build."""

    files: list[Path]
    """The manifest files checked."""
    problems: list[Problem]
    """Schema problems, then pod problems."""
    pod_reports: list[Any]
    """One `workflows.validate_pods.PodReport` per workflow manifest."""


def validate_deployment(paths: Iterable[str | Path], schema_path: str | None = None
                        ) -> Validation:
    """Every manifest under `paths` against its schema, then the pods Argo would build.

    Each workflow's pods are built as Argo's controller builds them and checked against the
    Pod Security level of their namespace (`workflows.validate_pods`).
    """
    from workflows.validate_pods import check_pods, pod_documents

    files = manifest_files(paths)
    problems: list[Problem] = []
    for file in files:
        problems += validate_file(file, schema_path)
    reports, pod_problems = check_pods(pod_documents(files))
    return Validation(files, problems + pod_problems, reports)


def validate_paths(paths: Iterable[str | Path], schema_path: str | None = None
                   ) -> tuple[list[Path], list[Problem]]:
    """Validate every manifest under `paths`; returns (files checked, problems)."""
    result = validate_deployment(paths, schema_path)
    return result.files, result.problems
