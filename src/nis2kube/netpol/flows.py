"""flows.yaml: the flows a team intends (zones + allowed flows), and verification of a cluster against it.

Verification is two-way and exact per port: every flow the policies allow that no declared flow covers is
`excess` (a NIS2 segmentation finding), every declared flow the policies block is `blocked` (it breaks
production). What NetworkPolicy cannot decide (hostNetwork, CNI-specific policy kinds) is `unverifiable`.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from dataclasses import dataclass, field

from nis2kube.inventory.selectors import EVERYTHING, InvalidSelector, Selector, parse_selector
from nis2kube.inventory.yamlload import load_document
from nis2kube.netpol.engine import ClassIndex, Matrix, bits_of, refine
from nis2kube.netpol.explain import external_pieces, external_side
from nis2kube.netpol.intervals import merge
from nis2kube.netpol.ipsets import ALL_EXTERNAL, IPSet
from nis2kube.netpol.model import Endpoint, Model, resolve_ports
from nis2kube.netpol.ports import NO_PORTS, PortRef, PortSet, parse_port_ref

MAX_FLOWS_BYTES = 4 * 1024 * 1024
DNS_PORTS = PortSet.of({"UDP": [(53, 53)], "TCP": [(53, 53)]})
DNS_NAMESPACE, DNS_LABEL = "kube-system", ("k8s-app", "kube-dns")


class FlowSpecError(ValueError):
    """flows.yaml cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Zone:
    name: str
    namespace: str | None = None
    namespace_selector: Selector | None = None
    pod_selector: Selector = EVERYTHING
    external: IPSet | None = None

    def matches(self, model: Model, ep: Endpoint) -> bool:
        if self.external is not None:
            return False
        if self.namespace is not None:
            ns_ok = ep.namespace == self.namespace
        else:
            selector = self.namespace_selector
            ns_ok = selector is not None and selector.matches(model.ns_labels(ep.namespace))
        return ns_ok and self.pod_selector.matches(ep.labels)

    def classes(self, index: ClassIndex) -> int:
        if self.external is not None:
            return 0
        if self.namespace is not None:
            candidates = index.by_ns.get(self.namespace, 0)
        else:
            candidates = index.in_namespaces(self.namespace_selector)  # type: ignore[arg-type]
        return index.select(self.pod_selector, candidates)


@dataclass(frozen=True)
class Flow:
    index: int
    src: Zone
    dst: Zone
    ports: tuple[PortRef, ...]
    description: str = ""

    def describe(self) -> str:
        ports = ", ".join(p.describe() for p in self.ports) or "all ports"
        return f"{self.src.name} -> {self.dst.name} ({ports})"


@dataclass
class FlowSpec:
    path: str
    zones: dict[str, Zone]
    flows: list[Flow]
    dns: bool = True


def load_flows(path: str) -> FlowSpec:
    """Read and validate flows.yaml; every error names the file and the field."""
    try:
        size = os.path.getsize(path)
        if size > MAX_FLOWS_BYTES:
            raise FlowSpecError(f"{path}: {size:,} bytes, over the {MAX_FLOWS_BYTES:,}-byte limit")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise FlowSpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FlowSpecError(f"{path}: not UTF-8 text") from None
    try:
        data = load_document(text)
    except Exception as exc:  # any parser failure is an input error
        raise FlowSpecError(f"{path}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    return parse_flows(data, path)


def parse_flows(data: object, path: str = "flows.yaml") -> FlowSpec:
    if not isinstance(data, dict):
        raise FlowSpecError(f"{path}: the top level must be a mapping")
    if data.get("kind", "FlowSpec") != "FlowSpec":
        raise FlowSpecError(f"{path}: kind must be FlowSpec, not {data.get('kind')!r}")
    implicit = data.get("implicit") or {}
    if not isinstance(implicit, dict) or not isinstance(implicit.get("dns", True), bool):
        raise FlowSpecError(f"{path}: implicit.dns must be true or false")
    raw_zones = data.get("zones") or {}
    if not isinstance(raw_zones, dict):
        raise FlowSpecError(f"{path}: zones must be a mapping of zone name to zone")
    zones = {str(name): _zone(str(name), z, f"{path}: zones.{name}") for name, z in raw_zones.items()}
    raw_flows = data.get("flows") or []
    if not isinstance(raw_flows, list):
        raise FlowSpecError(f"{path}: flows must be a list")
    flows = [_flow(i, f, zones, f"{path}: flows[{i}]") for i, f in enumerate(raw_flows)]
    return FlowSpec(path, zones, flows, implicit.get("dns", True))


def _zone(name: str, raw: object, where: str) -> Zone:
    if not isinstance(raw, dict):
        raise FlowSpecError(f"{where}: must be a mapping")
    if "external" in raw:
        if set(raw) - {"external", "description"}:
            raise FlowSpecError(f"{where}: an external zone has only `external` (CIDR or list of CIDRs)")
        cidrs = raw["external"] if isinstance(raw["external"], list) else [raw["external"]]
        try:
            return Zone(name, external=IPSet.of([str(c) for c in cidrs]))
        except ValueError as exc:
            raise FlowSpecError(f"{where}.external: {exc}") from None
    unknown = set(raw) - {"namespace", "namespaceSelector", "podSelector", "description"}
    if unknown:
        raise FlowSpecError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if ("namespace" in raw) == ("namespaceSelector" in raw):
        raise FlowSpecError(f"{where}: give exactly one of namespace or namespaceSelector")
    try:
        ns_sel = parse_selector(raw["namespaceSelector"] or {}) if "namespaceSelector" in raw else None
        pod_sel = parse_selector(raw.get("podSelector") or {})
    except InvalidSelector as exc:
        raise FlowSpecError(f"{where}: {exc}") from None
    namespace = raw.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        raise FlowSpecError(f"{where}.namespace must be a namespace name")
    return Zone(name, namespace, ns_sel, pod_sel)


def _flow(i: int, raw: object, zones: dict[str, Zone], where: str) -> Flow:
    if not isinstance(raw, dict):
        raise FlowSpecError(f"{where}: must be a mapping with from, to and ports")
    ends = []
    for key in ("from", "to"):
        name = raw.get(key)
        if not isinstance(name, str) or name not in zones:
            raise FlowSpecError(f"{where}.{key}: {name!r} is not a zone declared under zones")
        ends.append(zones[name])
    if ends[0].external is not None and ends[1].external is not None:
        raise FlowSpecError(f"{where}: a flow between two external zones does not cross the cluster")
    ports_raw = raw.get("ports")
    if ports_raw is not None and not isinstance(ports_raw, list):
        raise FlowSpecError(f"{where}.ports must be a list like [\"1883/TCP\"]")
    try:
        ports = tuple(parse_port_ref(str(p)) for p in ports_raw or [])
    except ValueError as exc:
        raise FlowSpecError(f"{where}.ports: {exc}") from None
    return Flow(i, ends[0], ends[1], ports, str(raw.get("description") or ""))


# ---- verification --------------------------------------------------------------------------------------

@dataclass
class Gap:
    """Flows between a group of sources and a group of destinations on some ports (classes expanded)."""

    kind: str  # excess or blocked
    sources: list[Endpoint]
    destinations: list[Endpoint]
    ports: PortSet
    addresses: IPSet | None = None  # when one side is external: which addresses
    external_side: str | None = None  # "source" or "destination"
    flow: Flow | None = None  # blocked: the declared flow

    def describe(self) -> str:
        src = "external " + self.addresses.describe() if self.external_side == "source" else _names(self.sources)
        dst = ("external " + self.addresses.describe() if self.external_side == "destination"  # type: ignore[union-attr]
               else _names(self.destinations))
        text = f"{src} -> {dst} on {self.ports.describe()}"
        return text + (f" (declared flow {self.flow.describe()})" if self.flow else "")

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "from": [e.id for e in self.sources], "to": [e.id for e in self.destinations],
               "ports": self.ports.to_list()}
        if self.addresses is not None:
            out["external"] = {"side": self.external_side, "addresses": self.addresses.cidrs()}
        if self.flow is not None:
            out["flow"] = {"index": self.flow.index, "from": self.flow.src.name, "to": self.flow.dst.name,
                           "description": self.flow.description}
        return out


def _names(eps: list[Endpoint]) -> str:
    ids = [e.id for e in eps]
    return ", ".join(ids) if len(ids) <= 4 else ", ".join(ids[:4]) + f" and {len(ids) - 4} more"


@dataclass
class Verification:
    excess: list[Gap] = field(default_factory=list)
    blocked: list[Gap] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.excess and not self.blocked

    def to_dict(self) -> dict:
        return {"ok": self.ok, "excess": [g.to_dict() for g in self.excess],
                "blocked": [g.to_dict() for g in self.blocked], "unverifiable": self.unverifiable,
                "warnings": self.warnings}


def verify(model: Model, spec: FlowSpec) -> Verification:
    """Compare what the policies allow with what the spec declares, in both directions."""
    matrix: Matrix = model.matrix()
    index = matrix.index
    out = Verification()
    affected = _unmodelled_classes(model, index, out)
    zone_bits = {name: z.classes(index) for name, z in spec.zones.items()}
    for name, z in spec.zones.items():
        if z.external is None and not zone_bits[name] and not any(z.matches(model, e) for e in model.endpoints):
            out.warnings.append(f"zone {name} selects no workload in the input")
    for ep in model.endpoints:
        if ep.host_network:
            declared = [f.describe() for f in spec.flows if f.src.matches(model, ep) or f.dst.matches(model, ep)]
            note = f"; declared flows involving it: {'; '.join(declared)}" if declared else ""
            out.unverifiable.append(f"{ep.id} uses hostNetwork: NetworkPolicy does not govern its traffic{note}")

    declared: dict[int, list[tuple[PortSet, int]]] = defaultdict(list)
    for f in spec.flows:
        if f.src.external is None and f.dst.external is None:
            for s in bits_of(zone_bits[f.src.name]):
                declared[s].extend(index.resolve(f.ports, zone_bits[f.dst.name]))
    dns = index.select(parse_selector({"matchLabels": dict([DNS_LABEL])}), index.by_ns.get(DNS_NAMESPACE, 0))
    members = _members(model)
    for s, row in matrix.rows.items():
        if affected >> s & 1:
            continue
        pieces = declared.get(s, []) + ([(DNS_PORTS, dns)] if spec.dns and dns else [])
        for ports, bits in _excess(row, refine(pieces, index.all)).items():
            bits &= ~affected
            if len(members[s]) == 1:
                bits &= ~(1 << s)  # a workload reaching its own pods is not a flow between workloads
            if bits:
                out.excess.append(Gap("excess", members[s], _expand(members, bits), ports))
    for f in spec.flows:
        if f.src.external is None and f.dst.external is None:
            out.blocked.extend(_blocked_internal(matrix, members, f, zone_bits, affected))
    _verify_external(model, index, spec, zone_bits, affected, members, out)
    return out


def _members(model: Model) -> list[list[Endpoint]]:
    return [[model.endpoints[i] for i in m] for m in model.members]


def _expand(members: list[list[Endpoint]], bits: int) -> list[Endpoint]:
    return [e for c in bits_of(bits) for e in members[c]]


def _unmodelled_classes(model: Model, index: ClassIndex, out: Verification) -> int:
    affected = 0
    for ns in sorted(index.by_ns):
        found = model.unmodelled_for(ns)
        if found:
            affected |= index.by_ns[ns]
            out.unverifiable.append(f"namespace {ns}: not modelled: {', '.join(found)}")
    return affected


def _excess(row: dict[PortSet, int], declared: list[tuple[int, PortSet]]) -> dict[PortSet, int]:
    """Allowed ports minus declared ports, per destination, grouped by the remainder."""
    out: dict[PortSet, int] = defaultdict(int)
    for aports, abits in row.items():
        rest = abits
        for dbits, dports in declared:
            both = abits & dbits
            if both:
                extra = aports.difference(dports)
                if extra:
                    out[extra] |= both
                rest &= ~dbits
        if rest:
            out[aports] |= rest
    return out


def _blocked_internal(matrix: Matrix, members: list[list[Endpoint]], f: Flow, zone_bits: dict[str, int],
                      affected: int) -> list[Gap]:
    """Declared ports minus allowed ports, per destination, computed on the rows' bitsets (no pair loop)."""
    grouped: dict[tuple[int, PortSet], int] = defaultdict(int)
    for s in bits_of(zone_bits[f.src.name] & ~affected):
        row = matrix.rows.get(s, {})
        for ports, dbits in matrix.index.resolve(f.ports, zone_bits[f.dst.name] & ~affected):
            if len(members[s]) == 1:
                dbits &= ~(1 << s)  # a workload talking to itself is not a flow between workloads
            rest = dbits
            for aports, abits in row.items():
                both = dbits & abits
                if both:
                    missing = ports.difference(aports)
                    if missing:
                        grouped[(s, missing)] |= both
                    rest &= ~abits
            if rest:
                grouped[(s, ports)] |= rest
    return [Gap("blocked", members[s], _expand(members, bits), ports, flow=f)
            for (s, ports), bits in grouped.items()]


def _verify_external(model: Model, index: ClassIndex, spec: FlowSpec, zone_bits: dict[str, int],
                     affected: int, members: list[list[Endpoint]], out: Verification) -> None:
    """pod -> outside (egress) and outside -> pod (ingress), exact per address and port."""
    for direction, side in (("egress", "destination"), ("ingress", "source")):
        declared: dict[int, list[tuple[IPSet, PortSet, Flow]]] = defaultdict(list)
        for f in spec.flows:
            pod_zone, ext_zone = (f.src, f.dst) if direction == "egress" else (f.dst, f.src)
            if ext_zone.external is None:
                continue
            for c in bits_of(zone_bits[pod_zone.name]):
                rep = model.classes[c] if direction == "ingress" else None
                ports = _resolve_on(f.ports, rep)
                if ports:
                    declared[c].append((ext_zone.external, ports, f))
        for c in bits_of(index.all & ~affected):
            allowed = external_pieces(external_side(model, model.classes[c], ALL_EXTERNAL, direction))
            mine = [(ip, ports) for ip, ports, _ in declared.get(c, [])]
            for ips, ports in ip_port_difference(allowed, mine):
                out.excess.append(_ext_gap("excess", members[c], ports, ips, side, direction))
            for ip, ports, f in declared.get(c, []):
                for ips, missing in ip_port_difference([(ip, ports)], allowed):
                    gap = _ext_gap("blocked", members[c], missing, ips, side, direction)
                    gap.flow = f
                    out.blocked.append(gap)


def _ext_gap(kind: str, eps: list[Endpoint], ports: PortSet, ips: IPSet, side: str, direction: str) -> Gap:
    if direction == "egress":
        return Gap(kind, eps, [], ports, ips, side)
    return Gap(kind, [], eps, ports, ips, side)


def _resolve_on(ports: tuple[PortRef, ...], dst: Endpoint | None) -> PortSet:
    """Ports towards a pod (named ports resolved on it) or towards external addresses (numbers only)."""
    return resolve_ports(ports, dst or Endpoint("", "", "", {}, frozenset()))


def ip_port_difference(a: list[tuple[IPSet, PortSet]], b: list[tuple[IPSet, PortSet]]) -> list[tuple[IPSet, PortSet]]:
    """(addresses, ports) in the union of `a` but not in the union of `b`, per address."""
    bounds = sorted({x for ips, _ in a + b for lo, hi in ips.spans for x in (lo, hi + 1)})
    out: dict[PortSet, list[tuple[int, int]]] = defaultdict(list)
    for lo, nxt in itertools.pairwise(bounds):
        have = _ports_at(a, lo)
        if not have:
            continue
        extra = have.difference(_ports_at(b, lo))
        if extra:
            out[extra].append((lo, nxt - 1))
    return [(IPSet(merge(spans)), ports) for ports, spans in out.items()]


def _ports_at(pieces: list[tuple[IPSet, PortSet]], address: int) -> PortSet:
    out = NO_PORTS
    for ips, ports in pieces:
        if any(lo <= address <= hi for lo, hi in ips.spans):
            out = out.union(ports)
    return out
