"""One view of "something that runs pods", reported on its top-level owner.

A Pod owned by a ReplicaSet owned by a Deployment is one workload: the Deployment. Only the controller
reference (`controller: true`, metav1.GetControllerOf) links an object to its owner, and only an owner that is
itself a workload kind takes over the report: a mirror pod's Node or an operator's custom resource is not
reported here, so what it controls is. When an owner is not in the inventory (a dump of Pods only), the Pods
are grouped under that owner's reference, so 30 replicas still make one finding, not 30.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from nis2kube.findings import Location, ResourceRef
from nis2kube.inventory.inventory import Inventory, controller_ref
from nis2kube.inventory.kinds import group_of
from nis2kube.inventory.selectors import labels_of

# (group, kind) -> path from the object to its pod template ("" = the object is the pod).
POD_TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (),
    ("", "ReplicationController"): ("spec", "template"),
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}
WORKLOAD_KINDS = frozenset(kind for _, kind in POD_TEMPLATE_PATHS)
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class Workload:
    obj: dict  # the top-level object (or the first Pod, when its owner is not in the inventory)
    ref: ResourceRef  # what findings are reported on
    pod_spec: dict
    pod_labels: dict[str, str]
    pod_annotations: dict
    pod_count: int = 1  # Pods grouped under an absent owner
    all_containers: tuple[tuple[str, dict], ...] = ()  # (field, container): init, regular, ephemeral

    @property
    def kind(self) -> str:
        return self.ref.kind

    @property
    def namespace(self) -> str:
        return self.ref.namespace or "default"

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def location(self) -> Location | None:
        return self.ref.location

    @property
    def service_account(self) -> str:
        return self.pod_spec.get("serviceAccountName") or self.pod_spec.get("serviceAccount") or "default"

    def containers(self) -> tuple[tuple[str, dict], ...]:
        """(field, container) for init, regular and ephemeral containers, listed once per workload: a dozen
        checks walk them."""
        return self.all_containers


def iter_containers(pod_spec: dict) -> Iterator[tuple[str, dict]]:
    for field in CONTAINER_FIELDS:
        items = pod_spec.get(field) or []
        if isinstance(items, list):
            for container in items:
                if isinstance(container, dict):
                    yield field, container


def pod_template(obj: dict, path: tuple[str, ...]) -> dict | None:
    """The pod (template) of a workload object at `path` (its kind's entry in POD_TEMPLATE_PATHS)."""
    node: object = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def workloads(inv: Inventory) -> list[Workload]:
    """Every top-level workload once, in a stable order."""
    return inv.cached("workloads", lambda: _build(inv))


def _build(inv: Inventory) -> list[Workload]:
    out: list[Workload] = []
    orphans: dict[tuple, list[dict]] = {}
    for (group, kind), path in POD_TEMPLATE_PATHS.items():
        for obj in inv.objects(kind, group):
            if report_owner(inv, obj) is not None:
                continue
            absent = _absent_controller(obj)
            if absent is not None and kind == "Pod":
                orphans.setdefault(absent, []).append(obj)
                continue
            workload = _workload(obj, inv.ref(obj), path)
            if workload is not None:
                out.append(workload)
    for (api_version, kind, namespace, name), pods in orphans.items():
        first = pods[0]
        ref = ResourceRef(api_version, kind, namespace, name, None, inv.location(first))
        workload = _workload(first, ref, (), len(pods))
        if workload is not None:
            out.append(workload)
    out.sort(key=lambda w: (w.namespace, w.kind, w.name))
    return out


def report_owner(inv: Inventory, obj: dict) -> dict | None:
    """The owner that findings about obj move to: its controller, when the inventory has it and it is a workload
    kind. The workload view and the Trivy Operator label mapping both use it, so a report finds its workload."""
    owner = inv.owner(obj)
    if owner is not None and (group_of(str(owner.get("apiVersion", ""))), owner.get("kind")) in POD_TEMPLATE_PATHS:
        return owner
    return None


def _absent_controller(obj: dict) -> tuple | None:
    """The controller reference of a Pod whose controller is a workload kind (not a Node: static pods)."""
    ref = controller_ref(obj)
    if ref is not None and ref.get("kind") in WORKLOAD_KINDS and ref.get("name"):
        return (str(ref.get("apiVersion", "")), ref["kind"], obj["metadata"].get("namespace"), ref["name"])
    return None


def _workload(obj: dict, ref: ResourceRef, path: tuple[str, ...], count: int = 1) -> Workload | None:
    template = pod_template(obj, path)
    if template is None:
        return None
    spec = template.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    return Workload(obj, ref, spec, labels_of(template), annotations, count, tuple(iter_containers(spec)))
