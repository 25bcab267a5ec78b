"""Pod Security admission offline (workflows/admission.py): a hardened pod passes, and
each rule of baseline and restricted refuses the pod that breaks it."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from workflows.admission import baseline_violations, restricted_violations, violations


def hardened() -> dict:
    context = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
               "readOnlyRootFilesystem": True}
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "init", "image": "i", "securityContext": dict(context)}],
        "containers": [{"name": "main", "image": "m", "securityContext": copy.deepcopy(context)}],
        "volumes": [{"name": "tmp", "emptyDir": {}},
                    {"name": "share", "persistentVolumeClaim": {"claimName": "c"}},
                    {"name": "bin", "image": {"reference": "r"}}],
    }


def main_context(spec: dict) -> dict:
    return spec["containers"][0]["securityContext"]


#: (what breaks the pod, a phrase of the message, refused at baseline too)
BREAKAGES: list[tuple[str, Callable[[dict], object], str, bool]] = [
    ("hostNetwork", lambda s: s.update(hostNetwork=True), "host namespaces", True),
    ("hostPID", lambda s: s.update(hostPID=True), "hostPID", True),
    ("hostPath", lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
     "hostPath volumes", True),
    ("nfs volume", lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x"}}),
     "restricted volume types: volume 'n' uses nfs", False),
    ("privileged", lambda s: main_context(s).update(privileged=True), "privileged", True),
    ("SYS_ADMIN", lambda s: main_context(s)["capabilities"].update(add=["SYS_ADMIN"]),
     "non-default capabilities", True),
    ("CHOWN added", lambda s: main_context(s)["capabilities"].update(add=["CHOWN"]),
     "must not include CHOWN", False),
    ("no drop ALL", lambda s: main_context(s).pop("capabilities"), 'drop=["ALL"]', False),
    ("escalation", lambda s: main_context(s).pop("allowPrivilegeEscalation"),
     "allowPrivilegeEscalation != false: container 'main'", False),
    ("init escalation", lambda s: s["initContainers"][0]["securityContext"].update(
        allowPrivilegeEscalation=True), "container 'init'", False),
    ("root allowed", lambda s: s["securityContext"].pop("runAsNonRoot"),
     "runAsNonRoot != true", False),
    ("uid 0", lambda s: main_context(s).update(runAsUser=0), "runAsUser=0", False),
    ("pod uid 0", lambda s: s["securityContext"].update(runAsUser=0), "pod must not set "
     "runAsUser=0", False),
    ("no seccomp", lambda s: s["securityContext"].pop("seccompProfile"),
     "seccompProfile.type to \"RuntimeDefault\"", False),
    ("Unconfined", lambda s: main_context(s).update(seccompProfile={"type": "Unconfined"}),
     "Unconfined", True),
    ("hostPort", lambda s: s["containers"][0].update(ports=[{"containerPort": 80,
                                                             "hostPort": 80}]),
     "hostPort", True),
    ("sysctl", lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax",
                                                               "value": "1"}]),
     "forbidden sysctls: kernel.msgmax", True),
    ("procMount", lambda s: main_context(s).update(procMount="Unmasked"), "procMount", True),
    ("AppArmor", lambda s: main_context(s).update(appArmorProfile={"type": "Unconfined"}),
     "AppArmor", True),
    ("SELinux user", lambda s: main_context(s).update(seLinuxOptions={"user": "root"}),
     "user may not be set", True),
    ("SELinux type", lambda s: s["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
     "type 'spc_t'", True),
    ("probe host", lambda s: s["containers"][0].update(
        livenessProbe={"httpGet": {"host": "1.2.3.4", "port": 80}}), "livenessProbe", True),
    ("ephemeral container", lambda s: s.update(ephemeralContainers=[{"name": "debug"}]),
     "container 'debug'", False),
]


def test_a_hardened_pod_is_admitted_at_every_level():
    for level in ("privileged", "baseline", "restricted"):
        assert violations(hardened(), level) == []


@pytest.mark.parametrize(("breakage", "phrase", "baseline_too"),
                         [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES])
def test_each_rule_refuses_the_pod_that_breaks_it(breakage, phrase, baseline_too):
    # GIVEN the hardened pod with one rule broken
    spec = hardened()
    breakage(spec)
    # WHEN restricted and baseline admit it
    restricted = restricted_violations(spec)
    baseline = baseline_violations(spec)
    # THEN restricted names that rule, and baseline refuses only its own rules
    assert any(phrase in p for p in restricted), restricted
    assert any(phrase in p for p in baseline) is baseline_too, baseline
    assert violations(spec, "privileged") == []


def test_container_level_settings_stand_in_for_the_pod_level_ones():
    spec = hardened()
    spec["securityContext"] = {}
    for container in spec["initContainers"] + spec["containers"]:
        container["securityContext"].update(runAsNonRoot=True,
                                            seccompProfile={"type": "Localhost",
                                                            "localhostProfile": "p.json"})
    assert restricted_violations(spec) == []
    spec["initContainers"][0]["securityContext"].pop("runAsNonRoot")
    assert [p for p in restricted_violations(spec)] == [
        "runAsNonRoot != true: container 'init' must set securityContext.runAsNonRoot=true "
        "(or the pod must)"]


def test_user_namespace_and_windows_exemptions():
    spec = hardened()
    spec["securityContext"].update(runAsNonRoot=False, runAsUser=0)
    assert any("runAsNonRoot" in p for p in restricted_violations(spec))
    spec["hostUsers"] = False
    assert restricted_violations(spec) == []
    windows = hardened()
    main_context(windows).pop("allowPrivilegeEscalation")
    main_context(windows).pop("capabilities")
    windows["os"] = {"name": "windows"}
    assert restricted_violations(windows) == []


def test_apparmor_annotations_are_checked_from_the_metadata():
    metadata = {"annotations": {
        "container.apparmor.security.beta.kubernetes.io/main": "unconfined"}}
    assert any("annotation" in p for p in restricted_violations(hardened(), metadata))
    metadata["annotations"]["container.apparmor.security.beta.kubernetes.io/main"] = \
        "runtime/default"
    assert restricted_violations(hardened(), metadata) == []


def test_unknown_level_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown Pod Security level 'strict'"):
        violations(hardened(), "strict")
