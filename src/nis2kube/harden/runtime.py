"""Runtime detection: NIS2 Falco rules, and falcosidekick routing of their alerts.

The outbound-connection rule allows exactly the cluster's own networks (service and pod CIDRs read from the
control-plane flags and Node objects, plus `--allow-cidr`), so anything else a container dials is reported.
The rules are self-contained (no macros from Falco's default rule files), so they load whatever rule set a
site runs. Delivered three ways: a ConfigMap for /etc/falco/rules.d, Helm values for the falco chart
(`customRules`), and Helm values for the falcosidekick chart.
"""

from __future__ import annotations

import ipaddress

from nis2kube.apiserver import parse_flags
from nis2kube.harden.bundle import Area, Artifact, dump_yaml
from nis2kube.harden.context import HardenContext, meta

RULES_FILE = "nis2kube_rules.yaml"
SIDEKICK_SECRET = "falcosidekick-nis2"
SHELLS = ["ash", "bash", "csh", "dash", "fish", "ksh", "sh", "tcsh", "zsh"]
SENSITIVE_FILES = ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/pam.conf", "/etc/security/opasswd"]
SENSITIVE_DIRS = ["/root/.ssh", "/etc/sudoers.d", "/etc/pam.d", "/etc/kubernetes/pki", "/var/lib/kubelet/pki"]
OPEN = "evt.type in (open, openat, openat2) and evt.dir = <"


def cluster_cidrs(ctx: HardenContext) -> list[str]:
    """The networks a workload may legitimately reach: service and pod ranges, loopback, and extras."""
    found: set[str] = {"127.0.0.0/8"}
    for pod in ctx.inv.in_namespace("Pod", "kube-system"):
        for container in (pod.get("spec") or {}).get("containers") or []:
            if not isinstance(container, dict):
                continue
            argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
            flags = parse_flags(argv[1:] if argv and not argv[0].startswith("-") else argv)
            for flag in ("service-cluster-ip-range", "cluster-cidr"):
                found.update(v.strip() for v in flags.get(flag, "").split(",") if v.strip())
    for node in ctx.inv.objects("Node"):
        spec = node.get("spec") or {}
        found.update(str(c) for c in spec.get("podCIDRs") or [])
        if spec.get("podCIDR"):
            found.add(str(spec["podCIDR"]))
    found.update(ctx.options.extra_cidrs)
    found.update(str(c) for c in ctx.config.section("runtime").get("allowed_cidrs") or [])
    valid = []
    for cidr in found:
        try:
            valid.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue  # not a network: the flag was malformed; never widen the allow-list with it
    return [str(n) for n in sorted(valid, key=lambda n: (n.version, n.network_address, n.prefixlen))]


def _quoted(items: list[str]) -> list[str]:
    """Falco list items compared with IP fields are written as quoted strings ('"10.0.0.0/8"')."""
    return [f'"{i}"' for i in items]


def falco_rules(cidrs: list[str]) -> list[dict]:
    container = "container.id != host"
    return [
        {"list": "nis2_shell_binaries", "items": SHELLS},
        {"list": "nis2_sensitive_files", "items": SENSITIVE_FILES},
        {"list": "nis2_sensitive_dirs", "items": SENSITIVE_DIRS},
        {"list": "nis2_cluster_networks", "items": _quoted(cidrs)},
        {
            "rule": "NIS2 Sensitive file read in container",
            "desc": "A container read credentials or key material (shadow file, sudoers, SSH or cluster PKI).",
            "condition": f"{OPEN} and evt.is_open_read = true and {container} and (fd.name in "
                         "(nis2_sensitive_files) or fd.directory in (nis2_sensitive_dirs))",
            "output": "Sensitive file read (file=%fd.name user=%user.name command=%proc.cmdline "
                      "container=%container.name image=%container.image.repository k8s_ns=%k8s.ns.name "
                      "k8s_pod=%k8s.pod.name)",
            "priority": "CRITICAL",
            "tags": ["nis2", "art21.2.b", "filesystem", "mitre_credential_access"],
        },
        {
            "rule": "NIS2 Shell in container",
            "desc": "A shell started inside a container: interactive access or a compromised process.",
            "condition": "evt.type in (execve, execveat) and evt.dir = < and "
                         f"{container} and proc.name in (nis2_shell_binaries)",
            "output": "Shell started in container (shell=%proc.name parent=%proc.pname command=%proc.cmdline "
                      "user=%user.name container=%container.name image=%container.image.repository "
                      "k8s_ns=%k8s.ns.name k8s_pod=%k8s.pod.name)",
            "priority": "WARNING",
            "tags": ["nis2", "art21.2.b", "process", "mitre_execution"],
        },
        {
            "rule": "NIS2 Write below /etc in container",
            "desc": "A container modified its configuration at run time (images should be immutable).",
            "condition": f"{OPEN} and evt.is_open_write = true and {container} and fd.name startswith /etc/",
            "output": "File below /etc opened for writing (file=%fd.name command=%proc.cmdline user=%user.name "
                      "container=%container.name image=%container.image.repository k8s_ns=%k8s.ns.name "
                      "k8s_pod=%k8s.pod.name)",
            "priority": "ERROR",
            "tags": ["nis2", "art21.2.b", "filesystem", "mitre_persistence"],
        },
        {
            "rule": "NIS2 Unexpected outbound connection",
            "desc": "A container connected to an address outside the cluster's own networks.",
            "condition": "evt.type = connect and evt.dir = < and (fd.typechar = 4 or fd.typechar = 6) and "
                         f"{container} and fd.sip != \"0.0.0.0\" and not fd.snet in (nis2_cluster_networks) "
                         "and (evt.rawres >= 0 or evt.res = EINPROGRESS)",
            "output": "Outbound connection outside the cluster networks (connection=%fd.name command=%proc.cmdline "
                      "container=%container.name image=%container.image.repository k8s_ns=%k8s.ns.name "
                      "k8s_pod=%k8s.pod.name)",
            "priority": "WARNING",
            "tags": ["nis2", "art21.2.b", "network", "mitre_exfiltration"],
        },
    ]


def _falco_namespace(ctx: HardenContext) -> str:
    for ds in ctx.inv.objects("DaemonSet"):
        name = ds["metadata"].get("name", "")
        labels = (ds["metadata"].get("labels") or {})
        if name == "falco" or labels.get("app.kubernetes.io/name") == "falco":
            return ds["metadata"].get("namespace") or "falco"
    return "falco"


def sidekick_values(ctx: HardenContext) -> dict:
    """falcosidekick chart values: WARNING+ to chat, CRITICAL+ to paging and to `nis2kube serve`."""
    return {
        "config": {
            "existingSecret": SIDEKICK_SECRET,
            "slack": {"minimumpriority": "warning", "outputformat": "all"},
            "pagerduty": {"minimumpriority": "critical"},
            "webhook": {"address": ctx.options.serve_url.rstrip("/") + "/webhooks/falco",
                        "minimumpriority": "critical"},
        }
    }


def generate(ctx: HardenContext) -> Area:
    # No claim on runtime.falco-custom-rules: the rules only count once mounted into Falco (Helm customRules
    # or a volume in the Falco DaemonSet), a change to an object the bundle does not own.
    area = Area("runtime", "Runtime detection (Falco)", targets=())
    cidrs = cluster_cidrs(ctx)
    rules_text = dump_yaml(falco_rules(cidrs))
    namespace = _falco_namespace(ctx)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("nis2kube-falco-rules", namespace),
        "data": {RULES_FILE: rules_text},
    }
    area.artifacts += [
        Artifact("runtime/falco-rules-configmap.yaml",
                 f"Falco rules as a ConfigMap in `{namespace}`; mount it at /etc/falco/rules.d (non-Helm installs).",
                 [configmap]),
        Artifact("runtime/falco-values.yaml", "Helm values for the falco chart: the same rules as `customRules`.",
                 text=dump_yaml({"customRules": {RULES_FILE: rules_text}}), apply=False),
        Artifact("runtime/falcosidekick-values.yaml",
                 "Helm values for the falcosidekick chart: routing by priority.",
                 text=dump_yaml(sidekick_values(ctx)), apply=False),
    ]
    networks = ", ".join(f"`{c}`" for c in cidrs)
    area.notes.append(
        f"The outbound rule treats these networks as the cluster's own: {networks}. Add others (an OT historian "
        "outside the cluster, a registry mirror) with `--allow-cidr`, or `runtime.allowed_cidrs` in nis2kube.yaml.")
    area.notes.append(
        "The rules protect nothing until Falco loads them: install them with the falco chart's `customRules` "
        "(runtime/falco-values.yaml) or mount the ConfigMap at /etc/falco/rules.d in the Falco DaemonSet; "
        "`nis2kube scan` then passes runtime.falco-custom-rules.")
    area.notes.append(
        f"falcosidekick reads the chat and paging credentials from the Secret `{SIDEKICK_SECRET}` (keys "
        "`SLACK_WEBHOOKURL`, `PAGERDUTY_ROUTINGKEY`); create it yourself, the bundle never contains credentials. "
        "CRITICAL and above also go to `nis2kube serve` at `/webhooks/falco`, which opens an incident clock.")
    return area
