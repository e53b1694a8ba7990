"""Synthetic factory clusters for benchmarks: realistic object mix, deterministic, any size.

Each application unit is what a real namespace holds per app (Deployment, its ReplicaSet and Pods,
Service, ConfigMap, PDB, ServiceAccount, Role, RoleBinding); each namespace adds a Namespace and a
default-deny NetworkPolicy. Written as multi-document YAML files (one per namespace, like a GitOps repo)
or as one `kubectl get -A -o json` List.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import yaml

APPS_PER_NAMESPACE = 10
OBJECTS_PER_APP = 10  # Deployment, ReplicaSet, 2 Pods, Service, ConfigMap, PDB, ServiceAccount, Role, RoleBinding


def _pod_spec(app: str, i: int) -> dict:
    secure = i % 3 != 0  # a third of the apps run with weak settings, so checks have work to do
    container = {
        "name": app,
        "image": f"registry.plant.example/line/{app}:1.{i % 7}.{i % 5}" if secure else f"docker.io/vendor/{app}",
        "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}],
        "env": [{"name": "LINE", "value": str(i % 12)}, {"name": "MQTT_URL", "value": "mqtt://broker:1883"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
    }
    if secure:
        container["securityContext"] = {
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
        }  # fmt: skip
    else:
        container["securityContext"] = {"privileged": i % 2 == 0}
    spec: dict = {"serviceAccountName": app, "containers": [container]}
    if secure:
        spec["securityContext"] = {
            "runAsNonRoot": True, "runAsUser": 10000 + i, "seccompProfile": {"type": "RuntimeDefault"},
        }  # fmt: skip
    return spec


def _app(ns: str, i: int) -> Iterator[dict]:
    app = f"app-{i:05d}"
    labels = {"app": app, "zone": ns.rsplit("-", 1)[0]}
    template = {"metadata": {"labels": labels}, "spec": _pod_spec(app, i)}
    dep_uid, rs_uid = f"dep-{ns}-{i}", f"rs-{ns}-{i}"
    yield {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": app, "namespace": ns, "uid": dep_uid, "labels": labels},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}}, "template": template,
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}}}
    rs = f"{app}-5d8f7c"
    yield {"apiVersion": "apps/v1", "kind": "ReplicaSet",
           "metadata": {"name": rs, "namespace": ns, "uid": rs_uid, "labels": labels,
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                                             "uid": dep_uid, "controller": True}]},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}}, "template": template}}
    for p in range(2):
        yield {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{rs}-{p:05d}", "namespace": ns, "labels": labels,
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                                 "uid": rs_uid, "controller": True}]},
               "spec": template["spec"], "status": {"phase": "Running", "podIP": f"10.42.{i % 250}.{p + 10}"}}
    yield {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns},
           "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    yield {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config", "namespace": ns},
           "data": {"config.yaml": f"line: {i % 12}\nsampling_hz: 2000\n"}}
    yield {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": app, "namespace": ns},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}}}
    yield {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app, "namespace": ns}}
    yield {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": app, "namespace": ns},
           "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]}
    yield {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": app, "namespace": ns},
           "subjects": [{"kind": "ServiceAccount", "name": app, "namespace": ns}],
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": app}}  # fmt: skip


def cluster(objects: int) -> Iterator[tuple[str, list[dict]]]:
    """(namespace, its objects) until about `objects` objects exist."""
    per_ns = APPS_PER_NAMESPACE * OBJECTS_PER_APP + 2
    zones = ("sensors", "analytics", "scada", "historian", "mes")
    for n in range(max(1, round(objects / per_ns))):
        ns = f"{zones[n % len(zones)]}-{n:04d}"
        docs = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"zone": zones[n % 5]}}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "default-deny", "namespace": ns},
             "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        ]  # fmt: skip
        for i in range(APPS_PER_NAMESPACE):
            docs.extend(_app(ns, n * APPS_PER_NAMESPACE + i))
        yield ns, docs


def write_yaml_tree(objects: int, root: Path) -> int:
    """One multi-document YAML file per namespace; returns the object count."""
    root.mkdir(parents=True, exist_ok=True)
    count = 0
    for ns, docs in cluster(objects):
        (root / f"{ns}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
        count += len(docs)
    return count


def write_json_list(objects: int, path: Path) -> int:
    """One `kubectl get -A -o json`-style List; returns the object count."""
    items = [doc for _, docs in cluster(objects) for doc in docs]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1))
    return len(items)
