"""Pod hardening: one check per Pod Security Standards control (v1.37), resource limits, read-only root.

The control logic lives in `_pss` (pure functions over a pod spec); this module registers one check per
control and turns each control's outcome into findings on the top-level workload, naming the container
and the field. NIS2 Art. 21(2)(g) names cyber hygiene; the Pod Security Standards are Kubernetes' own
hygiene baseline, so every control is reported separately to show which hygiene rule holds where.
"""

from __future__ import annotations

from dataclasses import dataclass

from nis2kube.checks import _pss
from nis2kube.checks.registry import CheckContext, CheckFunc, check
from nis2kube.findings import Finding, Severity
from nis2kube.inventory import Inventory
from nis2kube.inventory.workloads import Workload, workloads

PSS = ("art21.2.g", "ir2690.8", "ir2690.6.3")
NETWORK = "ir2690.6.7"
MALWARE = "ir2690.6.9"
ENFORCE = " Then label the namespace pod-security.kubernetes.io/enforce={level} so the API server rejects " \
          "regressions."


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    severity: Severity
    measures: tuple[str, ...]
    evaluate: _pss.Control
    remediation: str
    passed: str  # the pass message


def _baseline(id: str, title: str, evaluate: _pss.Control, passed: str, fix: str, *,
              severity: Severity = Severity.HIGH, extra: tuple[str, ...] = ()) -> Control:
    return Control(f"pss.baseline.{id}", title, severity, (*PSS, *extra), evaluate,
                   fix + ENFORCE.format(level="baseline"), passed)


def _restricted(id: str, title: str, evaluate: _pss.Control, passed: str, fix: str) -> Control:
    return Control(f"pss.restricted.{id}", title, Severity.MEDIUM, PSS, evaluate,
                   fix + ENFORCE.format(level="restricted"), passed)


CONTROLS: tuple[Control, ...] = (
    _baseline("host-namespaces", "Pods do not share the node's network, PID or IPC namespace",
              _pss.host_namespaces, "hostNetwork, hostPID and hostIPC are not set",
              "Remove hostNetwork/hostPID/hostIPC; expose ports through a Service (for OT protocols that need "
              "the plant network, a dedicated node pool and a Multus/macvlan interface instead).",
              severity=Severity.CRITICAL, extra=(NETWORK,)),
    _baseline("privileged", "Containers are not privileged", _pss.privileged, "no container is privileged",
              "Remove securityContext.privileged; grant the single capability or device the process needs "
              "(a device plugin for serial/USB devices).",
              severity=Severity.CRITICAL, extra=(MALWARE,)),
    _baseline("capabilities", "Containers add no capability beyond the runtime defaults",
              _pss.capabilities_baseline, "no container adds a capability beyond the baseline set",
              "Remove the extra entries from securityContext.capabilities.add (NET_RAW: use a non-raw-socket "
              "health check; SYS_*: move the work to a node agent)."),
    _baseline("host-path-volumes", "Pods mount no hostPath volume", _pss.host_path_volumes,
              "no hostPath volume",
              "Replace hostPath with a PersistentVolumeClaim, configMap/secret, or emptyDir.", extra=(MALWARE,)),
    _baseline("host-ports", "Containers bind no host port", _pss.host_ports, "no container binds a hostPort",
              "Remove ports[].hostPort and publish the port through a Service (NodePort or LoadBalancer).",
              extra=(NETWORK,)),
    _baseline("apparmor", "AppArmor is not disabled or overridden", _pss.apparmor,
              "no AppArmor profile other than RuntimeDefault or Localhost",
              "Set securityContext.appArmorProfile.type to RuntimeDefault (or Localhost with a reviewed profile) "
              "and drop `unconfined` AppArmor annotations."),
    _baseline("selinux", "No custom SELinux user, role or privileged type", _pss.selinux,
              "seLinuxOptions are unset or use an allowed container type",
              "Remove seLinuxOptions.user/role and any type other than container_t, container_init_t, "
              "container_kvm_t or container_engine_t (spc_t is unconfined)."),
    _baseline("proc-mount", "The default /proc masks are kept", _pss.proc_mount_baseline,
              "no container unmasks /proc",
              "Remove securityContext.procMount (or set Default); Unmasked is only acceptable with hostUsers: "
              "false."),
    _baseline("seccomp", "Seccomp is not set to Unconfined", _pss.seccomp_baseline,
              "no seccomp profile other than RuntimeDefault or Localhost",
              "Set securityContext.seccompProfile.type: RuntimeDefault on the pod and remove Unconfined."),
    _baseline("sysctls", "Only safe sysctls are set", _pss.sysctls, "only safe sysctls (if any)",
              "Remove unsafe sysctls from securityContext.sysctls; tune the node instead (and only for "
              "workloads pinned to it)."),
    _baseline("host-process", "No Windows HostProcess containers", _pss.host_process,
              "no Windows HostProcess container",
              "Remove windowsOptions.hostProcess; run node management as a reviewed node component.",
              severity=Severity.CRITICAL, extra=(MALWARE,)),
    _baseline("host-probes", "Probes and lifecycle hooks name no host", _pss.host_probes,
              "no probe or lifecycle handler sets a host",
              "Remove httpGet.host/tcpSocket.host from probes and lifecycle handlers: probe the pod itself.",
              extra=(NETWORK,)),
    _restricted("volume-types", "Only restricted-profile volume types are used", _pss.volume_types,
                "all volumes use allowed types",
                "Mount network and cloud storage through a PersistentVolume + PersistentVolumeClaim (or CSI) "
                "instead of an inline volume source."),
    _restricted("privilege-escalation", "Containers set allowPrivilegeEscalation: false",
                _pss.privilege_escalation, "every container sets allowPrivilegeEscalation: false",
                "Set securityContext.allowPrivilegeEscalation: false on every container (init containers too)."),
    _restricted("run-as-non-root", "Containers must run as non-root", _pss.run_as_non_root,
                "runAsNonRoot is true for every container",
                "Set securityContext.runAsNonRoot: true on the pod (and runAsUser to the image's non-root UID); "
                "remove runAsNonRoot: false from containers."),
    _restricted("run-as-user", "No container runs as UID 0", _pss.run_as_user, "no runAsUser: 0",
                "Set runAsUser to a non-zero UID (or remove it and let the image's USER apply)."),
    _restricted("seccomp", "Every container runs under RuntimeDefault or a Localhost seccomp profile",
                _pss.seccomp_restricted, "every container has a RuntimeDefault or Localhost seccomp profile",
                "Set securityContext.seccompProfile.type: RuntimeDefault at pod level."),
    _restricted("capabilities", "Containers drop ALL capabilities and add only NET_BIND_SERVICE",
                _pss.capabilities_restricted, "every container drops ALL and adds at most NET_BIND_SERVICE",
                "Set securityContext.capabilities.drop: [\"ALL\"] on every container; add back only "
                "NET_BIND_SERVICE if it binds a port below 1024."),
    _restricted("proc-mount", "The default /proc masks are kept, even in a user namespace",
                _pss.proc_mount_restricted, "no container unmasks /proc",
                "Remove securityContext.procMount (or set Default)."),
    Control("pods.resource-limits", "Every container has cpu and memory limits", Severity.MEDIUM,
            ("art21.2.c", "art21.2.g"), _pss.resource_limits,
            "Set resources.limits.cpu and resources.limits.memory on every container (init containers too), "
            "or give the namespace a LimitRange with a Container default for both.",
            "every container has cpu and memory limits"),
    Control("pods.read-only-root-fs", "Every container has a read-only root file system", Severity.MEDIUM,
            ("art21.2.g", "ir2690.6.3", MALWARE), _pss.read_only_root_fs,
            "Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where the process writes.",
            "every container has readOnlyRootFilesystem: true"),
)


def evaluate(ctx: CheckContext, control: Control) -> list[Finding]:
    """Run one control over every top-level workload: a fail per violation, else a pass (or not-assessed).

    A list, not a generator: 21 controls over every workload make this the most repeated loop of a scan."""
    judge, passed, message = control.evaluate, ctx.passed, control.passed
    out: list[Finding] = []
    add = out.append
    for w, pod in _pod_views(ctx.inv):
        if not pod.all_containers:
            add(ctx.not_assessed(w, "the pod template has no containers; nothing to evaluate"))
            continue
        outcome = judge(pod)
        if not outcome:  # no violation (Exempt and Undecidable are always true)
            add(passed(w, message))
        elif type(outcome) is list:
            out += [ctx.fail(w, v.message, container=v.container, evidence={"field": v.field, "value": v.value})
                    for v in outcome]
        elif type(outcome) is _pss.Exempt:
            add(passed(w, outcome.reason))
        else:
            add(ctx.not_assessed(w, outcome.reason))
    return out


def _pod_views(inv: Inventory) -> list[tuple[Workload, _pss.PodView]]:
    def build() -> list[tuple[Workload, _pss.PodView]]:
        defaults = _limit_defaults(inv)
        none: frozenset[str] = frozenset()
        return [(w, _pss.PodView.of(w.pod_spec, w.pod_annotations, defaults.get(w.namespace, none)))
                for w in workloads(inv)]

    return inv.cached("pss.pod-views", build)


def _limit_defaults(inv: Inventory) -> dict[str, frozenset[str]]:
    """Per namespace, the resources its LimitRanges give containers a default limit for.

    A `Container` item's `default` is that limit; the API server defaults an absent `default` to `max`
    (SetDefaults_LimitRangeItem), so a `max` alone sets one too. Every LimitRange of the namespace applies."""
    out: dict[str, set[str]] = {}
    for obj in inv.objects("LimitRange"):
        spec = obj.get("spec")
        items = spec.get("limits") if isinstance(spec, dict) else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and item.get("type") == "Container":
                keys = {str(k) for field in ("default", "max") if isinstance(item.get(field), dict)
                        for k in item[field]}
                out.setdefault(obj["metadata"].get("namespace") or "default", set()).update(keys)
    return {ns: frozenset(keys) for ns, keys in out.items()}


def _register(control: Control) -> CheckFunc:
    def run(ctx: CheckContext) -> list[Finding]:
        return evaluate(ctx, control)

    run.__name__ = run.__qualname__ = control.id.replace(".", "_").replace("-", "_")
    return check(id=control.id, title=control.title, severity=control.severity, measures=control.measures,
                 remediation=control.remediation, description=(control.evaluate.__doc__ or "").strip())(run)


CHECKS = {control.id: _register(control) for control in CONTROLS}
