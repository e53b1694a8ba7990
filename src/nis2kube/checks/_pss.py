"""Pod Security Standards controls at policy version v1.37, as the upstream Pod Security Admission library
(k8s.io/pod-security-admission, policy/check_*.go) evaluates the newest version.

Each control takes a `PodView` (pod spec + pod annotations) and returns an `Outcome`: the list of
violations (empty = the control holds), or an exemption upstream grants (Windows pods, user-namespace
pods), or a reason why the control cannot be decided. Violations name the container, the field path
inside the pod spec and the offending value, so a finding is its own evidence.

Upstream semantics reproduced on purpose (they surprise people):
- init, regular and ephemeral containers are all visited;
- `runAsNonRoot` and `seccompProfile` may be set at pod level and inherited, but a container that sets a
  bad value explicitly fails even when the pod level is fine;
- a volume without any source is defaulted to emptyDir by the API server, so it is allowed;
- `hostUsers: false` relaxes baseline procMount, restricted runAsNonRoot and runAsUser (v1.35);
- Windows pods (`spec.os.name: windows`) are exempt from the restricted capabilities, seccomp and
  allowPrivilegeEscalation controls (v1.25), because those fields do not exist on Windows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from nis2kube.inventory.workloads import CONTAINER_FIELDS

# ---- policy data (v1.37) -----------------------------------------------------------------------------
BASELINE_ADDABLE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
SAFE_SYSCTLS = frozenset({
    # v1.0
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
    # v1.27
    "net.ipv4.ip_local_reserved_ports",
    # v1.29
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    # v1.32
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
    # v1.37
    "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat",
})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
RESTRICTED_VOLUME_SOURCES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected",
    "secret",
})
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
LIFECYCLE_HANDLERS = ("postStart", "preStop")


# ---- outcome vocabulary ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Violation:
    message: str  # "container opc (initContainers) securityContext.privileged is true"
    field: str  # path inside the pod spec: "spec.initContainers[0].securityContext.privileged"
    value: object
    container: str | None = None


@dataclass(frozen=True, slots=True)
class Exempt:
    """Upstream does not apply the control to this pod; the reason is reported as the pass message."""

    reason: str


@dataclass(frozen=True, slots=True)
class Undecidable:
    """The control cannot be evaluated on this pod (reported as not-assessed)."""

    reason: str


Outcome = list[Violation] | Exempt | Undecidable
Control = Callable[["PodView"], Outcome]


@dataclass(frozen=True, slots=True)
class ContainerRef:
    field: str  # initContainers / containers / ephemeralContainers
    index: int
    name: str
    spec: dict
    security_context: dict  # spec.securityContext, {} when absent or not a mapping

    @property
    def path(self) -> str:
        return f"spec.{self.field}[{self.index}]"

    @property
    def label(self) -> str:
        return f"container {self.name} ({self.field})"


@dataclass(frozen=True, slots=True)
class PodView:
    """A pod spec read once for the 21 controls that each walk it (per workload, in every scan)."""

    spec: dict
    annotations: dict
    all_containers: tuple[ContainerRef, ...]  # init, regular, ephemeral
    security_context: dict  # spec.securityContext, {} when absent or not a mapping
    is_windows: bool
    in_user_namespace: bool
    limit_defaults: frozenset[str] = frozenset()  # resources the namespace's LimitRanges give a default limit

    @classmethod
    def of(cls, spec: dict, annotations: dict, limit_defaults: frozenset[str] = frozenset()) -> PodView:
        found = []
        for field in CONTAINER_FIELDS:
            items = spec.get(field)
            if isinstance(items, list):
                found += [ContainerRef(field, index, str(item.get("name", f"#{index}")), item,
                                       _dict(item.get("securityContext")))
                          for index, item in enumerate(items) if isinstance(item, dict)]
        return cls(spec, annotations, tuple(found), _dict(spec.get("securityContext")),
                   _dict(spec.get("os")).get("name") == "windows", spec.get("hostUsers") is False, limit_defaults)

    def containers(self, fields: tuple[str, ...]) -> list[ContainerRef]:
        """The containers of these fields (most controls walk all_containers)."""
        return [c for c in self.all_containers if c.field in fields]

    def volumes(self) -> Iterator[tuple[int, dict]]:
        items = self.spec.get("volumes")
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    yield index, item


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def show(value: object) -> str:
    """A field value as a reader of the manifest would write it (true, 0, "Unconfined", ["NET_RAW"])."""
    if value is None:
        return "unset"
    return json.dumps(value, default=str)


def _on_container(c: ContainerRef, rel: str, value: object, what: str | None = None) -> Violation:
    return Violation(f"{c.label} {rel} {what or 'is ' + show(value)}", f"{c.path}.{rel}", value, c.name)


def _on_pod(rel: str, value: object, what: str | None = None) -> Violation:
    return Violation(f"pod {rel} {what or 'is ' + show(value)}", f"spec.{rel}", value)


def _is_zero(value: object) -> bool:
    return value == 0 and not isinstance(value, bool)


# ---- baseline ----------------------------------------------------------------------------------------
def host_namespaces(pod: PodView) -> Outcome:
    """Sharing the node's network, PID or IPC namespace removes the isolation every other control assumes."""
    return [Violation(f"spec.{key} is true", f"spec.{key}", True)
            for key in ("hostNetwork", "hostPID", "hostIPC") if pod.spec.get(key) is True]


def privileged(pod: PodView) -> Outcome:
    """A privileged container has every device and capability of the node: it is root on the node."""
    return [_on_container(c, "securityContext.privileged", True)
            for c in pod.all_containers if c.security_context.get("privileged") is True]


def capabilities_baseline(pod: PodView) -> Outcome:
    """Only the runtime's default capabilities may be added (NET_RAW and SYS_* are not among them)."""
    out = []
    for c in pod.all_containers:
        added = _list(_dict(c.security_context.get("capabilities")).get("add"))
        bad = [cap for cap in added if cap not in BASELINE_ADDABLE_CAPABILITIES]
        if bad:
            out.append(_on_container(c, "securityContext.capabilities.add", bad,
                                     f"adds {show(bad)}, beyond the baseline default set"))
    return out


def host_path_volumes(pod: PodView) -> Outcome:
    """A hostPath volume exposes the node's file system (kubelet credentials, container runtime socket)."""
    out = []
    for index, volume in pod.volumes():
        host_path = volume.get("hostPath")
        if host_path is not None:
            path = _dict(host_path).get("path")
            out.append(Violation(f"volume {volume.get('name')} is a hostPath volume (path {show(path)})",
                                 f"spec.volumes[{index}].hostPath", host_path))
    return out


def host_ports(pod: PodView) -> Outcome:
    """A hostPort binds on the node's interface, bypassing Services and most NetworkPolicy implementations."""
    out = []
    for c in pod.all_containers:
        for index, port in enumerate(_list(c.spec.get("ports"))):
            host_port = _dict(port).get("hostPort")
            if host_port is not None and not _is_zero(host_port):
                out.append(Violation(f"{c.label} ports[{index}].hostPort is {show(host_port)}",
                                     f"{c.path}.ports[{index}].hostPort", host_port, c.name))
    return out


def apparmor(pod: PodView) -> Outcome:
    """Disabling or replacing the runtime's AppArmor profile removes a mandatory-access-control layer.

    Checked through both channels upstream reads at every policy version: the deprecated per-container
    annotations and the securityContext.appArmorProfile fields (pod and container level)."""
    out = []
    for key, value in sorted(pod.annotations.items(), key=lambda kv: str(kv[0])):
        if not str(key).startswith(APPARMOR_ANNOTATION_PREFIX):
            continue
        text = "" if value is None else str(value)
        if text and text != "runtime/default" and not text.startswith("localhost/"):
            name = str(key)[len(APPARMOR_ANNOTATION_PREFIX):]
            out.append(Violation(f"annotation {key} is {show(text)}", f"metadata.annotations[{key}]", text,
                                 name or None))
    profile = pod.security_context.get("appArmorProfile")
    if profile is not None and _dict(profile).get("type") not in APPARMOR_TYPES:
        kind = _dict(profile).get("type")
        out.append(_on_pod("securityContext.appArmorProfile.type", kind))
    for c in pod.all_containers:
        profile = c.security_context.get("appArmorProfile")
        if profile is not None and _dict(profile).get("type") not in APPARMOR_TYPES:
            out.append(_on_container(c, "securityContext.appArmorProfile.type", _dict(profile).get("type")))
    return out


def _selinux_problems(options: dict) -> list[tuple[str, object]]:
    problems: list[tuple[str, object]] = []
    kind = options.get("type") or ""
    if kind not in SELINUX_TYPES:
        problems.append(("type", kind))
    for key in ("user", "role"):
        if options.get(key):
            problems.append((key, options[key]))
    return problems


def selinux(pod: PodView) -> Outcome:
    """A custom SELinux user, role or an unconfined type (spc_t) lifts the container's SELinux confinement."""
    out = []
    options = pod.security_context.get("seLinuxOptions")
    if options is not None:
        out += [_on_pod(f"securityContext.seLinuxOptions.{key}", value)
                for key, value in _selinux_problems(_dict(options))]
    for c in pod.all_containers:
        options = c.security_context.get("seLinuxOptions")
        if options is not None:
            out += [_on_container(c, f"securityContext.seLinuxOptions.{key}", value)
                    for key, value in _selinux_problems(_dict(options))]
    return out


def _unmasked_proc(pod: PodView) -> list[Violation]:
    return [_on_container(c, "securityContext.procMount", value)
            for c in pod.all_containers
            if (value := c.security_context.get("procMount")) is not None and value != "Default"]


def proc_mount_baseline(pod: PodView) -> Outcome:
    """An unmasked /proc exposes kernel interfaces; in a user namespace (hostUsers: false) it is allowed."""
    if pod.in_user_namespace:
        return Exempt("spec.hostUsers is false: the pod runs in a user namespace, any procMount is allowed")
    return _unmasked_proc(pod)


def proc_mount_restricted(pod: PodView) -> Outcome:
    """Restricted keeps the default /proc masks even in a user namespace."""
    return _unmasked_proc(pod)


def seccomp_baseline(pod: PodView) -> Outcome:
    """An explicitly Unconfined (or unknown) seccomp profile opens every syscall to the container."""
    out = []
    profile = pod.security_context.get("seccompProfile")
    if profile is not None and _dict(profile).get("type") not in SECCOMP_TYPES:
        out.append(_on_pod("securityContext.seccompProfile.type", _dict(profile).get("type")))
    for c in pod.all_containers:
        profile = c.security_context.get("seccompProfile")
        if profile is not None and _dict(profile).get("type") not in SECCOMP_TYPES:
            out.append(_on_container(c, "securityContext.seccompProfile.type", _dict(profile).get("type")))
    return out


def sysctls(pod: PodView) -> Outcome:
    """Only namespaced sysctls isolated from other pods are safe; the rest change the whole node."""
    out = []
    for index, item in enumerate(_list(pod.security_context.get("sysctls"))):
        name = _dict(item).get("name")
        if name not in SAFE_SYSCTLS:
            out.append(Violation(f"pod securityContext.sysctls[{index}] sets {show(name)}, not a safe sysctl",
                                 f"spec.securityContext.sysctls[{index}].name", name))
    return out


def host_process(pod: PodView) -> Outcome:
    """A Windows HostProcess container runs directly on the node with the node's privileges."""
    out = []
    if _dict(pod.security_context.get("windowsOptions")).get("hostProcess") is True:
        out.append(_on_pod("securityContext.windowsOptions.hostProcess", True))
    out += [_on_container(c, "securityContext.windowsOptions.hostProcess", True) for c in pod.all_containers
            if _dict(c.security_context.get("windowsOptions")).get("hostProcess") is True]
    return out


def host_probes(pod: PodView) -> Outcome:
    """A probe or lifecycle hook with a `host` makes the kubelet connect anywhere, from the node (v1.34)."""
    out = []
    for c in pod.all_containers:
        for rel, handler in _handlers(c.spec):
            for action in ("httpGet", "tcpSocket"):
                host = _dict(handler.get(action)).get("host")
                if host:
                    out.append(_on_container(c, f"{rel}.{action}.host", host))
    return out


def _handlers(container: dict) -> Iterator[tuple[str, dict]]:
    """(field path, handler) of the probes and lifecycle hooks a container sets."""
    for probe in PROBES:
        if isinstance(handler := container.get(probe), dict):
            yield probe, handler
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in LIFECYCLE_HANDLERS:
            if isinstance(handler := lifecycle.get(hook), dict):
                yield f"lifecycle.{hook}", handler


# ---- restricted --------------------------------------------------------------------------------------
def volume_types(pod: PodView) -> Outcome:
    """Only volume types that go through PersistentVolumes or carry pod-local data are allowed."""
    out = []
    for index, volume in pod.volumes():
        sources = [key for key, value in volume.items() if key != "name" and value is not None]
        if not sources or any(key in RESTRICTED_VOLUME_SOURCES for key in sources):
            continue  # no source at all is defaulted to emptyDir by the API server
        kinds = sorted(sources)
        out.append(Violation(f"volume {volume.get('name')} has the restricted type {', '.join(kinds)}",
                             f"spec.volumes[{index}]", kinds))
    return out


def _windows_exempt(pod: PodView) -> Exempt | None:
    if pod.is_windows:
        return Exempt("spec.os.name is windows: the field does not exist on Windows (exempt since v1.25)")
    return None


def privilege_escalation(pod: PodView) -> Outcome:
    """setuid binaries and file capabilities can regain privileges unless no_new_privs is set."""
    exempt = _windows_exempt(pod)
    if exempt:
        return exempt
    return [_on_container(c, "securityContext.allowPrivilegeEscalation", value,
                          "is unset (must be false)" if value is None else None)
            for c in pod.all_containers
            if (value := c.security_context.get("allowPrivilegeEscalation")) is not False]


def run_as_non_root(pod: PodView) -> Outcome:
    """Root in a container is root on the node after an escape; the kubelet refuses UID 0 when set to true."""
    if pod.in_user_namespace:
        return Exempt("spec.hostUsers is false: container root maps to an unprivileged node user (v1.35)")
    out = []
    pod_value = pod.security_context.get("runAsNonRoot")
    if pod_value is not None and pod_value is not True:
        out.append(_on_pod("securityContext.runAsNonRoot", pod_value))
    for c in pod.all_containers:
        value = c.security_context.get("runAsNonRoot")
        if value is not None:
            if value is not True:
                out.append(_on_container(c, "securityContext.runAsNonRoot", value))
        elif pod_value is not True:
            out.append(_on_container(c, "securityContext.runAsNonRoot", None,
                                     "is unset and the pod-level securityContext.runAsNonRoot is not true"))
    return out


def run_as_user(pod: PodView) -> Outcome:
    """An explicit runAsUser: 0 runs the process as root whatever the image says."""
    if pod.in_user_namespace:
        return Exempt("spec.hostUsers is false: UID 0 is mapped to an unprivileged node user (v1.35)")
    out = []
    if _is_zero(pod.security_context.get("runAsUser")):
        out.append(_on_pod("securityContext.runAsUser", 0))
    out += [_on_container(c, "securityContext.runAsUser", 0)
            for c in pod.all_containers if _is_zero(c.security_context.get("runAsUser"))]
    return out


def seccomp_restricted(pod: PodView) -> Outcome:
    """Every container must run under RuntimeDefault or a Localhost profile, set on the pod or on itself."""
    exempt = _windows_exempt(pod)
    if exempt:
        return exempt
    out = []
    profile = pod.security_context.get("seccompProfile")
    pod_ok = profile is not None and _dict(profile).get("type") in SECCOMP_TYPES
    if profile is not None and not pod_ok:
        out.append(_on_pod("securityContext.seccompProfile.type", _dict(profile).get("type")))
    for c in pod.all_containers:
        profile = c.security_context.get("seccompProfile")
        if profile is not None:
            kind = _dict(profile).get("type")
            if kind not in SECCOMP_TYPES:
                out.append(_on_container(c, "securityContext.seccompProfile.type", kind))
        elif not pod_ok:
            out.append(_on_container(c, "securityContext.seccompProfile", None,
                                     "is unset and the pod sets no RuntimeDefault or Localhost profile"))
    return out


def capabilities_restricted(pod: PodView) -> Outcome:
    """Containers must drop ALL capabilities and may add back only NET_BIND_SERVICE."""
    exempt = _windows_exempt(pod)
    if exempt:
        return exempt
    out = []
    for c in pod.all_containers:
        caps = _dict(c.security_context.get("capabilities"))
        drop = _list(caps.get("drop"))
        if "ALL" not in drop:
            out.append(_on_container(c, "securityContext.capabilities.drop", drop or None,
                                     f"is {show(drop or None)} (must include \"ALL\")"))
        bad = [cap for cap in _list(caps.get("add")) if cap != "NET_BIND_SERVICE"]
        if bad:
            out.append(_on_container(c, "securityContext.capabilities.add", bad,
                                     f"adds {show(bad)} (only \"NET_BIND_SERVICE\" is allowed)"))
    return out


# ---- pod hardening beyond PSS ------------------------------------------------------------------------
def resource_limits(pod: PodView) -> Outcome:
    """Without cpu and memory limits one container can starve its node and every workload on it.

    A limit the namespace's LimitRange defaults counts: the LimitRanger admission plugin sets it on every
    init and regular container of each pod created there. Ephemeral containers are skipped: the API forbids
    resources on them."""
    out = []
    for c in pod.containers(("initContainers", "containers")):
        limits = _dict(_dict(c.spec.get("resources")).get("limits"))
        missing = [key for key in ("cpu", "memory")
                   if limits.get(key) in (None, "") and key not in pod.limit_defaults]
        if missing:
            what = " and ".join(f"resources.limits.{key}" for key in missing)
            out.append(Violation(f"{c.label} sets no {what}", f"{c.path}.resources.limits", limits or None,
                                 c.name))
    return out


def read_only_root_fs(pod: PodView) -> Outcome:
    """A writable root file system lets an intruder drop tools and persist changes inside the container."""
    if pod.is_windows:
        return Undecidable("Windows pod: readOnlyRootFilesystem is not supported on Windows")
    return [_on_container(c, "securityContext.readOnlyRootFilesystem", value,
                          "is unset (must be true)" if value is None else None)
            for c in pod.all_containers
            if (value := c.security_context.get("readOnlyRootFilesystem")) is not True]
