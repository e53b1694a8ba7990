"""The grouped reachability engine: every class x class cell of the matrix, without looping over pairs.

Pods with the same namespace, labels, named ports, hostNetwork flag and ipBlocks holding their IP are alike to
NetworkPolicy, so the model works on equivalence classes. A set of classes is a Python int used as a
bitset; selectors are evaluated against label indexes (bitset unions/intersections), never per class.
A matrix row is `{PortSet: bitset of destination classes}`: computed by partition refinement of the
destinations by which rule pieces cover them, and shared by every source with the same policy signature.
ANP/BANP rules partition a row's destinations the same way and are applied around its NetworkPolicy regions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from nis2kube.inventory.selectors import Selector
from nis2kube.netpol.admin import AdminPolicy, AdminRule, Scope, side_ports, tiers
from nis2kube.netpol.explain import external_pieces, external_side
from nis2kube.netpol.ipsets import ALL_EXTERNAL, IPSet
from nis2kube.netpol.model import Endpoint, Model, Peer, Policy, resolve_ports
from nis2kube.netpol.ports import ALL_PORTS, NO_PORTS, PortRef, PortSet

Pieces = list[tuple[PortSet, int]]  # (ports, bitset of destination classes)
Verdict = tuple[PortSet, PortSet, PortSet]  # admin.tiers: (ANP-allowed, left to NetworkPolicy, BANP-denied)


def bits_of(x: int) -> list[int]:
    """Indexes of the set bits, fast for wide ints (string scan, not shifting)."""
    s = bin(x)[:1:-1]
    out, i = [], s.find("1")
    while i >= 0:
        out.append(i)
        i = s.find("1", i + 1)
    return out


class ClassIndex:
    """Bitset indexes over the pod-network classes: by namespace, by label, by named port."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.all = 0
        self.by_ns: dict[str, int] = defaultdict(int)
        self.by_kv: dict[tuple[str, str], int] = defaultdict(int)
        self.by_key: dict[str, int] = defaultdict(int)
        self.named: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.host = 0
        self.with_ip: list[tuple[int, Endpoint]] = []  # classes of bare pods with a known IP (for ipBlocks)
        for i, c in enumerate(model.classes):
            bit = 1 << i
            if c.host_network:
                self.host |= bit
                continue
            self.all |= bit
            if c.ip is not None:
                self.with_ip.append((bit, c))
            self.by_ns[c.namespace] |= bit
            for k, v in c.labels.items():
                self.by_kv[(k, v)] |= bit
                self.by_key[k] |= bit
            for name, proto, number in c.named_ports:
                self.named[(name, proto)][number] |= bit
        self._ns_sel: dict[Selector, int] = {}
        self._ip_bits: dict[IPSet, int] = {}

    def select(self, selector: Selector, candidates: int) -> int:
        """Classes among `candidates` whose labels the selector matches (exact metav1 semantics)."""
        if selector.matches_nothing:
            return 0
        out = candidates
        for req in selector.requirements:
            if req.operator in ("In", "NotIn"):
                hit = 0
                for v in req.values:
                    hit |= self.by_kv.get((req.key, v), 0)
                out = out & hit if req.operator == "In" else out & ~hit
            elif req.operator == "Exists":
                out &= self.by_key.get(req.key, 0)
            else:
                out &= ~self.by_key.get(req.key, 0)
            if not out:
                break
        return out

    def in_namespaces(self, selector: Selector) -> int:
        found = self._ns_sel.get(selector)
        if found is None:
            found = 0
            for ns, bits in self.by_ns.items():
                if selector.matches(self.model.ns_labels(ns)):
                    found |= bits
            self._ns_sel[selector] = found
        return found

    def in_block(self, block: IPSet) -> int:
        """Classes of pods whose IP the ipBlock holds (a class's IPs all fall in the same ipBlocks)."""
        found = self._ip_bits.get(block)
        if found is None:
            found = 0
            for bit, c in self.with_ip:
                if c.in_block(block):
                    found |= bit
            self._ip_bits[block] = found
        return found

    def peer(self, policy: Policy, peer: Peer) -> int:
        if peer.ip is not None:
            return self.in_block(peer.ip)
        if peer.pod_selector is None:
            return 0
        if peer.namespace_selector is None:
            candidates = self.by_ns.get(policy.namespace, 0)
        else:
            candidates = self.in_namespaces(peer.namespace_selector)
        return self.select(peer.pod_selector, candidates)

    def rule_peers(self, policy: Policy, peers: tuple[Peer, ...] | None) -> int:
        if peers is None:
            return self.all
        out = 0
        for p in peers:
            out |= self.peer(policy, p)
        return out

    def resolve(self, ports: tuple[PortRef, ...], dests: int) -> Pieces:
        """A rule's ports as concrete pieces over the destinations (named ports resolved per class)."""
        if not dests:
            return []
        if not ports:
            return [(ALL_PORTS, dests)]
        numeric = NO_PORTS
        pieces: Pieces = []
        for ref in ports:
            if ref.name is None:
                numeric = numeric.union(PortSet.single(ref.protocol, ref.lo, ref.hi))  # type: ignore[arg-type]
                continue
            for number, bits in self.named.get((ref.name, ref.protocol), {}).items():
                hit = dests & bits
                if hit:
                    pieces.append((PortSet.single(ref.protocol, number), hit))
        if numeric:
            pieces.append((numeric, dests))
        return pieces


def refine(pieces: Pieces, universe: int) -> list[tuple[int, PortSet]]:
    """Partition `universe` by which pieces cover it: [(bitset, union of their ports)], empty ports dropped."""
    merged: dict[PortSet, int] = defaultdict(int)
    for ports, bits in pieces:
        merged[ports] |= bits
    regions = [(universe, NO_PORTS)]
    for ports, bits in merged.items():
        nxt = []
        for rbits, rports in regions:
            inside = rbits & bits
            if inside:
                nxt.append((inside, rports.union(ports)))
                outside = rbits & ~bits
                if outside:
                    nxt.append((outside, rports))
            else:
                nxt.append((rbits, rports))
        regions = nxt
    return [(b, p) for b, p in regions if p]


def combine(a: list[tuple[int, PortSet]], b: list[tuple[int, PortSet]]) -> dict[PortSet, int]:
    """Per destination, the intersection of its ports in `a` and in `b`, grouped by the result."""
    row: dict[PortSet, int] = defaultdict(int)
    for abits, aports in a:
        for bbits, bports in b:
            both = abits & bbits
            if both:
                ports = aports.intersection(bports)
                if ports:
                    row[ports] |= both
    return dict(row)


@dataclass(frozen=True, slots=True)
class Cell:
    status: str  # allowed, denied, host-network, not-modelled
    ports: PortSet
    note: str = ""

    @property
    def symbol(self) -> str:
        return {"allowed": ".", "denied": "X", "host-network": "H", "not-modelled": "?"}[self.status]


class Matrix:
    """Reachability between the model's endpoints (and the outside world), computed per class."""

    def __init__(self, model: Model, index: ClassIndex, rows: dict[int, dict[PortSet, int]],
                 endpoints: list[int]) -> None:
        self.model = model
        self.index = index
        self.rows = rows  # source class -> {ports: destination classes}
        self.endpoints = endpoints  # endpoint indexes shown (namespace filter applied)
        self._row_maps: dict[int, dict[int, PortSet]] = {}

    @classmethod
    def build(cls, model: Model, namespaces: list[str] | None = None) -> Matrix:
        index = ClassIndex(model)
        wanted = set(namespaces) if namespaces else None
        endpoints = [i for i, e in enumerate(model.endpoints) if wanted is None or e.namespace in wanted]
        sources = sorted({model.class_of[i] for i in endpoints} - set(bits_of(index.host)))
        return cls(model, index, compute_rows(model, index, sources), endpoints)

    def ports(self, src_class: int, dst_class: int) -> PortSet:
        """Allowed ports between two pod-network classes."""
        row_map = self._row_maps.get(src_class)
        if row_map is None:
            row_map = {}
            for ports, bits in self.rows.get(src_class, {}).items():
                for d in bits_of(bits):
                    row_map[d] = ports
            self._row_maps[src_class] = row_map
        return row_map.get(dst_class, NO_PORTS)

    def cell(self, src: int, dst: int) -> Cell:
        """The verdict for endpoint indexes src -> dst."""
        s, d = self.model.endpoints[src], self.model.endpoints[dst]
        if s.host_network or d.host_network:
            who = s if s.host_network else d
            return Cell("host-network", NO_PORTS, f"{who.id} uses hostNetwork: NetworkPolicy does not apply")
        ports = self.ports(self.model.class_of[src], self.model.class_of[dst])
        unmodelled = self.model.unmodelled_for(s.namespace) + self.model.unmodelled_for(d.namespace)
        if unmodelled:
            return Cell("not-modelled", ports, "not modelled: " + ", ".join(sorted(set(unmodelled))))
        return Cell("allowed" if ports else "denied", ports)

    def external(self, endpoint: int, direction: str) -> tuple[Cell, list[tuple[IPSet, PortSet]]]:
        """Egress to / ingress from the outside world: the cell and its exact (addresses, ports) pieces."""
        ep = self.model.endpoints[endpoint]
        if ep.host_network:
            return Cell("host-network", NO_PORTS, f"{ep.id} uses hostNetwork: NetworkPolicy does not apply"), []
        pieces = external_pieces(external_side(self.model, ep, ALL_EXTERNAL, direction))
        ports = NO_PORTS
        for _, p in pieces:
            ports = ports.union(p)
        unmodelled = self.model.unmodelled_for(ep.namespace)
        if unmodelled:
            return Cell("not-modelled", ports, "not modelled: " + ", ".join(unmodelled)), pieces
        return Cell("allowed" if ports else "denied", ports), pieces

    def allowed_class_pairs(self) -> int:
        """How many (source class, destination class) pairs allow at least one port."""
        return sum(bin(bits).count("1") for row in self.rows.values() for bits in row.values())


def compute_rows(model: Model, index: ClassIndex, sources: list[int]) -> dict[int, dict[PortSet, int]]:
    """The matrix rows of the given source classes."""
    isolated_in = 0
    egress_of: dict[int, list[Policy]] = defaultdict(list)
    contributions: list[tuple[tuple[PortRef, ...], int]] = []  # (ports, destination classes)
    universal: list[int] = []
    by_source: dict[int, list[int]] = defaultdict(list)
    for policy in model.policies:
        subjects = index.select(policy.pod_selector, index.by_ns.get(policy.namespace, 0))
        if not subjects:
            continue
        if policy.affects_ingress:
            isolated_in |= subjects
            for rule in policy.ingress:
                peers = index.rule_peers(policy, rule.peers)
                if not peers:
                    continue
                k = len(contributions)
                contributions.append((rule.ports, subjects))
                if peers == index.all:
                    universal.append(k)
                else:
                    for s in bits_of(peers):
                        by_source[s].append(k)
        if policy.affects_egress:
            for s in bits_of(subjects):
                egress_of[s].append(policy)
    open_in = index.all & ~isolated_in
    admin = AdminTiers(model, index, isolated_in) if model.admin else None
    egress_cache: dict[tuple[int, ...], list[tuple[int, PortSet]]] = {}
    ingress_cache: dict[tuple[int, ...], list[tuple[int, PortSet]]] = {}
    rows_cache: dict[tuple, dict[PortSet, int]] = {}
    rows: dict[int, dict[PortSet, int]] = {}
    for s in sources:
        pols = egress_of.get(s, [])
        ekey = tuple(id(p) for p in pols)
        ikey = tuple(by_source.get(s, ()))
        akey = admin.keys(s) if admin else ()
        row = rows_cache.get((ekey, ikey, akey))
        if row is None:
            e_regions = egress_cache.get(ekey)
            if e_regions is None:
                e_regions = egress_cache[ekey] = _egress_regions(index, pols)
            i_regions = ingress_cache.get(ikey)
            if i_regions is None:
                i_pieces: Pieces = [(ALL_PORTS, open_in)] if open_in else []
                for k in (*universal, *ikey):
                    ports, dests = contributions[k]
                    i_pieces.extend(index.resolve(ports, dests))
                i_regions = ingress_cache[ikey] = refine(i_pieces, index.all)
            if admin:
                e_regions, i_regions = admin.apply(akey, e_regions, i_regions, bool(pols))
            row = rows_cache[(ekey, ikey, akey)] = combine(e_regions, i_regions)
        rows[s] = row
    return rows


class AdminTiers:
    """The ANP/BANP tiers over classes: each admin policy's subject and each rule's peers resolved once as
    bitsets, so a row is refined by the rules that apply to its source, not evaluated pair by pair."""

    def __init__(self, model: Model, index: ClassIndex, isolated_in: int) -> None:
        self.model = model
        self.index = index
        self.isolated_in = isolated_in
        # (policy, rule, subjects, peers), in evaluation order, per direction
        self.rules = {d: self._compile(d) for d in ("egress", "ingress")}
        self._regions: dict[tuple[str, tuple[int, ...]], list[tuple[int, Verdict]]] = {}

    def _scope(self, scope: Scope) -> int:
        return self.index.select(scope[1], self.index.in_namespaces(scope[0]))

    def _compile(self, direction: str) -> list[tuple[AdminPolicy, AdminRule, int, int]]:
        out = []
        for policy in self.model.admin:
            subjects = self._scope(policy.subject)
            for rule in getattr(policy, direction) if subjects else ():
                peers = 0
                for scope in rule.peers:
                    peers |= self._scope(scope)
                if peers:
                    out.append((policy, rule, subjects, peers))
        return out

    def keys(self, s: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The admin rules that can apply to source class s: egress ones with s as subject, ingress ones with
        s as peer."""
        return (tuple(k for k, (_, _, subjects, _) in enumerate(self.rules["egress"]) if subjects >> s & 1),
                tuple(k for k, (_, _, _, peers) in enumerate(self.rules["ingress"]) if peers >> s & 1))

    def apply(self, key: tuple[tuple[int, ...], tuple[int, ...]], e_regions: list[tuple[int, PortSet]],
              i_regions: list[tuple[int, PortSet]], egress_isolated: bool) -> tuple[list, list]:
        """The NetworkPolicy egress and ingress regions of a row with the admin tiers around them."""
        return (_around(self.regions("egress", key[0]), e_regions, self.index.all if egress_isolated else 0),
                _around(self.regions("ingress", key[1]), i_regions, self.isolated_in))

    def regions(self, direction: str, ks: tuple[int, ...]) -> list[tuple[int, Verdict]]:
        """Partition the destinations by which of the rules `ks` cover them (the other end's classes: peers
        for egress, subjects for ingress), each part with its admin verdict."""
        found = self._regions.get((direction, ks))
        if found is None:
            rules = self.rules[direction]
            parts: list[tuple[int, tuple[int, ...]]] = [(self.index.all, ())]
            for k in ks:
                covered = rules[k][3] if direction == "egress" else rules[k][2]
                parts = [(b, has) for bits, hit in parts
                         for b, has in ((bits & covered, (*hit, k)), (bits & ~covered, hit)) if b]
            found = self._regions[(direction, ks)] = [
                piece for bits, hit in parts for piece in self._verdicts(bits, [rules[k][:2] for k in hit])]
        return found

    def _verdicts(self, bits: int, rules: list[tuple[AdminPolicy, AdminRule]]) -> list[tuple[int, Verdict]]:
        """Named ports resolve on each destination: such rules are evaluated once per distinct set of
        container ports among the destinations, the others once for all of them."""
        classes = self.model.classes
        groups: dict[frozenset | None, int] = defaultdict(int)
        if any(ref.name is not None for _, rule in rules for ref in rule.ports):
            for d in bits_of(bits):
                groups[classes[d].named_ports] |= 1 << d
        else:
            groups[None] = bits
        out = []
        for group in groups.values():
            dst = classes[(group & -group).bit_length() - 1]
            out.append((group, tiers(rules, lambda ports, dst=dst: resolve_ports(ports, dst), [])))
        return out


def _around(verdicts: list[tuple[int, Verdict]], regions: list[tuple[int, PortSet]],
            isolated: int) -> list[tuple[int, PortSet]]:
    """Per destination, side_ports of its admin verdict (`verdicts` partition every destination) and its
    NetworkPolicy ports (none where no region covers it), grouped by the result. `isolated`: destinations
    for which NetworkPolicy isolates this direction's subject."""
    out: dict[PortSet, int] = defaultdict(int)
    uncovered = 0
    for bits, _ in verdicts:
        uncovered |= bits
    for bits, _ in regions:
        uncovered &= ~bits
    for vbits, verdict in verdicts:
        for rbits, ports in (*regions, (uncovered, NO_PORTS)):
            both = vbits & rbits
            for part, iso in ((both & isolated, True), (both & ~isolated, False)):
                if part:
                    result = side_ports(verdict, iso, ports)
                    if result:
                        out[result] |= part
    return [(bits, ports) for ports, bits in out.items()]


def _egress_regions(index: ClassIndex, policies: list[Policy]) -> list[tuple[int, PortSet]]:
    if not policies:
        return [(index.all, ALL_PORTS)] if index.all else []
    pieces: Pieces = []
    for policy in policies:
        for rule in policy.egress:
            pieces.extend(index.resolve(rule.ports, index.rule_peers(policy, rule.peers)))
    return refine(pieces, index.all)

