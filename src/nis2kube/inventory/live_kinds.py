"""The kinds a live scan lists, and how: the single source for the scanner and for deploy/'s ClusterRole.

Listing only what the checks read keeps the scan fast and its RBAC footprint small; tests/test_deploy.py
asserts that the ClusterRole in deploy/ grants exactly these resources, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LiveKind:
    group: str
    resource: str  # plural resource name, as RBAC rules and URLs spell it
    kind: str
    metadata_only: bool = False  # list as PartialObjectMetadataList: names/labels, never contents


# fmt: off
LIVE_KINDS: tuple[LiveKind, ...] = (
    LiveKind("", "namespaces", "Namespace"),
    LiveKind("", "nodes", "Node"),
    LiveKind("", "pods", "Pod"),
    LiveKind("", "replicationcontrollers", "ReplicationController"),
    LiveKind("", "services", "Service"),
    LiveKind("", "serviceaccounts", "ServiceAccount"),
    LiveKind("", "persistentvolumeclaims", "PersistentVolumeClaim"),
    LiveKind("", "persistentvolumes", "PersistentVolume"),
    LiveKind("", "limitranges", "LimitRange"),
    LiveKind("", "resourcequotas", "ResourceQuota"),
    # Values never leave the API server: Secrets and ConfigMaps are listed as metadata only.
    LiveKind("", "secrets", "Secret", metadata_only=True),
    LiveKind("", "configmaps", "ConfigMap", metadata_only=True),
    LiveKind("apps", "deployments", "Deployment"),
    LiveKind("apps", "statefulsets", "StatefulSet"),
    LiveKind("apps", "daemonsets", "DaemonSet"),
    LiveKind("apps", "replicasets", "ReplicaSet"),
    LiveKind("batch", "jobs", "Job"),
    LiveKind("batch", "cronjobs", "CronJob"),
    LiveKind("autoscaling", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    LiveKind("networking.k8s.io", "networkpolicies", "NetworkPolicy"),
    LiveKind("networking.k8s.io", "ingresses", "Ingress"),
    LiveKind("networking.k8s.io", "ingressclasses", "IngressClass"),
    LiveKind("rbac.authorization.k8s.io", "roles", "Role"),
    LiveKind("rbac.authorization.k8s.io", "rolebindings", "RoleBinding"),
    LiveKind("rbac.authorization.k8s.io", "clusterroles", "ClusterRole"),
    LiveKind("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding"),
    LiveKind("policy", "poddisruptionbudgets", "PodDisruptionBudget"),
    LiveKind("admissionregistration.k8s.io", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration"),
    LiveKind("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
    LiveKind("admissionregistration.k8s.io", "validatingadmissionpolicies", "ValidatingAdmissionPolicy"),
    LiveKind("admissionregistration.k8s.io", "validatingadmissionpolicybindings",
             "ValidatingAdmissionPolicyBinding"),
    LiveKind("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition"),
    LiveKind("kyverno.io", "clusterpolicies", "ClusterPolicy"),
    LiveKind("kyverno.io", "policies", "Policy"),
    LiveKind("policies.kyverno.io", "imagevalidatingpolicies", "ImageValidatingPolicy"),
    LiveKind("policy.sigstore.dev", "clusterimagepolicies", "ClusterImagePolicy"),
    LiveKind("templates.gatekeeper.sh", "constrainttemplates", "ConstraintTemplate"),
    LiveKind("config.gatekeeper.sh", "configs", "Config"),
    LiveKind("aquasecurity.github.io", "vulnerabilityreports", "VulnerabilityReport"),
    LiveKind("aquasecurity.github.io", "clustervulnerabilityreports", "ClusterVulnerabilityReport"),
    LiveKind("aquasecurity.github.io", "sbomreports", "SbomReport"),
    LiveKind("monitoring.coreos.com", "prometheusrules", "PrometheusRule"),
    LiveKind("monitoring.coreos.com", "alertmanagers", "Alertmanager"),
    LiveKind("monitoring.coreos.com", "alertmanagerconfigs", "AlertmanagerConfig"),
    LiveKind("monitoring.coreos.com", "prometheuses", "Prometheus"),
    LiveKind("monitoring.coreos.com", "thanosrulers", "ThanosRuler"),
    LiveKind("velero.io", "schedules", "Schedule"),
    LiveKind("velero.io", "backups", "Backup"),
    LiveKind("velero.io", "restores", "Restore"),
    LiveKind("security.istio.io", "peerauthentications", "PeerAuthentication"),
    LiveKind("cilium.io", "ciliumnetworkpolicies", "CiliumNetworkPolicy"),
    LiveKind("cilium.io", "ciliumclusterwidenetworkpolicies", "CiliumClusterwideNetworkPolicy"),
    LiveKind("crd.projectcalico.org", "globalnetworkpolicies", "GlobalNetworkPolicy"),
    LiveKind("policy.networking.k8s.io", "adminnetworkpolicies", "AdminNetworkPolicy"),
    LiveKind("policy.networking.k8s.io", "baselineadminnetworkpolicies", "BaselineAdminNetworkPolicy"),
)
# fmt: on

# Groups whose every kind is listed (Gatekeeper constraints: one CRD per ConstraintTemplate).
WHOLE_GROUPS: tuple[str, ...] = ("constraints.gatekeeper.sh",)

# ConfigMaps whose contents checks read although no Pod mounts them (kubeadm's API server settings, CoreDNS,
# Kyverno's resourceFilters in its default place).
# Mounted ConfigMaps (Falco rules, Prometheus rule files, agent configs) are read too; all others stay
# metadata only.
CONFIGMAPS_WITH_DATA: tuple[tuple[str, str], ...] = (
    ("kube-system", "kubeadm-config"),
    ("kube-system", "coredns"),
    ("kyverno", "kyverno"),
)


def kinds_without_secrets() -> tuple[LiveKind, ...]:
    """--no-secrets mode: the same list minus Secrets (RBAC `list` on secrets grants their values too)."""
    return tuple(k for k in LIVE_KINDS if k.resource != "secrets")
