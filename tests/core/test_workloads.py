"""The workload view reports each pod-running thing once, on its top-level owner."""

from conftest import inventory_from_yaml
from nis2kube.inventory.workloads import workloads

CHAIN = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: mes-api, namespace: mes, uid: d-1}
spec:
  template:
    metadata: {labels: {app: mes-api}}
    spec:
      initContainers: [{name: migrate, image: r/mes:1}]
      containers: [{name: api, image: r/mes:1}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: mes-api-7d9f
  namespace: mes
  uid: rs-1
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: mes-api, uid: d-1, controller: true}]
spec:
  template:
    metadata: {labels: {app: mes-api}}
    spec: {containers: [{name: api, image: r/mes:1}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: mes-api-7d9f-abcde
  namespace: mes
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: mes-api-7d9f, uid: rs-1, controller: true}]
spec: {containers: [{name: api, image: r/mes:1}]}
"""


def test_pod_replicaset_deployment_chain_is_one_workload():
    (w,) = workloads(inventory_from_yaml(CHAIN))
    assert (w.kind, w.namespace, w.name) == ("Deployment", "mes", "mes-api")
    assert [field for field, _ in w.containers()] == ["initContainers", "containers"]
    assert w.pod_labels == {"app": "mes-api"}


def test_pods_of_an_absent_owner_are_grouped_under_it():
    pods = "\n---\n".join(
        f"""apiVersion: v1
kind: Pod
metadata:
  name: sensor-{i}
  namespace: ot
  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: sensor-5c, uid: x, controller: true}}]
spec: {{containers: [{{name: c, image: r/s:1}}]}}"""
        for i in range(3)
    )
    (w,) = workloads(inventory_from_yaml(pods))
    assert (w.kind, w.name, w.pod_count) == ("ReplicaSet", "sensor-5c", 3)


def test_cronjob_and_static_pod():
    inv = inventory_from_yaml("""
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup, namespace: historian}
spec:
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: backup}}
        spec: {containers: [{name: dump, image: r/pg:16}], serviceAccountName: backup}
---
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver-cp1
  namespace: kube-system
  ownerReferences: [{apiVersion: v1, kind: Node, name: cp1, controller: true}]
spec: {containers: [{name: kube-apiserver, image: registry.k8s.io/kube-apiserver:v1.31.4}]}
""")
    by_kind = {w.kind: w for w in workloads(inv)}
    assert by_kind["CronJob"].pod_labels == {"app": "backup"}
    assert by_kind["CronJob"].service_account == "backup"
    assert by_kind["Pod"].name == "kube-apiserver-cp1" and by_kind["Pod"].service_account == "default"


def test_mirror_pod_is_reported_even_when_its_node_is_in_the_inventory():
    """The kubelet makes a mirror pod's Node its controller; a Node runs no pod template, so the pod is the
    workload (it used to vanish from every check once the Node was in the dump)."""
    inv = inventory_from_yaml("""
apiVersion: v1
kind: Node
metadata: {name: cp1, uid: node-1}
---
apiVersion: v1
kind: Pod
metadata:
  name: etcd-cp1
  namespace: kube-system
  annotations: {kubernetes.io/config.mirror: 3c1f0e2a}
  ownerReferences: [{apiVersion: v1, kind: Node, name: cp1, uid: node-1, controller: true}]
spec: {hostNetwork: true, containers: [{name: etcd, image: registry.k8s.io/etcd:3.5.16-0}]}
""")
    (w,) = workloads(inv)
    assert (w.kind, w.namespace, w.name) == ("Pod", "kube-system", "etcd-cp1")


def test_replicaset_controlled_by_a_custom_resource_is_the_workload():
    """An Argo Rollout (not a kind this view knows) controls its ReplicaSets: they are reported, once."""
    inv = inventory_from_yaml("""
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: hmi, namespace: scada, uid: ro-1}
spec: {template: {spec: {containers: [{name: hmi, image: r/hmi:2}]}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: hmi-6b8c
  namespace: scada
  uid: rs-2
  ownerReferences: [{apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: hmi, uid: ro-1, controller: true}]
spec: {template: {spec: {containers: [{name: hmi, image: r/hmi:2}]}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: hmi-6b8c-x1
  namespace: scada
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: hmi-6b8c, uid: rs-2, controller: true}]
spec: {containers: [{name: hmi, image: r/hmi:2}]}
""")
    assert [(w.kind, w.name) for w in workloads(inv)] == [("ReplicaSet", "hmi-6b8c")]


def test_only_the_controller_reference_links_to_an_owner():
    """A plain (non-controller) ownerReference, e.g. for garbage collection, does not make the owner report
    the pod: the pod keeps its own report."""
    inv = inventory_from_yaml("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: historian, namespace: ot, uid: d-9}
spec: {template: {spec: {containers: [{name: db, image: r/pg:16}]}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: historian-debug
  namespace: ot
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: historian, uid: d-9}]
spec: {containers: [{name: shell, image: r/toolbox:1}]}
""")
    assert [(w.kind, w.name) for w in workloads(inv)] == [("Deployment", "historian"), ("Pod", "historian-debug")]
    assert inv.owner(inv.get("Pod", "ot", "historian-debug")) is None
