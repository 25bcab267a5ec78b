"""Kubernetes' strategic merge of a pod spec patch, as Argo applies `podSpecPatch`.

Argo parses each substituted patch as YAML/JSON and strategic-merges it onto the pod spec
it built (`workflow/util/util.go` ApplyPodSpecPatch of argoproj/argo-workflows v4.1.2,
which calls `strategicpatch.StrategicMergePatch` with a `PodSpec`). The merge rules are
Kubernetes' (`k8s.io/apimachinery/pkg/util/strategicpatch`, "Update API Objects in Place
Using kubectl patch"): maps merge key by key, `null` deletes a key, lists that carry a
`patchMergeKey` in the PodSpec type merge item by item on that key, every other list is
replaced. The merge keys below are those of `k8s.io/api/core/v1` types.tags.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

#: List fields of a PodSpec (and of what it contains) that merge by a key, and the key.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "resourceClaims": "name",
    "schedulingGates": "name",
}


class PodSpecPatchError(ValueError):
    """A podSpecPatch Argo would refuse: not YAML/JSON, or not a PodSpec object."""


def strategic_merge(base: Any, patch: Any, field: str | None = None) -> Any:
    """`patch` merged onto `base` by Kubernetes' strategic merge rules.

    Args:
        base: the current value (a pod spec, or a part of it).
        patch: the patch for that value.
        field: the name of the field holding these values (picks the list merge key).

    Returns:
        The merged value; neither argument is modified.
    """
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    key = MERGE_KEYS.get(field or "")
    if key and isinstance(base, list) and isinstance(patch, list):
        merged_list = copy.deepcopy(base)
        for item in patch:
            name = item.get(key) if isinstance(item, dict) else None
            index = next((i for i, old in enumerate(merged_list)
                          if isinstance(old, dict) and name is not None and old.get(key) == name),
                         None)
            if index is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[index] = strategic_merge(merged_list[index], item)
        return merged_list
    return copy.deepcopy(patch)


def parse_patch(text: str) -> dict[str, Any]:
    """The PodSpec patch in `text` (YAML or JSON); an empty patch is `{}`.

    Raises:
        PodSpecPatchError: the text is not YAML, or not a mapping.
    """
    try:
        patch = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PodSpecPatchError(f"Failed to convert the PodSpecPatch yaml to json: {exc}") from exc
    if patch is None:
        return {}
    if not isinstance(patch, dict):
        raise PodSpecPatchError(f"invalid podSpecPatch {text!r}: expected a PodSpec object")
    return patch


def apply_pod_spec_patches(spec: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    """`spec` with each substituted patch text merged in order (workflow's, then template's)."""
    for text in texts:
        spec = strategic_merge(spec, parse_patch(text))
    return spec
