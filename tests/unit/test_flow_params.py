"""The flows' shared parameters: declared once in flows/params.py, top-level in every flow.

Prefect builds a deployment's schema (what the UI form shows) with `parameter_schema` and
validates a run's parameters against the flow's signature; these tests use both, on the
flows themselves, the deployments of prefect.yaml and the README's `--param` commands.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml
from prefect.exceptions import ParameterTypeError
from prefect.utilities.callables import parameter_schema
from pydantic import Field, ValidationError

from flows.params import Connections, LeasePolicy, ParameterGroup, Training, expands_groups

ROOT = Path(__file__).resolve().parents[2]

#: Each flow, the groups it takes and its own required parameters.
FLOWS = {
    "flows/pipeline.py:daily_pipeline": ([Connections, Training], ["landing"]),
    "flows/train.py:train_flow": ([Connections, Training, LeasePolicy], []),
    "flows/ingest.py:ingest_flow": ([Connections], ["landing"]),
    "flows/backfill.py:backfill_flow": ([Connections, Training], ["start", "end"]),
    "flows/replay.py:replay_flow": ([Connections, Training], ["from_date"]),
}


def load(entrypoint: str):
    path, name = entrypoint.split(":")
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


@pytest.mark.parametrize("entrypoint", sorted(FLOWS))
def test_each_flow_schema_has_its_groups_fields_with_their_descriptions(entrypoint: str):
    groups, required = FLOWS[entrypoint]
    schema = parameter_schema(load(entrypoint))
    for group in groups:
        for name, info in group.model_fields.items():
            assert name in schema.properties, (entrypoint, name)
            field = schema.properties[name]
            assert field["description"] == info.description, (entrypoint, name)
            assert field.get("default") == info.default, (entrypoint, name)
    assert sorted(schema.required or []) == sorted(required)


def test_a_groups_bounds_and_choices_reach_the_schema_and_the_validation():
    flow = load("flows/train.py:train_flow")
    properties = parameter_schema(flow).properties
    assert properties["step_retries"]["minimum"] == 0
    assert properties["backend"]["enum"] == ["local", "argo"]
    assert flow.validate_parameters({"storage": "/s", "step_retries": "3"})["step_retries"] == 3
    with pytest.raises(ParameterTypeError, match="step_retries"):
        flow.validate_parameters({"step_retries": -1})
    with pytest.raises(ParameterTypeError, match="backend"):
        flow.validate_parameters({"backend": "k8s"})


def deployments() -> list[tuple[str, dict]]:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return [(d["entrypoint"], d.get("parameters") or {}) for d in config["deployments"]]


@pytest.mark.parametrize(("entrypoint", "parameters"), deployments(),
                         ids=[f"{e}-{i}" for i, (e, _) in enumerate(deployments())])
def test_every_deployments_parameters_still_validate(entrypoint: str, parameters: dict):
    flow = load(entrypoint)
    required = {name: "2018-04-01" for name in FLOWS[entrypoint][1] if name not in parameters}
    assert set(parameters) <= set(parameter_schema(flow).properties)
    validated = flow.validate_parameters({**parameters, **required})
    assert {k: validated[k] for k in parameters} == parameters


def readme_param_commands() -> list[tuple[str, dict]]:
    """Each `prefect deployment run 'FLOW/NAME' --param k=v ...` of the READMEs."""
    found = []
    for readme in (ROOT / "README.md", ROOT / "deployments" / "README.md"):
        for match in re.finditer(r"deployment run '([^'/]+)/[^']+'((?:\s+--param\s+\S+)+)",
                                 readme.read_text()):
            params = {}
            for pair in re.findall(r"--param\s+(\S+)", match.group(2)):
                key, _, value = pair.partition("=")
                try:  # what Prefect's CLI does with a --param value
                    params[key] = json.loads(value)
                except ValueError:
                    params[key] = value.strip('"')
            found.append((match.group(1), params))
    return found


def test_the_readmes_param_commands_name_parameters_the_flows_accept():
    by_name = {load(e).name: load(e) for e in FLOWS}
    commands = readme_param_commands()
    assert {name for name, _ in commands} >= {"daily-pipeline", "backfill"}
    for name, params in commands:
        flow = by_name[name]
        required = {p: "2018-04-01" for p in parameter_schema(flow).required or []
                    if p not in params}
        flow.validate_parameters({**params, **required})


def test_a_group_arrives_in_the_flow_body_as_one_validated_object():
    seen = {}

    @expands_groups
    def body(landing: str, connections: Connections, training: Training,
             today: str | None = None) -> None:
        seen.update(landing=landing, connections=connections, training=training, today=today)

    body("/landing", storage="/share", step_retries=0, today="2018-04-02")
    assert seen["connections"] == Connections(storage="/share")
    assert seen["training"] == Training(step_retries=0)
    assert (seen["landing"], seen["today"]) == ("/landing", "2018-04-02")
    with pytest.raises(ValidationError, match="retry_backoff_seconds"):
        body("/landing", retry_backoff_seconds=-1.0)


class MoreTraining(Training):
    """Training with one more field, as a new shared option would add it."""

    days_per_step: int = Field(default=1, ge=1, description="days trained per step.")


class Clash(ParameterGroup):
    """A group with a field named like a flow's own parameter."""

    landing: str = "x"


def test_a_new_shared_option_is_one_field_in_one_group():
    # GIVEN a group with one more field than Training, and a flow taking it
    @expands_groups
    def body(training: MoreTraining) -> int:
        """A flow.

        Args:
            training: how the days are trained.
        """
        return training.days_per_step

    # THEN the flow's schema, docstring and body have it, and nothing else had to change
    schema = parameter_schema(body)
    assert schema.properties["days_per_step"]["description"] == "days trained per step."
    assert set(schema.properties) == set(Training.model_fields) | {"days_per_step"}
    assert "training:" not in (body.__doc__ or "")
    assert body(days_per_step=3) == 3


def test_a_parameter_named_like_a_groups_field_is_refused():
    def body(landing: str, clash: Clash) -> None:
        """A flow with two `landing` parameters."""

    with pytest.raises(TypeError, match="landing"):
        expands_groups(body)


def test_a_model_as_the_parameter_would_refuse_the_names_users_pass():
    # Why the groups are laid out flat: Prefect renders a model parameter as one form
    # section, but then `--param storage=...` and prefect.yaml's `storage_block:` name no
    # parameter of the flow, and the run is refused before it starts.
    from prefect import flow
    from prefect.exceptions import SignatureMismatchError

    @flow(name="grouped")
    def grouped(connections: Connections) -> None:
        """A flow taking the group as one model parameter."""

    assert set(parameter_schema(grouped).properties) == {"connections"}
    with pytest.raises(SignatureMismatchError, match="storage"):
        grouped.validate_parameters({"storage": "/share"})
    flat = load("flows/ingest.py:ingest_flow")
    assert flat.validate_parameters({"landing": "/l", "storage": "/share"})["storage"] == "/share"
