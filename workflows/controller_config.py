"""The workflow controller's configuration, read from `workflow-controller-configmap`.

Argo reads its configuration from one ConfigMap (`config/controller.go` parseConfigMap,
argoproj/argo-workflows v4.1.2, lines 38-57): either a single `config` key holding the
whole YAML, or one key per top-level field (`executor`, `mainContainer`, ...), each value
YAML. It decodes strictly (`yaml.UnmarshalStrict`), so an unknown key stops the
controller. The top-level fields are those of `Config` in `config/config.go` (lines 26-144).
"""

from __future__ import annotations

from typing import Any

import yaml

#: Top-level keys of `Config` (config/config.go, lines 26-144, json tags).
CONFIG_KEYS = frozenset({
    "nodeEvents", "workflowEvents", "executor", "mainContainer", "kubeConfig",
    "artifactRepository", "namespace", "instanceID", "metricsConfig", "telemetryConfig",
    "parallelism", "namespaceParallelism", "resourceRateLimit", "persistence", "links",
    "columns", "workflowDefaults", "podSpecLogStrategy", "podGCGracePeriodSeconds",
    "podGCDeleteDelayDuration", "workflowRestrictions", "initialDelay", "images",
    "retentionPolicy", "navColor", "sso", "synchronization", "artifactDrivers",
    "failedPodRestart", "disableAgentPodCreation", "initlessPod",
})

#: Name of the ConfigMap the controller reads (the install manifests' default).
CONFIGMAP_NAME = "workflow-controller-configmap"


class ControllerConfigError(ValueError):
    """A controller configuration Argo's controller would refuse to load."""


def parse_configmap(configmap: dict[str, Any], where: str = "configmap") -> dict[str, Any]:
    """The controller configuration held in a ConfigMap document.

    Args:
        configmap: the ConfigMap (`kind: ConfigMap`, its `data`).
        where: how errors name the source (a file name).

    Returns:
        The configuration as a mapping of top-level fields.

    Raises:
        ControllerConfigError: a `config` key beside others, a value that is not YAML, or
            a key `Config` does not define.
    """
    data = configmap.get("data") or {}
    if not isinstance(data, dict):
        raise ControllerConfigError(f"{where}: data: expected a mapping of strings")
    if "config" in data:
        if len(data) != 1:
            raise ControllerConfigError(
                f"{where}: data: with an item named 'config' it must be the only item")
        raw = _load(data["config"], f"{where}: data.config")
        if not isinstance(raw, dict):
            raise ControllerConfigError(f"{where}: data.config: expected a YAML mapping")
        config = raw
    else:
        config = {key: _load(value, f"{where}: data.{key}") for key, value in data.items()}
    return check_keys(config, where)


def _load(text: Any, where: str) -> Any:
    if not isinstance(text, str):
        raise ControllerConfigError(f"{where}: expected a string holding YAML, got {text!r}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ControllerConfigError(f"{where}: not YAML ({exc})") from exc


def check_keys(config: dict[str, Any], where: str = "controller config") -> dict[str, Any]:
    """`config` itself, after checking every top-level key is one `Config` defines."""
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ControllerConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}: the controller decodes strictly "
            f"(expected some of {', '.join(sorted(CONFIG_KEYS))})")
    return config


def controller_config(source: dict[str, Any] | None, where: str = "controller config"
                      ) -> dict[str, Any]:
    """A parsed configuration from a ConfigMap document, a config mapping, or nothing.

    `None` is the install manifests' empty ConfigMap: every field at its default.
    """
    if source is None:
        return {}
    if source.get("kind") == "ConfigMap":
        return parse_configmap(source, where)
    return check_keys(dict(source), where)
