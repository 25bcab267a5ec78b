"""Flow parameters shared by several flows, declared once as pydantic models.

Each group (`Connections`, `Training`, `LeasePolicy`) is a pydantic model whose fields
carry their default, bounds and description. A flow names a group once, as one parameter
typed by the model, and `@expands_groups` (under `@flow`) turns it into the group's fields:

    @flow(name="train")
    @expands_groups
    def train_flow(connections: Connections, training: Training) -> dict: ...

What Prefect sees (signature and docstring) has the fields as top-level parameters, each
with its description, so the deployment's UI form, `prefect deployment run --param
storage=...` and the `parameters:` of prefect.yaml stay as they were; the flow's body gets
one validated object per group. Why not a pydantic model as the parameter itself (Prefect
renders it as one form section): its fields would no longer be parameters, so `--param
storage=DIR` (prefect/cli/deployment.py merges each `--param` key as a top-level parameter
name) and every deployment's `storage_block:` would be refused as unknown parameters
(`parameters_to_args_kwargs` in prefect/utilities/callables raises `SignatureMismatchError`).

A new shared option is one field in one model here, and the flows that take its group
have it, documented, in their signature, schema and form.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from flows.resolve import resolve_queue, resolve_share
from trainer.queue.work_queue import WorkQueue
from trainer.share.layout import Share

R = TypeVar("R")


class ParameterGroup(BaseModel):
    """A group of flow parameters that `expands_groups` lays out as top-level parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Connections(ParameterGroup):
    """Where the share and the queue are: a saved block's name, or a plain value."""

    storage_block: str | None = Field(
        default=None, description="saved FilestoreStorage block (else `storage`).")
    storage: str | None = Field(
        default=None, description="local directory of the share (else `$FRAUDPIPE_STORAGE`).")
    queue_block: str | None = Field(
        default=None, description="saved RedisWorkQueue block (else `redis_url`).")
    redis_url: str | None = Field(
        default=None, description="Redis URL (else `$FRAUDPIPE_REDIS_URL`).")

    def share(self) -> Share:
        """The share these parameters name (`flows.resolve.resolve_share`)."""
        return resolve_share(self.storage_block, self.storage)

    def queue(self, lease: LeasePolicy | None = None) -> WorkQueue:
        """The work queue these parameters name, with `lease`'s overrides if given."""
        lease = lease or LeasePolicy()
        return resolve_queue(self.queue_block, self.redis_url,
                             lease_seconds=lease.lease_seconds,
                             max_attempts=lease.max_attempts)


class Training(ParameterGroup):
    """How the days are trained: where the steps run, the learner, retries."""

    backend: Literal["local", "argo"] = Field(
        default="local",
        description='"local" (steps as Prefect tasks in this flow run) or "argo" (pods of '
                    "an Argo workflow on GKE).")
    learner: str | None = Field(
        default=None, description="learner name for a new chain (default: the trainer's).")
    step_retries: int = Field(
        default=2, ge=0, description="retries of a step after a transient error (local "
                                     "backend; Argo retries by its own policy).")
    retry_backoff_seconds: float = Field(
        default=10.0, ge=0, description="first retry delay, doubled each retry.")
    argo_server_block: str | None = Field(
        default=None, description="saved ArgoServer block (argo backend).")


class LeasePolicy(ParameterGroup):
    """Overrides of the queue's lease policy, and how long to wait for another worker."""

    lease_seconds: float | None = Field(
        default=None, gt=0, description="lease length override.")
    max_attempts: int | None = Field(
        default=None, ge=1, description="queue attempt budget override.")
    wait_seconds: float = Field(
        default=600.0, ge=0, description="how long to wait for a day leased by another "
                                         "worker.")


def _group_of(annotation: object) -> type[ParameterGroup] | None:
    if isinstance(annotation, type) and issubclass(annotation, ParameterGroup):
        return annotation
    return None


def expanded_signature(fn: Callable[..., Any]) -> tuple[inspect.Signature,
                                                        dict[str, type[ParameterGroup]]]:
    """`fn`'s signature with each group parameter replaced by the group's fields.

    Returns:
        The signature (annotations resolved) and the group parameters by name.

    Raises:
        TypeError: a field's name is also another parameter's, or a group has a default.
    """
    hints = typing.get_type_hints(fn, include_extras=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, type[ParameterGroup]] = {}
    for parameter in inspect.signature(fn).parameters.values():
        annotation = hints.get(parameter.name, parameter.annotation)
        group = _group_of(annotation)
        if group is None:
            kind = inspect.Parameter.KEYWORD_ONLY if groups else parameter.kind
            parameters.append(parameter.replace(annotation=annotation, kind=kind))
            continue
        if parameter.default is not inspect.Parameter.empty:
            raise TypeError(f"{fn.__name__}: group parameter {parameter.name!r} takes no "
                            "default (its fields have theirs)")
        groups[parameter.name] = group
        parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                         default=info.default,
                                         annotation=info.rebuild_annotation())
                       for name, info in group.model_fields.items()]
    names = [p.name for p in parameters]
    clashes = sorted({n for n in names if names.count(n) > 1} | (set(names) & set(groups)))
    if clashes:
        raise TypeError(f"{fn.__name__}: parameter name(s) {clashes} given twice")
    return inspect.Signature(parameters, return_annotation=hints.get(
        "return", inspect.Signature.empty)), groups


def expanded_docstring(doc: str | None, groups: dict[str, type[ParameterGroup]]) -> str:
    """`doc` with the group parameters' lines of its Args section replaced by their fields.

    The lines are Google style (`name: description`), which Prefect reads as each
    parameter's description in the schema and the form.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    fields = [f"    {name}: {info.description or ''}".rstrip()
              for group in groups.values() for name, info in group.model_fields.items()]
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Args:")
    except StopIteration:
        return "\n".join([*lines, "", "Args:", *fields])
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith(" ")):
        end += 1
    kept, skipping = [], False
    for line in lines[start + 1:end]:
        if line.startswith("    ") and not line.startswith("     ") and line.strip():
            skipping = line.strip().split(":", 1)[0].split(" ", 1)[0] in groups
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join([*lines[:start + 1], *kept, *fields, *lines[end:]])


def expands_groups(fn: Callable[..., R]) -> Callable[..., R]:
    """Lay `fn`'s `ParameterGroup` parameters out as top-level keyword parameters.

    The returned function has the expanded signature and docstring (what `@flow` reads:
    schema, form, validation, `--param`), and calls `fn` with each group's fields
    validated into one instance of the group's model.
    """
    signature, groups = expanded_signature(fn)
    fields = {name: group for group in groups.values() for name in group.model_fields}

    def call(*args: Any, **kwargs: Any) -> R:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        own = {name: value for name, value in values.items() if name not in fields}
        for parameter, group in groups.items():
            own[parameter] = group.model_validate(
                {name: values[name] for name in group.model_fields})
        return fn(**own)

    call.__name__, call.__qualname__ = fn.__name__, fn.__qualname__
    call.__module__ = fn.__module__
    call.__doc__ = expanded_docstring(fn.__doc__, groups)
    call.__signature__ = signature  # type: ignore[attr-defined]
    return call
