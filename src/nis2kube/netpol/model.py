"""The NetworkPolicy v1 model: endpoints (workloads), their equivalence classes, and compiled policies.

Everything the engine and the explainer need is compiled once here from the inventory's dicts, with the
API server's validation rules: a policy the API server would reject cannot exist in a cluster, so it is
reported as a problem and not applied (a manifest that fails `kubectl apply` isolates nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nis2kube.findings import ResourceRef
from nis2kube.inventory import Inventory
from nis2kube.inventory.selectors import EVERYTHING, Selector, labels_of
from nis2kube.inventory.workloads import iter_containers, workloads
from nis2kube.netpol.admin import ANP, BANP, AdminPolicy, Unsupported, compile_admin, selector
from nis2kube.netpol.ipsets import ALL_EXTERNAL, IPSet
from nis2kube.netpol.ports import (
    ALL_PORTS,
    MAX_PORT,
    MIN_PORT,
    NO_PORTS,
    PORT_NAME,
    PolicyError,
    PortRef,
    PortSet,
    checked_protocol,
    checked_range,
)

if TYPE_CHECKING:
    from nis2kube.netpol.engine import Matrix
    from nis2kube.netpol.queries import Answer

# Policy kinds we do not evaluate: (group, kind, cluster-wide?). Their presence makes answers "not modelled".
UNMODELLED_KINDS: tuple[tuple[str, str, bool], ...] = (
    ("cilium.io", "CiliumNetworkPolicy", False),
    ("cilium.io", "CiliumClusterwideNetworkPolicy", True),
    ("crd.projectcalico.org", "NetworkPolicy", False),
    ("projectcalico.org", "NetworkPolicy", False),
    ("crd.projectcalico.org", "GlobalNetworkPolicy", True),
    ("projectcalico.org", "GlobalNetworkPolicy", True),
    ("policy.networking.k8s.io", "ClusterNetworkPolicy", True),
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Something that runs pods, as NetworkPolicy sees it: namespace, pod labels, container ports."""

    namespace: str
    kind: str
    name: str
    labels: Mapping[str, str]
    named_ports: frozenset[tuple[str, str, int]]  # (name, protocol, number)
    host_network: bool = False
    ref: ResourceRef | None = None
    ip: IPSet | None = None  # a bare Pod's status.podIP: ipBlock peers match it as they match outside addresses

    def in_block(self, block: IPSet) -> bool:
        return self.ip is not None and not self.ip.difference(block)

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def class_key(self) -> tuple:
        """What NetworkPolicy selectors and ports see; `_classes` adds which ipBlocks hold the IP."""
        return (self.namespace, frozenset(self.labels.items()), self.named_ports, self.host_network)

    def resolve_named(self, name: str, protocol: str) -> int | None:
        """The number of the destination's container port `name` on `protocol` (None: it has none)."""
        for n, p, number in self.named_ports:
            if n == name and p == protocol:
                return number
        return None


@dataclass(frozen=True, slots=True)
class Peer:
    """One `from`/`to` entry: pods (namespace selector None = the policy's own namespace) or an ipBlock."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip: IPSet | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    index: int  # 0-based position in spec.ingress / spec.egress
    peers: tuple[Peer, ...] | None  # None: `from`/`to` empty or absent = every peer, external included
    ports: tuple[PortRef, ...]  # empty: every port

    @property
    def external(self) -> IPSet:
        """External addresses this rule's peers cover."""
        if self.peers is None:
            return ALL_EXTERNAL
        out = IPSet()
        for peer in self.peers:
            if peer.ip is not None:
                out = out.union(peer.ip)
        return out


@dataclass(frozen=True, slots=True)
class Policy:
    namespace: str
    name: str
    pod_selector: Selector
    affects_ingress: bool
    affects_egress: bool
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    ref: ResourceRef | None = None

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Model:
    """Endpoints grouped into classes, compiled policies, and what we could not model."""

    endpoints: list[Endpoint]
    classes: list[Endpoint]  # one representative per equivalence class
    class_of: list[int]  # endpoint index -> class index
    members: list[list[int]]  # class index -> endpoint indexes
    namespace_labels: dict[str, dict[str, str]]
    policies: list[Policy]
    unmodelled: list[tuple[str, str | None, str]] = field(default_factory=list)  # (kind, namespace, name)
    problems: list[str] = field(default_factory=list)
    pods: dict[tuple[str, str], Endpoint] = field(default_factory=dict)  # (ns, pod name) -> its own endpoint
    admin: list[AdminPolicy] = field(default_factory=list)  # ANPs by priority, then BANPs
    _cache: dict = field(default_factory=dict, repr=False)

    # ---- the public query API (implemented in queries/engine, imported lazily: they import this module) ----
    def can_reach(self, src: str | Endpoint, dst: str | Endpoint, port: str | int | None = None,
                  protocol: str = "TCP") -> Answer:
        """Can src open a connection to dst on port/protocol (None: on which ports)? With the reasons."""
        from nis2kube.netpol.queries import can_reach

        return can_reach(self, src, dst, port, protocol)

    def matrix(self, namespaces: list[str] | None = None) -> Matrix:
        """The endpoint x endpoint reachability (grouped by class), plus external, computed once."""
        from nis2kube.netpol.engine import Matrix

        key = ("matrix", tuple(namespaces) if namespaces else None)
        if key not in self._cache:
            self._cache[key] = Matrix.build(self, namespaces)
        return self._cache[key]

    def ns_labels(self, namespace: str) -> dict[str, str]:
        return self.namespace_labels.get(namespace) or {"kubernetes.io/metadata.name": namespace}

    def unmodelled_for(self, namespace: str) -> list[str]:
        """Descriptions of unmodelled policy objects that can affect pods of this namespace."""
        return [f"{kind} {ns + '/' if ns else ''}{name}" for kind, ns, name in self.unmodelled
                if ns is None or ns == namespace]

    def find(self, namespace: str, name: str) -> list[int]:
        """Endpoint indexes named `name` (or `Kind/name`) in a namespace."""
        kind, _, short = name.rpartition("/")
        return [i for i, e in enumerate(self.endpoints)
                if e.namespace == namespace and e.name == short and (not kind or e.kind.lower() == kind.lower())]


def build_model(inv: Inventory) -> Model:
    """Compile the inventory's workloads and NetworkPolicies (cached on the inventory)."""
    return inv.cached("netpol-model", lambda: _build(inv))


def _build(inv: Inventory) -> Model:
    found = workloads(inv)
    endpoints = [
        endpoint_of(w.namespace, w.kind, w.name, w.pod_labels, w.pod_spec, w.ref,
                    pod_ip(w.obj) if w.kind == "Pod" else None)
        for w in found
    ]
    problems: list[str] = []
    policies = []
    for obj in inv.objects("NetworkPolicy"):
        try:
            policies.append(compile_policy(obj, inv.ref(obj)))
        except PolicyError as exc:
            ref = inv.ref(obj)
            where = f" ({ref.location.file})" if ref.location else ""
            problems.append(f"NetworkPolicy {ref.namespace}/{ref.name}{where}: {exc}; the API server would "
                            "reject it, so it is not applied")
    classes, class_of, members = _classes(endpoints, policies)
    namespaces = {ns: inv.namespace_labels(ns) for ns in inv.namespaces()}
    problems.extend(_unknown_namespace_labels(inv, endpoints, policies))
    admin, unmodelled = _admin_policies(inv, problems)
    for group, kind, cluster_wide in UNMODELLED_KINDS:
        for obj in inv.objects(kind, group):
            meta = obj.get("metadata") or {}
            unmodelled.append((kind, None if cluster_wide else meta.get("namespace"), str(meta.get("name", ""))))
    bare = {(w.namespace, w.name) for w in found if w.kind == "Pod"}
    pods = {}
    for pod in inv.objects("Pod"):
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
        ns, name = meta.get("namespace") or "default", str(meta.get("name", ""))
        # A controller's pod is judged as its workload (a template: its pods' IPs change on every rollout),
        # so it gets no IP here either, and `ns/pod` answers as `ns/workload` does.
        ip = pod_ip(pod) if (ns, name) in bare else None
        pods[(ns, name)] = endpoint_of(ns, "Pod", name, labels_of(pod), spec, inv.ref(pod), ip)
    return Model(endpoints, classes, class_of, members, namespaces, policies, unmodelled, problems, pods, admin=admin)


def _classes(endpoints: list[Endpoint], policies: list[Policy]) -> tuple[list[Endpoint], list[int], list[list[int]]]:
    """Group endpoints into classes: (representatives, endpoint -> class, class -> endpoints). Pod IPs split
    classes only by which ipBlock peers contain them, so IPs no ipBlock tells apart stay in one class."""
    blocks = list(dict.fromkeys(peer.ip for p in policies for rule in p.ingress + p.egress
                                for peer in rule.peers or () if peer.ip is not None))
    classes: list[Endpoint] = []
    index: dict[tuple, int] = {}
    class_of: list[int] = []
    members: list[list[int]] = []
    for i, e in enumerate(endpoints):
        key = (e.class_key, frozenset(j for j, block in enumerate(blocks) if e.in_block(block)))
        c = index.get(key)
        if c is None:
            c = index[key] = len(classes)
            classes.append(e)
            members.append([])
        class_of.append(c)
        members[c].append(i)
    return classes, class_of, members


def _admin_policies(inv: Inventory, problems: list[str]) -> tuple[list[AdminPolicy], list[tuple[str, None, str]]]:
    """ANPs (by priority) and BANPs; invalid ones are problems, ones we cannot evaluate stay unmodelled."""
    admin, unmodelled = [], []
    for kind in (ANP, BANP):
        for obj in inv.objects(kind, "policy.networking.k8s.io"):
            name = str((obj.get("metadata") or {}).get("name", ""))
            try:
                admin.append(compile_admin(obj))
            except Unsupported:
                unmodelled.append((kind, None, name))
            except PolicyError as exc:
                problems.append(f"{kind} {name}: {exc}; the API server would reject it, so it is not applied")
    admin.sort(key=lambda p: (p.kind != ANP, p.priority, p.name))
    return admin, unmodelled


def _unknown_namespace_labels(inv: Inventory, endpoints: list[Endpoint], policies: list[Policy]) -> list[str]:
    """Namespaces without a Namespace object have unknown labels; say so when a selector depends on them."""
    keys = {r.key for p in policies for rule in p.ingress + p.egress for peer in rule.peers or ()
            if peer.namespace_selector is not None for r in peer.namespace_selector.requirements}
    keys.discard("kubernetes.io/metadata.name")
    known = {str((o.get("metadata") or {}).get("name")) for o in inv.objects("Namespace")}
    missing = sorted({e.namespace for e in endpoints} - known)
    if not keys or not missing:
        return []
    return [f"namespaces {', '.join(missing)} have no Namespace object in the input, so their labels are unknown "
            f"(only kubernetes.io/metadata.name is assumed); namespaceSelector terms on {', '.join(sorted(keys))} "
            "may match them in the cluster. Add the Namespace objects for an exact answer"]


def pod_ip(pod: dict) -> IPSet | None:
    """status.podIP (None: not scheduled yet, or unreadable). hostNetwork pods carry the node's IP, unused."""
    status = pod.get("status")
    raw = status.get("podIP") if isinstance(status, dict) else None
    try:
        return IPSet.of([f"{raw}/{32 if ':' not in str(raw) else 128}"]) if raw else None
    except ValueError:
        return None


def endpoint_of(namespace: str, kind: str, name: str, labels: Mapping[str, str], pod_spec: dict,
                ref: ResourceRef | None = None, ip: IPSet | None = None) -> Endpoint:
    named = set()
    for _, container in iter_containers(pod_spec):
        for port in container.get("ports") or []:
            if not isinstance(port, dict) or not port.get("name"):
                continue
            number = port.get("containerPort")
            if isinstance(number, int) and not isinstance(number, bool):
                named.add((str(port["name"]), str(port.get("protocol") or "TCP").upper(), number))
    return Endpoint(namespace, kind, name, dict(labels), frozenset(named), pod_spec.get("hostNetwork") is True, ref, ip)


# ---- compiling one NetworkPolicy --------------------------------------------------------------------------

def compile_policy(obj: dict, ref: ResourceRef | None = None) -> Policy:
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or "default", str(meta.get("name", ""))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise PolicyError("spec is missing or not a mapping")
    # podSelector is a plain struct in the Go type: absent or null decodes to {}, every pod of the namespace
    pod_selector = selector(spec.get("podSelector") or {}, "spec.podSelector")
    ingress = _rules(spec.get("ingress"), "ingress", "from")
    egress = _rules(spec.get("egress"), "egress", "to")
    types = spec.get("policyTypes")
    if types is None or types == []:
        # Defaulting: Ingress always; Egress when the policy has egress rules.
        affects_ingress, affects_egress = True, bool(egress)
    else:
        if not isinstance(types, list) or any(t not in ("Ingress", "Egress") for t in types):
            raise PolicyError(f"spec.policyTypes must list Ingress and/or Egress, not {types!r}")
        affects_ingress, affects_egress = "Ingress" in types, "Egress" in types
    return Policy(namespace, name, pod_selector, affects_ingress, affects_egress, ingress, egress, ref)


def _rules(raw: object, direction: str, peer_field: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError(f"spec.{direction} must be a list")
    rules = []
    for i, item in enumerate(raw):
        where = f"spec.{direction}[{i}]"
        if item is None:
            item = {}
        if not isinstance(item, dict):
            raise PolicyError(f"{where} must be a mapping")
        peers_raw = item.get(peer_field)
        peers = None
        if peers_raw:
            if not isinstance(peers_raw, list):
                raise PolicyError(f"{where}.{peer_field} must be a list")
            peers = tuple(_peer(p, f"{where}.{peer_field}[{j}]") for j, p in enumerate(peers_raw))
        ports_raw = item.get("ports") or []
        if not isinstance(ports_raw, list):
            raise PolicyError(f"{where}.ports must be a list")
        ports = tuple(_port(p, f"{where}.ports[{j}]") for j, p in enumerate(ports_raw))
        rules.append(Rule(i, peers, ports))
    return tuple(rules)


def _peer(raw: object, where: str) -> Peer:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a mapping")
    # A null field is an absent one (a nil pointer in the API): `namespaceSelector: null` keeps the policy's namespace.
    has_pod, has_ns, has_ip = (raw.get(k) is not None for k in ("podSelector", "namespaceSelector", "ipBlock"))
    if has_ip:
        if has_pod or has_ns:
            raise PolicyError(f"{where}: ipBlock cannot be combined with podSelector/namespaceSelector")
        block = raw["ipBlock"]
        if not isinstance(block, dict) or not block.get("cidr"):
            raise PolicyError(f"{where}.ipBlock.cidr is required")
        excepts = block.get("except") or []
        if not isinstance(excepts, list):
            raise PolicyError(f"{where}.ipBlock.except must be a list")
        try:
            cidr = IPSet.of([str(block["cidr"])])
            for e in excepts:
                if not IPSet.of([str(e)]).difference(cidr).spans == ():
                    raise PolicyError(f"{where}.ipBlock.except {e!r} is not inside cidr {block['cidr']!r}")
            ip = IPSet.of([str(block["cidr"])], [str(e) for e in excepts])
        except ValueError as exc:
            if isinstance(exc, PolicyError):
                raise
            raise PolicyError(f"{where}.ipBlock: {exc}") from None
        text = f"ipBlock {block['cidr']}" + (f" except {', '.join(map(str, excepts))}" if excepts else "")
        return Peer(ip=ip, text=text)
    if not has_pod and not has_ns:
        raise PolicyError(f"{where} must set podSelector, namespaceSelector or ipBlock")
    pod = selector(raw["podSelector"], f"{where}.podSelector") if has_pod else EVERYTHING
    ns = selector(raw["namespaceSelector"], f"{where}.namespaceSelector") if has_ns else None
    parts = []
    if has_ns:
        parts.append(f"namespaceSelector {_show(raw.get('namespaceSelector'))}")
    if has_pod:
        parts.append(f"podSelector {_show(raw.get('podSelector'))}")
    return Peer(pod_selector=pod, namespace_selector=ns, text=" AND ".join(parts))


def _show(selector: object) -> str:
    if not selector:
        return "{} (all)"
    if isinstance(selector, dict):
        bits = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
        for e in selector.get("matchExpressions") or []:
            if isinstance(e, dict):
                vals = ",".join(map(str, e.get("values") or []))
                bits.append(f"{e.get('key')} {e.get('operator')}" + (f" ({vals})" if vals else ""))
        return "{" + ", ".join(bits) + "}"
    return str(selector)


def _port(raw: object, where: str) -> PortRef:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a mapping")
    proto = checked_protocol(raw, where)
    port, end = raw.get("port"), raw.get("endPort")
    if port is None:
        if end is not None:
            raise PolicyError(f"{where}.endPort needs a numeric port")
        return PortRef(proto, MIN_PORT, MAX_PORT)
    if isinstance(port, bool):
        raise PolicyError(f"{where}.port must be a number or a name")
    if isinstance(port, str):
        if not PORT_NAME.match(port) or port.isdigit():
            raise PolicyError(f"{where}.port {port!r} is neither a number nor a valid port name")
        if end is not None:
            raise PolicyError(f"{where}.endPort cannot be used with a named port")
        return PortRef(proto, name=port)
    if not isinstance(port, int):
        raise PolicyError(f"{where}.port must be a number or a name")
    return checked_range(proto, port, port if end is None else end, where)


def resolve_ports(ports: tuple[PortRef, ...], dst: Endpoint) -> PortSet:
    """The concrete ports a rule's `ports` allow towards one destination (named ports resolved on it)."""
    if not ports:
        return ALL_PORTS
    out = NO_PORTS
    for ref in ports:
        if ref.name is None:
            out = out.union(PortSet.single(ref.protocol, ref.lo, ref.hi))  # type: ignore[arg-type]
        else:
            number = dst.resolve_named(ref.name, ref.protocol)
            if number is not None:
                out = out.union(PortSet.single(ref.protocol, number))
    return out
