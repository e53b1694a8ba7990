"""The Inventory: a read-only index over the objects a source produced.

Objects stay the dicts the parser returned (no copies, no model classes: building Python objects is
what a scan spends its time on). Engines read; only sources add. Derived views (workloads, label
indexes) are built once, on first use, through `cached`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nis2kube.findings import Location, ResourceRef
from nis2kube.inventory.files import Problem
from nis2kube.inventory.kinds import WELL_KNOWN_GROUPS, group_of, is_namespaced
from nis2kube.inventory.selectors import labels_of

T = TypeVar("T")

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass
class SourceInfo:
    """Where the inventory came from; goes into every report as provenance."""

    type: str  # "files" or "live"
    locations: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    cluster: str | None = None
    server_version: str | None = None
    captured_at: str | None = None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"type": self.type, "locations": self.locations}
        if self.files:
            out["files"] = [{"path": p, "sha256": h} for p, h in sorted(self.files.items())]
        for key in ("cluster", "server_version", "captured_at"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def controller_ref(obj: dict) -> dict | None:
    """The ownerReference with `controller: true`, as metav1.GetControllerOf reads it (there is at most one)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    if isinstance(refs, list):
        for ref in refs:
            if isinstance(ref, dict) and ref.get("controller") is True:
                return ref
    return None


class Inventory:
    def __init__(self, source: SourceInfo | None = None) -> None:
        self.source = source or SourceInfo("files")
        self.problems: list[Problem] = []
        # Live mode only: kinds that could not be listed, with the reason (e.g. missing RBAC permission).
        self.unlisted: dict[tuple[str, str], str] = {}
        # Live mode only: kinds the API server serves (absent CRD = tool not installed, which is evidence).
        self.served_kinds: set[tuple[str, str]] | None = None
        self._by_kind: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self._by_key: dict[tuple[str, str, str | None, str], dict] = {}
        self._by_uid: dict[str, dict] = {}
        self._locations: dict[int, Location] = {}
        self._refs: dict[int, tuple[dict, ResourceRef]] = {}
        self._cache: dict[str, Any] = {}
        self._count = 0

    # ---- building -------------------------------------------------------------------------------------
    def add(self, obj: dict, location: Location | None = None) -> None:
        """Index one object. A namespaced object without a namespace lands in `default`, as kubectl would."""
        group = group_of(obj["apiVersion"])
        kind = obj["kind"]
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace")
        if is_namespaced(group, kind):
            if not namespace:
                namespace = meta["namespace"] = "default"
        else:
            namespace = None
        key = (group, kind, namespace, meta.get("name", ""))
        if key in self._by_key:  # the same object twice (e.g. a dump and a manifest): last one wins
            previous = self._by_key[key]
            bucket = self._by_kind[(group, kind)]
            bucket[bucket.index(previous)] = obj
            if previous is not obj:  # the replaced dict may be freed and its id reused
                self._locations.pop(id(previous), None)
        else:
            self._by_kind[(group, kind)].append(obj)
            self._count += 1
        self._by_key[key] = obj
        uid = meta.get("uid")
        if uid:
            self._by_uid[str(uid)] = obj
        if location is not None:
            self._locations[id(obj)] = location
        self._cache.clear()
        self._refs.clear()

    def extend(self, items: Iterable[tuple[dict, Location | None]]) -> None:
        for obj, location in items:
            self.add(obj, location)

    # ---- reading --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    def objects(self, kind: str, group: str | None = None) -> list[dict]:
        """All objects of a kind. `group` defaults to the kind's well-known group."""
        return self._by_kind.get((self._group(kind, group), kind), [])

    def in_namespace(self, kind: str, namespace: str, group: str | None = None) -> list[dict]:
        by_ns = self.cached(f"by-ns:{group}:{kind}", lambda: self._index_by_namespace(kind, group))
        return by_ns.get(namespace, [])

    def _index_by_namespace(self, kind: str, group: str | None) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for obj in self.objects(kind, group):
            out[obj["metadata"].get("namespace") or ""].append(obj)
        return dict(out)

    def get(self, kind: str, namespace: str | None, name: str, group: str | None = None) -> dict | None:
        return self._by_key.get((self._group(kind, group), kind, namespace, name))

    def by_uid(self, uid: str) -> dict | None:
        return self._by_uid.get(uid)

    def kinds(self) -> list[tuple[str, str]]:
        return sorted(k for k, v in self._by_kind.items() if v)

    def all_objects(self) -> Iterable[dict]:
        for bucket in self._by_kind.values():
            yield from bucket

    def location(self, obj: dict) -> Location | None:
        return self._locations.get(id(obj))

    def ref(self, obj: dict) -> ResourceRef:
        """The object's reference, made once: the checks of a big scan ask for the same objects' refs hundreds of
        thousands of times, and a shared ref is encoded once in the report. The entry holds the object, so its
        id cannot be reused by another dict while the entry lives."""
        if (hit := self._refs.get(id(obj))) is not None and hit[0] is obj:
            return hit[1]
        ref = ResourceRef.of(obj, self._locations.get(id(obj)))
        self._refs[id(obj)] = (obj, ref)
        return ref

    def unlisted_reason(self, kind: str, group: str | None = None) -> str | None:
        """Why this kind could not be read (live mode), or None when the inventory has it."""
        return self.unlisted.get((self._group(kind, group), kind))

    def kind_served(self, kind: str, group: str | None = None) -> bool | None:
        """Live mode: does the API server serve this kind at all? Offline: unknown (None)."""
        if self.served_kinds is None:
            return None
        return (self._group(kind, group), kind) in self.served_kinds

    # ---- namespaces -----------------------------------------------------------------------------------
    def namespaces(self) -> list[str]:
        """Namespaces that exist as objects or that objects live in."""

        def build() -> list[str]:
            names = {o["metadata"].get("name") for o in self.objects("Namespace")}
            names.update(namespace for _, _, namespace, _ in self._by_key)  # the index holds every object once
            return sorted(n for n in names if n)

        return self.cached("namespaces", build)

    def namespace_labels(self, name: str) -> dict[str, str]:
        """Labels of a namespace, always with kubernetes.io/metadata.name (the API server sets it)."""

        def build() -> dict[str, dict[str, str]]:
            out = {}
            for ns in self.objects("Namespace"):
                labels = labels_of(ns)
                labels[NAMESPACE_NAME_LABEL] = ns["metadata"].get("name", "")
                out[ns["metadata"].get("name", "")] = labels
            return out

        labels = self.cached("namespace-labels", build).get(name)
        return labels if labels is not None else {NAMESPACE_NAME_LABEL: name}

    def owner(self, obj: dict) -> dict | None:
        """The controller of obj if the inventory has it (by uid, else by kind/namespace/name). A plain owner
        reference only ties garbage collection: it does not manage the object, so it is no owner here."""
        ref = controller_ref(obj)
        if ref is None:
            return None
        uid = ref.get("uid")
        if uid and uid in self._by_uid:
            return self._by_uid[uid]
        kind, name = ref.get("kind"), ref.get("name")
        if not kind or not name:
            return None
        group = group_of(str(ref.get("apiVersion", "")))
        ns = obj["metadata"].get("namespace") if is_namespaced(group, kind) else None
        return self._by_key.get((group, kind, ns, name))

    # ---- derived views --------------------------------------------------------------------------------
    def cached(self, key: str, build: Callable[[], T]) -> T:
        """Build a derived view once; views are dropped when objects are added."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @staticmethod
    def _group(kind: str, group: str | None) -> str:
        if group is not None:
            return group
        return WELL_KNOWN_GROUPS.get(kind, "")
