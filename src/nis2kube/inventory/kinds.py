"""What we know about object kinds without asking a cluster: their API group and whether they are namespaced."""

from __future__ import annotations

# Kinds the checks ask for by name, with their API group ("" is the core group).
WELL_KNOWN_GROUPS: dict[str, str] = {
    "Pod": "", "Service": "", "Namespace": "", "Node": "", "ServiceAccount": "", "ConfigMap": "",
    "Secret": "", "PersistentVolumeClaim": "", "PersistentVolume": "", "Endpoints": "", "LimitRange": "",
    "ResourceQuota": "",
    "Deployment": "apps", "StatefulSet": "apps", "DaemonSet": "apps", "ReplicaSet": "apps",
    "Job": "batch", "CronJob": "batch",
    "NetworkPolicy": "networking.k8s.io", "Ingress": "networking.k8s.io", "IngressClass": "networking.k8s.io",
    "Role": "rbac.authorization.k8s.io", "ClusterRole": "rbac.authorization.k8s.io",
    "RoleBinding": "rbac.authorization.k8s.io", "ClusterRoleBinding": "rbac.authorization.k8s.io",
    "PodDisruptionBudget": "policy",
    "ValidatingWebhookConfiguration": "admissionregistration.k8s.io",
    "MutatingWebhookConfiguration": "admissionregistration.k8s.io",
    "ValidatingAdmissionPolicy": "admissionregistration.k8s.io",
    "ValidatingAdmissionPolicyBinding": "admissionregistration.k8s.io",
    "CustomResourceDefinition": "apiextensions.k8s.io",
    "ClusterPolicy": "kyverno.io", "Policy": "kyverno.io",
    "ConstraintTemplate": "templates.gatekeeper.sh",
    "VulnerabilityReport": "aquasecurity.github.io", "ClusterVulnerabilityReport": "aquasecurity.github.io",
    "SbomReport": "aquasecurity.github.io", "ClusterSbomReport": "aquasecurity.github.io",
    "PrometheusRule": "monitoring.coreos.com", "Alertmanager": "monitoring.coreos.com",
    "AlertmanagerConfig": "monitoring.coreos.com",
    "Schedule": "velero.io", "Backup": "velero.io",
    "PeerAuthentication": "security.istio.io",
    "CiliumNetworkPolicy": "cilium.io", "CiliumClusterwideNetworkPolicy": "cilium.io",
    "GlobalNetworkPolicy": "crd.projectcalico.org",
    "AdminNetworkPolicy": "policy.networking.k8s.io", "BaselineAdminNetworkPolicy": "policy.networking.k8s.io",
}  # fmt: skip

# Cluster-scoped kinds (keyed by group/Kind); anything else without a namespace lands in `default`.
CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"), ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"), ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"), ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"), ("networking.k8s.io", "ServiceCIDR"),
        ("scheduling.k8s.io", "PriorityClass"), ("node.k8s.io", "RuntimeClass"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"), ("apiregistration.k8s.io", "APIService"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("certificates.k8s.io", "CertificateSigningRequest"), ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("policy", "PodSecurityPolicy"), ("kyverno.io", "ClusterPolicy"),
        ("policies.kyverno.io", "ImageValidatingPolicy"), ("policies.kyverno.io", "ValidatingPolicy"),
        ("templates.gatekeeper.sh", "ConstraintTemplate"), ("crd.projectcalico.org", "GlobalNetworkPolicy"),
        ("projectcalico.org", "GlobalNetworkPolicy"), ("cilium.io", "CiliumClusterwideNetworkPolicy"),
        ("policy.networking.k8s.io", "AdminNetworkPolicy"),
        ("policy.networking.k8s.io", "BaselineAdminNetworkPolicy"),
        ("policy.networking.k8s.io", "ClusterNetworkPolicy"),
    }
)  # fmt: skip

# Whole groups whose kinds are all cluster-scoped (Gatekeeper constraints).
CLUSTER_SCOPED_GROUPS = frozenset({"constraints.gatekeeper.sh"})


def group_of(api_version: str) -> str:
    """`apps/v1` → `apps`; `v1` → `` (core)."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def is_namespaced(group: str, kind: str) -> bool:
    if (group, kind) in CLUSTER_SCOPED or group in CLUSTER_SCOPED_GROUPS:
        return False
    # Trivy Operator and others name their cluster-scoped kinds Cluster*
    return not (kind.startswith("Cluster") and group not in ("", "apps", "batch"))
