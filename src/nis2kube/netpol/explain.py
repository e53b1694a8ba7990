"""Direct, rule-by-rule evaluation of one connection, keeping every reason.

This is the reference semantics written as plainly as possible: `can-reach --explain` shows its reasons,
and the grouped engine is tested (hypothesis) and benchmarked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nis2kube.netpol.admin import AdminPolicy, AdminRule, in_scope, side_ports, tiers
from nis2kube.netpol.ipsets import IPSet
from nis2kube.netpol.model import Endpoint, Model, Peer, Policy, Rule, resolve_ports
from nis2kube.netpol.ports import ALL_PORTS, NO_PORTS, PortSet

# External addresses have no container ports: a named port in a rule matches nothing towards them.
_NO_NAMED = Endpoint("", "", "", {}, frozenset())


@dataclass(frozen=True, slots=True)
class RuleMatch:
    policy: str
    direction: str  # ingress / egress
    rule: int
    ports: PortSet
    addresses: IPSet | None = None  # for external peers: the addresses this rule admits

    def describe(self) -> str:
        where = f" for {self.addresses.describe()}" if self.addresses is not None else ""
        return f"{self.policy} {self.direction}[{self.rule}] allows {self.ports.describe()}{where}"


@dataclass
class Side:
    """One direction of a connection: egress from the source, or ingress into the destination."""

    direction: str
    isolated_by: list[str] = field(default_factory=list)  # policies selecting the pod for this direction
    matches: list[RuleMatch] = field(default_factory=list)
    ports: PortSet = ALL_PORTS
    admin: list[str] = field(default_factory=list)  # what admin (ANP/BANP) rules decided

    @property
    def isolated(self) -> bool:
        return bool(self.isolated_by)

    def reasons(self, who: str) -> list[str]:
        admin = [f"{self.direction}: {line}" for line in self.admin]
        if not self.isolated:
            rest = "all else allowed" if admin else "all allowed"
            return [*admin, f"{who} is not isolated for {self.direction} (no NetworkPolicy with "
                            f"{self.direction.title()} selects it): {rest}"]
        head = f"{who} is isolated for {self.direction} by {', '.join(self.isolated_by)}"
        if not self.matches:
            return [*admin, f"{head}; no {self.direction} rule of these policies matches this peer"]
        return [*admin, head] + [m.describe() for m in self.matches]


def policies_in(model: Model, namespace: str) -> list[Policy]:
    by_ns = model._cache.get("policies-by-ns")
    if by_ns is None:
        by_ns = model._cache["policies-by-ns"] = {}
        for p in model.policies:
            by_ns.setdefault(p.namespace, []).append(p)
    return by_ns.get(namespace, [])


def selects(policy: Policy, ep: Endpoint) -> bool:
    """hostNetwork pods are outside the pod network: no policy applies to them."""
    return not ep.host_network and ep.namespace == policy.namespace and policy.pod_selector.matches(ep.labels)


def peer_matches(model: Model, policy: Policy, peer: Peer, ep: Endpoint) -> bool:
    """Does a peer match this pod? An ipBlock matches a pod whose IP is known and inside it."""
    if ep.host_network:
        return False
    if peer.ip is not None:
        return ep.in_block(peer.ip)
    if peer.pod_selector is None:
        return False
    if peer.namespace_selector is None:
        ns_ok = ep.namespace == policy.namespace
    else:
        ns_ok = peer.namespace_selector.matches(model.ns_labels(ep.namespace))
    return ns_ok and peer.pod_selector.matches(ep.labels)


def _rule_admits(model: Model, policy: Policy, rule: Rule, peer: Endpoint) -> bool:
    return rule.peers is None or any(peer_matches(model, policy, p, peer) for p in rule.peers)


def egress_side(model: Model, src: Endpoint, dst: Endpoint) -> Side:
    return _side(model, "egress", src, dst)


def ingress_side(model: Model, src: Endpoint, dst: Endpoint) -> Side:
    return _side(model, "ingress", src, dst)


def _side(model: Model, direction: str, src: Endpoint, dst: Endpoint) -> Side:
    """One direction of a connection: the policies isolating its own end, and the rules admitting the other end.
    Ports are always the destination's (named ports resolve on the pod that listens)."""
    egress = direction == "egress"
    end, peer = (src, dst) if egress else (dst, src)
    side = Side(direction)
    pols = [p for p in policies_in(model, end.namespace)
            if (p.affects_egress if egress else p.affects_ingress) and selects(p, end)]  # fmt: skip
    if pols:
        side.isolated_by = [p.id for p in pols]
        side.ports = NO_PORTS
    for p in pols:
        for rule in p.egress if egress else p.ingress:
            if _rule_admits(model, p, rule, peer):
                ports = resolve_ports(rule.ports, dst)
                if ports:
                    side.matches.append(RuleMatch(p.id, direction, rule.index, ports))
                    side.ports = side.ports.union(ports)
    if model.admin and not (end.host_network or peer.host_network):
        _admin_tiers(model, side, end, peer, dst)
    return side


def _admin_tiers(model: Model, side: Side, end: Endpoint, peer: Endpoint, dst: Endpoint) -> None:
    """Put the NetworkPolicy verdict of `side` between the ANP tier (before) and the BANP tier (after it,
    only when no NetworkPolicy isolates `end`)."""
    rules = _admin_rules(model, side.direction, end, peer)
    verdict = tiers(rules, lambda ports: resolve_ports(ports, dst), side.admin, baseline=not side.isolated)
    side.ports = side_ports(verdict, side.isolated, side.ports)


def _admin_rules(model: Model, direction: str, end: Endpoint, peer: Endpoint) -> list[tuple[AdminPolicy, AdminRule]]:
    """The admin rules whose subject is `end` and whose peers include `peer`, in evaluation order."""
    end_ns, peer_ns = model.ns_labels(end.namespace), model.ns_labels(peer.namespace)
    return [(p, r) for p in model.admin if in_scope(p.subject, end_ns, end.labels)
            for r in getattr(p, direction) if any(in_scope(s, peer_ns, peer.labels) for s in r.peers)]


def pair_ports(model: Model, src: Endpoint, dst: Endpoint) -> PortSet:
    """The ports on which src may connect to dst (both pod-network endpoints)."""
    return egress_side(model, src, dst).ports.intersection(ingress_side(model, src, dst).ports)


def external_side(model: Model, ep: Endpoint, addresses: IPSet, direction: str) -> Side:
    """Egress from ep to external addresses, or ingress into ep from them (named ports match nothing)."""
    side = Side(direction)
    attr = "affects_egress" if direction == "egress" else "affects_ingress"
    pols = [p for p in policies_in(model, ep.namespace) if getattr(p, attr) and selects(p, ep)]
    if not pols:
        side.matches.append(RuleMatch("(not isolated)", direction, -1, ALL_PORTS, addresses))
        return side
    side.isolated_by = [p.id for p in pols]
    side.ports = NO_PORTS
    for p in pols:
        for rule in getattr(p, direction):
            covered = rule.external.intersection(addresses)
            if not covered:
                continue
            ports = resolve_ports(rule.ports, ep if direction == "ingress" else _NO_NAMED)
            if ports:
                side.matches.append(RuleMatch(p.id, direction, rule.index, ports, covered))
                side.ports = side.ports.union(ports)
    return side


def external_pieces(side: Side) -> list[tuple[IPSet, PortSet]]:
    """(addresses, ports) pieces an external side allows; their union is exact."""
    return [(m.addresses, m.ports) for m in side.matches if m.addresses is not None]
