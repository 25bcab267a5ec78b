"""Kubernetes Pod Security admission, offline: what a namespace's level refuses in a pod.

Every check of the Pod Security Standards at version `latest`, as the admission plugin
implements them (kubernetes/pod-security-admission, `policy/check_*.go`, read at commit
8f84a87 of 2026-07-01; documented in "Pod Security Standards",
<https://kubernetes.io/docs/concepts/security/pod-security-standards/>):

- baseline: host namespaces (`check_hostNamespaces.go`), privileged
  (`check_privileged.go`), capabilities beyond the default set
  (`check_capabilities_baseline.go`), hostPath volumes (`check_hostPathVolumes.go`),
  host ports (`check_hostPorts.go`), AppArmor (`check_appArmorProfile.go`), SELinux
  (`check_seLinuxOptions.go`), `/proc` mount (`check_procMount_baseline.go`), seccomp
  not `Unconfined` (`check_seccompProfile_baseline.go`), sysctls
  (`check_sysctls.go`), Windows host process (`check_windowsHostProcess.go`), probe and
  lifecycle `host` fields (`check_hostProbesAndhostLifecycle.go`);
- restricted, in addition: volume types (`check_restrictedVolumes.go`), privilege
  escalation (`check_allowPrivilegeEscalation.go`), non-root (`check_runAsNonRoot.go`),
  uid 0 (`check_runAsUser.go`), seccomp `RuntimeDefault`/`Localhost`
  (`check_seccompProfile_restricted.go`), capabilities drop ALL / add only
  NET_BIND_SERVICE (`check_capabilities_restricted.go`), `/proc` mount Default
  (`check_procMount_restricted.go`).

Every container is checked: init containers, containers and ephemeral containers
(`policy/visitor.go`). A pod in a user namespace (`hostUsers: false`) is exempt from the
non-root and uid 0 checks and, at baseline, from the `/proc` mount check
(`relaxPolicyForUserNamespacePod`, `policy/helpers.go`); a Windows pod (`os.name:
windows`) from the privilege escalation, seccomp and capabilities checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t",
                           "container_engine_t"})
RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                "image", "persistentVolumeClaim", "projected", "secret"})
PROFILE_TYPES = ("RuntimeDefault", "Localhost")
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Init containers, containers, then ephemeral containers."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod_spec.get(key) or []


def _context(container: dict[str, Any]) -> dict[str, Any]:
    return container.get("securityContext") or {}


def baseline_violations(pod_spec: dict[str, Any],
                        metadata: dict[str, Any] | None = None) -> list[str]:
    """What the baseline level refuses in `pod_spec` (and its `metadata` annotations)."""
    problems: list[str] = []
    pod = pod_spec.get("securityContext") or {}
    user_namespace = pod_spec.get("hostUsers") is False
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(flag):
            problems.append(f"host namespaces: {flag}=true")
    for volume in pod_spec.get("volumes") or []:
        if "hostPath" in volume:
            problems.append(f"hostPath volumes: volume {volume.get('name')!r}")
    if pod.get("seLinuxOptions"):
        problems += _selinux("pod", pod["seLinuxOptions"])
    if (pod.get("seccompProfile") or {}).get("type") == "Unconfined":
        problems.append("seccompProfile: pod must not set securityContext.seccompProfile.type "
                        "to \"Unconfined\"")
    if (pod.get("appArmorProfile") or {}).get("type") not in (None, *PROFILE_TYPES):
        problems.append(f"forbidden AppArmor profile: pod {pod['appArmorProfile']['type']!r}")
    if (pod.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("hostProcess: pod must not set securityContext.windowsOptions."
                        "hostProcess=true")
    for sysctl in pod.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"forbidden sysctls: {sysctl.get('name')}")
    for key, value in ((metadata or {}).get("annotations") or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and value and value != "runtime/default" \
                and not value.startswith("localhost/"):
            problems.append(f"forbidden AppArmor profile: annotation {key}={value!r}")
    for container in containers(pod_spec):
        name = f"container {container.get('name', '?')!r}"
        context = _context(container)
        if context.get("privileged"):
            problems.append(f"privileged: {name} must not set securityContext.privileged=true")
        added = set((context.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        if added:
            problems.append(f"non-default capabilities: {name} must not include "
                            f"{', '.join(sorted(added))} in securityContext.capabilities.add")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"hostPort: {name} uses hostPort {port['hostPort']}")
        if context.get("seLinuxOptions"):
            problems += _selinux(name, context["seLinuxOptions"])
        if context.get("procMount", "Default") != "Default" and not user_namespace:
            problems.append(f"procMount: {name} must not set securityContext.procMount to "
                            f"{context['procMount']!r}")
        if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
            problems.append(f"seccompProfile: {name} must not set "
                            "securityContext.seccompProfile.type to \"Unconfined\"")
        if (context.get("appArmorProfile") or {}).get("type") not in (None, *PROFILE_TYPES):
            problems.append(f"forbidden AppArmor profile: {name} "
                            f"{context['appArmorProfile']['type']!r}")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"hostProcess: {name} must not set "
                            "securityContext.windowsOptions.hostProcess=true")
        problems += _host_fields(name, container)
    return problems


def _selinux(who: str, options: dict[str, Any]) -> list[str]:
    problems = []
    if options.get("type", "") not in SELINUX_TYPES:
        problems.append(f"seLinuxOptions: {who} type {options['type']!r} is not allowed")
    for key in ("user", "role"):
        if options.get(key):
            problems.append(f"seLinuxOptions: {who} {key} may not be set")
    return problems


def _host_fields(name: str, container: dict[str, Any]) -> list[str]:
    problems = []
    handlers = [(probe, container.get(probe) or {})
                for probe in ("livenessProbe", "readinessProbe", "startupProbe")]
    for hook in ("postStart", "preStop"):
        handlers.append((f"lifecycle.{hook}", (container.get("lifecycle") or {}).get(hook) or {}))
    for where, handler in handlers:
        for kind in ("httpGet", "tcpSocket"):
            if (handler.get(kind) or {}).get("host"):
                problems.append(f"probe or lifecycle host: {name} sets {where}.{kind}.host")
    return problems


def restricted_violations(pod_spec: dict[str, Any],
                          metadata: dict[str, Any] | None = None) -> list[str]:
    """What the restricted level refuses in `pod_spec`: every baseline rule and its own.

    Args:
        pod_spec: a Pod's `spec`.
        metadata: the Pod's metadata, for the AppArmor annotations (optional).

    Returns:
        One message per violation, naming the container (or `pod`) and the field; empty
        when the pod would be admitted.
    """
    problems = baseline_violations(pod_spec, metadata)
    pod = pod_spec.get("securityContext") or {}
    user_namespace = pod_spec.get("hostUsers") is False
    windows = (pod_spec.get("os") or {}).get("name") == "windows"
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds & RESTRICTED_VOLUMES:
            problems.append(f"restricted volume types: volume {volume.get('name')!r} uses "
                            f"{', '.join(sorted(kinds)) or 'no source'}")
    if pod.get("runAsNonRoot") is False and not user_namespace:
        problems.append("runAsNonRoot != true: pod must not set securityContext.runAsNonRoot"
                        "=false")
    if pod.get("runAsUser") == 0 and not user_namespace:
        problems.append("runAsUser=0: pod must not set runAsUser=0")
    pod_seccomp = (pod.get("seccompProfile") or {}).get("type")
    for container in containers(pod_spec):
        name = f"container {container.get('name', '?')!r}"
        context = _context(container)
        if not windows and context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"allowPrivilegeEscalation != false: {name} must set "
                            "securityContext.allowPrivilegeEscalation=false")
        if not user_namespace:
            non_root = context.get("runAsNonRoot", pod.get("runAsNonRoot"))
            if non_root is not True:
                problems.append(f"runAsNonRoot != true: {name} must set "
                                "securityContext.runAsNonRoot=true (or the pod must)")
            if context.get("runAsUser") == 0:
                problems.append(f"runAsUser=0: {name} must not set runAsUser=0")
        seccomp = (context.get("seccompProfile") or {}).get("type")
        if not windows and (seccomp or pod_seccomp) not in PROFILE_TYPES and \
                seccomp != "Unconfined":
            problems.append(f"seccompProfile: pod or {name} must set securityContext."
                            "seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"")
        capabilities = context.get("capabilities") or {}
        if not windows and "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"unrestricted capabilities: {name} must set securityContext."
                            "capabilities.drop=[\"ALL\"]")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if not windows and added:
            problems.append(f"unrestricted capabilities: {name} must not include "
                            f"{', '.join(sorted(added))} in securityContext.capabilities.add")
        if user_namespace and context.get("procMount", "Default") != "Default":
            problems.append(f"procMount: {name} must not set securityContext.procMount to "
                            f"{context['procMount']!r}")
    return problems


def violations(pod_spec: dict[str, Any], level: str,
               metadata: dict[str, Any] | None = None) -> list[str]:
    """What the Pod Security `level` (`privileged`, `baseline`, `restricted`) refuses."""
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security level {level!r}; expected one of "
                         f"{', '.join(LEVELS)}")
    if level == "restricted":
        return restricted_violations(pod_spec, metadata)
    if level == "baseline":
        return baseline_violations(pod_spec, metadata)
    return []
