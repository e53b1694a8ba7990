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
