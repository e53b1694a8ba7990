"""API-server audit logging: the audit Policy and the kube-apiserver changes that switch it on.

The policy is ordered because the API server applies the first rule that matches: what must always be seen
(Secrets, ConfigMaps, TokenReviews at Metadata so their values never reach the log; exec/attach/port-forward)
comes before the rules that drop noise. Node-level files are not applied by kustomize: the audit Policy goes
to every control-plane node, and the kube-apiserver change is given both as a kubeadm ClusterConfiguration
patch and, when the input shows the kube-apiserver Pod, as the complete patched static Pod manifest.
"""

from __future__ import annotations

import copy

from nis2kube.apiserver import parse_flags
from nis2kube.harden.bundle import Area, Artifact, dump_yaml
from nis2kube.harden.context import HardenContext

POLICY_DIR = "/etc/kubernetes/audit"
POLICY_FILE = f"{POLICY_DIR}/policy.yaml"
LOG_DIR = "/var/log/kubernetes/audit"
LOG_FILE = f"{LOG_DIR}/audit.log"
# CIS Kubernetes Benchmark 1.2.17-1.2.19 minimums; a larger value already set is kept.
RETENTION = {"audit-log-maxage": 30, "audit-log-maxbackup": 10, "audit-log-maxsize": 100}
READ_VERBS = ["get", "list", "watch"]
WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"]
WORKLOAD_RESOURCES = [
    {"group": "", "resources": ["pods", "services", "serviceaccounts", "persistentvolumeclaims"]},
    {"group": "apps", "resources": ["daemonsets", "deployments", "replicasets", "statefulsets"]},
    {"group": "batch", "resources": ["cronjobs", "jobs"]},
    {"group": "networking.k8s.io", "resources": ["ingresses", "networkpolicies"]},
    {"group": "admissionregistration.k8s.io"},
    {"group": "apiextensions.k8s.io", "resources": ["customresourcedefinitions"]},
]


def audit_policy() -> dict:
    """The audit Policy (audit.k8s.io/v1); first matching rule wins."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        # The API server ignores the name; it lets `nis2kube scan INPUT OUTDIR` read the file as an object.
        "metadata": {"name": "nis2kube-audit-policy"},
        "omitStages": ["RequestReceived"],
        "rules": [
            # Never the values: Secrets, ConfigMaps and token reviews carry credentials.
            {"level": "Metadata", "resources": [
                {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
                {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
            ]},
            # Interactive access to running containers.
            {"level": "Metadata", "resources": [
                {"group": "", "resources": ["pods/exec", "pods/attach", "pods/portforward", "pods/proxy",
                                            "services/proxy", "nodes/proxy"]},
            ]},
            # Who may do what: every RBAC change with its full body.
            {"level": "RequestResponse", "verbs": WRITE_VERBS,
             "resources": [{"group": "rbac.authorization.k8s.io"}]},
            # Who changed what runs, and how it may be reached.
            {"level": "RequestResponse", "verbs": WRITE_VERBS, "resources": copy.deepcopy(WORKLOAD_RESOURCES)},
            # Authentication and authorization decisions made on behalf of others.
            {"level": "Metadata", "resources": [
                {"group": "authorization.k8s.io"}, {"group": "certificates.k8s.io"}]},
            # Noise: reads by the control plane itself, health probes, events and leases.
            {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"],
             "resources": [{"group": "", "resources": ["endpoints", "services", "services/status"]},
                           {"group": "discovery.k8s.io", "resources": ["endpointslices"]}]},
            {"level": "None", "userGroups": ["system:nodes"], "verbs": READ_VERBS,
             "resources": [{"group": "", "resources": ["nodes", "nodes/status", "pods"]}]},
            {"level": "None", "users": ["system:kube-scheduler", "system:kube-controller-manager"],
             "verbs": READ_VERBS},
            {"level": "None", "verbs": READ_VERBS, "resources": [
                {"group": "", "resources": ["events"]},
                {"group": "events.k8s.io", "resources": ["events"]},
                {"group": "coordination.k8s.io", "resources": ["leases"]}]},
            {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version", "/openapi*",
                                                 "/api", "/apis"]},
            # Everything else, including failed authentication, at Metadata.
            {"level": "Metadata"},
        ],
    }


def generate(ctx: HardenContext) -> Area:
    area = Area("audit", "API-server audit logging", targets=("logging.audit-log-enabled", "logging.audit-log-rotation",
                                                                "logging.audit-policy-*"), claims_system=True)
    policy = audit_policy()
    area.artifacts.append(Artifact(
        "audit/audit-policy.yaml", f"Audit Policy; copy to {POLICY_FILE} on every control-plane node.",
        text=dump_yaml(policy), apply=False))
    area.artifacts.append(Artifact(
        "audit/kubeadm-clusterconfiguration.yaml",
        "kubeadm ClusterConfiguration fragment: merge into your kubeadm config, then "
        "`kubeadm upgrade apply` (or `kubeadm init`) writes the API-server flags and mounts.",
        text=dump_yaml(kubeadm_patch(ctx)), apply=False))
    pod = _apiserver_pod(ctx)
    if pod is not None:
        area.artifacts.append(Artifact(
            "audit/kube-apiserver.yaml",
            f"The kube-apiserver static Pod from the input ({pod['metadata'].get('name')}) with audit logging "
            "switched on; diff it against /etc/kubernetes/manifests/kube-apiserver.yaml, then replace that file "
            "on each control-plane node (the kubelet restarts the API server).",
            [patched_apiserver(pod)], apply=False))
    else:
        area.skipped.append("patched kube-apiserver manifest: no kube-apiserver Pod in the input (managed control "
                            "plane?); use the kubeadm fragment, or your provider's audit-log setting")
    area.notes.append(
        f"Rollout: copy `audit/audit-policy.yaml` to `{POLICY_FILE}` on every control-plane node first, then change "
        "the API server (kubeadm fragment or patched manifest), one node at a time. The API server refuses to "
        "start when the policy file is missing.")
    return area


def _flag_values(pod: dict | None) -> dict[str, str]:
    """The audit flags to set: our paths, and retention at least the CIS minimum (a longer one is kept)."""
    current: dict[str, str] = {}
    if pod is not None:
        argv = [str(a) for a in (_container(pod).get("command") or []) + (_container(pod).get("args") or [])]
        current = parse_flags(argv[1:] if argv and not argv[0].startswith("-") else argv)
    values = {"audit-policy-file": POLICY_FILE, "audit-log-path": LOG_FILE, "audit-log-format": "json"}
    for flag, minimum in RETENTION.items():
        try:
            have = int(current.get(flag, "0"))
        except ValueError:
            have = 0
        values[flag] = str(max(have, minimum))
    return values


def kubeadm_patch(ctx: HardenContext) -> dict:
    """kubeadm v1beta4 ClusterConfiguration: apiServer.extraArgs (name/value list) and extraVolumes."""
    flags = _flag_values(_apiserver_pod(ctx))
    return {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "apiServer": {
            "extraArgs": [{"name": k, "value": v} for k, v in flags.items()],
            "extraVolumes": [
                {"name": "audit-policy", "hostPath": POLICY_FILE, "mountPath": POLICY_FILE, "readOnly": True,
                 "pathType": "File"},
                {"name": "audit-log", "hostPath": LOG_DIR, "mountPath": LOG_DIR, "readOnly": False,
                 "pathType": "DirectoryOrCreate"},
            ],
        },
    }


def _apiserver_pod(ctx: HardenContext) -> dict | None:
    def find() -> dict | None:
        pods = sorted(ctx.inv.in_namespace("Pod", "kube-system"), key=lambda p: p["metadata"].get("name", ""))
        for pod in pods:
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if labels.get("component") == "kube-apiserver" and _container(pod):
                return pod
        return None

    return ctx.inv.cached("harden:apiserver-pod", find)


def _container(pod: dict) -> dict:
    for container in (pod.get("spec") or {}).get("containers") or []:
        if isinstance(container, dict) and container.get("name") == "kube-apiserver":
            return container
    return {}


def patched_apiserver(pod: dict) -> dict:
    """The static Pod as kubeadm writes it, with the audit flags set and the two host paths mounted.

    Runtime fields of the mirror Pod (uid, ownerReferences, status, ...) are dropped: a static Pod file has none."""
    out = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {k: copy.deepcopy(v) for k, v in pod["metadata"].items()
                        if k in ("name", "namespace", "labels", "annotations")},
           "spec": {k: copy.deepcopy(v) for k, v in (pod.get("spec") or {}).items() if k != "nodeName"}}
    out["metadata"]["name"] = "kube-apiserver"  # the file's name; the kubelet appends the node name
    container = next(c for c in out["spec"]["containers"] if c.get("name") == "kube-apiserver")
    wanted = _flag_values(pod)
    key = "command" if container.get("command") else "args"
    argv = [str(a) for a in container.get(key) or []]
    binary = argv[:1] if argv and not argv[0].startswith("-") else []
    kept: list[str] = []
    rest = argv[len(binary):]
    skip_value = False
    for item in rest:
        if skip_value and not item.startswith("-"):
            skip_value = False
            continue
        skip_value = False
        name = item.lstrip("-").split("=", 1)[0]
        if item.startswith("-") and name in wanted:
            skip_value = "=" not in item  # `--flag value`: drop the value too
            continue
        kept.append(item)
    container[key] = binary + kept + [f"--{k}={v}" for k, v in wanted.items()]
    mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") not in ("audit-policy", "audit-log")]
    mounts += [{"name": "audit-policy", "mountPath": POLICY_FILE, "readOnly": True},
               {"name": "audit-log", "mountPath": LOG_DIR, "readOnly": False}]
    container["volumeMounts"] = mounts
    volumes = [v for v in out["spec"].get("volumes") or [] if v.get("name") not in ("audit-policy", "audit-log")]
    volumes += [{"name": "audit-policy", "hostPath": {"path": POLICY_FILE, "type": "File"}},
                {"name": "audit-log", "hostPath": {"path": LOG_DIR, "type": "DirectoryOrCreate"}}]
    out["spec"]["volumes"] = volumes
    return out
