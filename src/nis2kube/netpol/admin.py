"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1), pod-to-pod.

Per direction, as the API defines it (and policy-assistant evaluates it): ANPs by ascending priority, rules in
order, the first rule matching the peer and port decides: Allow and Deny are final, Pass hands the port down
to NetworkPolicy. What no ANP decided (or passed) goes to NetworkPolicy when one isolates the pod, else to
the BANP rules (first match; Allow or Deny); what none of them decides is allowed.

Peers may be written in both v1alpha1 shapes: `namespaces: <selector>` / `pods: {namespaceSelector,
podSelector}` (the released API) and `namespaces: {namespaceSelector}` / `pods: {namespaces: {...},
podSelector}` (the early one policy-assistant's examples use). An object this module cannot evaluate exactly
(nodes/networks peers, sameLabels/notSameLabels) raises `Unsupported` and is left "not modelled".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nis2kube.inventory.selectors import EVERYTHING, InvalidSelector, Selector, parse_selector
from nis2kube.netpol.ports import (
    ALL_PORTS,
    NO_PORTS,
    PORT_NAME,
    PROTOCOLS,
    PolicyError,
    PortRef,
    PortSet,
    checked_protocol,
    checked_range,
)

ANP, BANP = "AdminNetworkPolicy", "BaselineAdminNetworkPolicy"
ACTIONS = {ANP: ("Allow", "Deny", "Pass"), BANP: ("Allow", "Deny")}
MAX_PRIORITY = 1000

Scope = tuple[Selector, Selector]  # (namespace selector, pod selector)


class Unsupported(ValueError):
    """Valid, but uses a peer this engine does not evaluate."""


@dataclass(frozen=True, slots=True)
class AdminRule:
    name: str
    action: str  # Allow, Deny, Pass
    peers: tuple[Scope, ...]
    ports: tuple[PortRef, ...]  # empty: every port


@dataclass(frozen=True, slots=True)
class AdminPolicy:
    kind: str  # ANP or BANP
    name: str
    priority: int  # ANP only; lower goes first
    subject: Scope
    ingress: tuple[AdminRule, ...]
    egress: tuple[AdminRule, ...]

    @property
    def id(self) -> str:
        return f"{self.kind} {self.name}"


def compile_admin(obj: dict) -> AdminPolicy:
    kind = str(obj.get("kind"))
    name = str((obj.get("metadata") or {}).get("name", ""))
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise PolicyError("spec is missing or not a mapping")
    priority = spec.get("priority", 0) if kind == ANP else 0
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise PolicyError(f"spec.priority must be a number between 0 and {MAX_PRIORITY}")
    subject = _scope(spec.get("subject"), "spec.subject")
    ingress = _rules(kind, spec.get("ingress"), "ingress", "from")
    egress = _rules(kind, spec.get("egress"), "egress", "to")
    return AdminPolicy(kind, name, priority, subject, ingress, egress)


def selector(raw: object, where: str) -> Selector:
    """A label selector field of a NetworkPolicy or an admin policy; invalid ones are a PolicyError."""
    try:
        return parse_selector(raw)
    except InvalidSelector as exc:
        raise PolicyError(f"{where}: {exc}") from None


def _namespaces(raw: object, where: str) -> Selector:
    """A namespace selector, in the released shape (a selector) or the early one ({namespaceSelector: ...})."""
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where} must be a mapping")
    if "sameLabels" in raw or "notSameLabels" in raw:
        raise Unsupported(f"{where}: sameLabels/notSameLabels are not evaluated")
    if "namespaceSelector" in raw:
        return selector(raw["namespaceSelector"] or {}, f"{where}.namespaceSelector")
    return selector(raw, where)


def _scope(raw: object, where: str) -> Scope:
    """`namespaces` (every pod of the selected namespaces) or `pods`, exactly one."""
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where} must be a mapping")
    unsupported = sorted(set(raw) & {"nodes", "networks"})
    if unsupported:
        raise Unsupported(f"{where}: {', '.join(unsupported)} peers are not evaluated")
    if ("namespaces" in raw) == ("pods" in raw):
        raise PolicyError(f"{where} must set exactly one of namespaces or pods")
    if "namespaces" in raw:
        return _namespaces(raw["namespaces"], f"{where}.namespaces"), EVERYTHING
    pods = raw["pods"]
    if not isinstance(pods, Mapping):
        raise PolicyError(f"{where}.pods must be a mapping")
    if "namespaces" in pods:
        ns = _namespaces(pods["namespaces"], f"{where}.pods.namespaces")
    else:
        ns = selector(pods.get("namespaceSelector") or {}, f"{where}.pods.namespaceSelector")
    return ns, selector(pods.get("podSelector") or {}, f"{where}.pods.podSelector")


def _rules(kind: str, raw: object, direction: str, peer_field: str) -> tuple[AdminRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError(f"spec.{direction} must be a list")
    out = []
    for i, rule in enumerate(raw):
        where = f"spec.{direction}[{i}]"
        if not isinstance(rule, Mapping):
            raise PolicyError(f"{where} must be a mapping")
        action = rule.get("action")
        if action not in ACTIONS[kind]:
            raise PolicyError(f"{where}.action must be one of {', '.join(ACTIONS[kind])}, not {action!r}")
        peers = rule.get(peer_field)
        if not isinstance(peers, list) or not peers:
            raise PolicyError(f"{where}.{peer_field} needs at least one peer")
        scopes = tuple(_scope(p, f"{where}.{peer_field}[{j}]") for j, p in enumerate(peers))
        ports = rule.get("ports") or []
        if not isinstance(ports, list):
            raise PolicyError(f"{where}.ports must be a list")
        refs = tuple(ref for j, p in enumerate(ports) for ref in _port(p, f"{where}.ports[{j}]"))
        out.append(AdminRule(str(rule.get("name") or i), action, scopes, refs))
    return tuple(out)


def _port(raw: object, where: str) -> tuple[PortRef, ...]:
    """portNumber, namedPort or portRange; a named port matches the container port of that name on whatever
    protocol it declares, so it is kept once per protocol (a pod has one port of a given name)."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise PolicyError(f"{where} must set exactly one of portNumber, namedPort or portRange")
    (form, value), = raw.items()
    if form == "namedPort":
        if not isinstance(value, str) or not PORT_NAME.match(value):
            raise PolicyError(f"{where}.namedPort {value!r} is not a valid port name")
        return tuple(PortRef(p, name=value) for p in PROTOCOLS)
    if form not in ("portNumber", "portRange") or not isinstance(value, Mapping):
        raise PolicyError(f"{where} must set exactly one of portNumber, namedPort or portRange")
    proto = checked_protocol(value, f"{where}.{form}")
    lo, hi = (value.get("port"),) * 2 if form == "portNumber" else (value.get("start"), value.get("end"))
    ref = checked_range(proto, lo, hi, f"{where}.{form}")
    if form == "portRange" and ref.lo == ref.hi:
        raise PolicyError(f"{where}.portRange.start must be less than end")
    return (ref,)


# ---- evaluation ------------------------------------------------------------------------------------------

def in_scope(scope: Scope, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
    return scope[0].matches(namespace_labels) and scope[1].matches(pod_labels)


def first_match(rules: list[tuple[AdminPolicy, AdminRule]], ports_of: Callable[[tuple[PortRef, ...]], PortSet],
                open_ports: PortSet, reasons: list[str]) -> tuple[PortSet, PortSet, PortSet]:
    """Walk the matching rules in order: (allowed, denied, passed) ports; each port goes to its first rule."""
    allowed = denied = passed = NO_PORTS
    for policy, rule in rules:
        hit = open_ports.intersection(ports_of(rule.ports))
        if not hit:
            continue
        open_ports = open_ports.difference(hit)
        if rule.action == "Allow":
            allowed = allowed.union(hit)
        elif rule.action == "Deny":
            denied = denied.union(hit)
        else:
            passed = passed.union(hit)
        reasons.append(f"{policy.id} {rule.name!r}: {rule.action} {hit.describe()}")
        if not open_ports:
            break
    return allowed, denied, passed


def tiers(rules: list[tuple[AdminPolicy, AdminRule]], ports_of: Callable[[tuple[PortRef, ...]], PortSet],
          reasons: list[str], baseline: bool = True) -> tuple[PortSet, PortSet, PortSet]:
    """The admin verdict of one (subject, peer) pair, its ANP rules before its BANP rules: (ports an ANP
    allows, ports left to NetworkPolicy, ports of those a BANP denies). `baseline=False` skips the BANPs
    (NetworkPolicy isolates the subject, so they are not reached)."""
    anps = [(p, r) for p, r in rules if p.kind == ANP]
    allowed, denied, _ = first_match(anps, ports_of, ALL_PORTS, reasons)
    rest = ALL_PORTS.difference(allowed).difference(denied)  # undecided or passed
    base_denied = NO_PORTS
    if baseline:
        banps = [(p, r) for p, r in rules if p.kind == BANP]
        _, base_denied, _ = first_match(banps, ports_of, rest, reasons)
    return allowed, rest, base_denied


def side_ports(verdict: tuple[PortSet, PortSet, PortSet], isolated: bool, policy_ports: PortSet) -> PortSet:
    """One direction's ports: what an ANP allows, plus of the rest what NetworkPolicy allows (`policy_ports`)
    when one isolates the subject, else what no BANP denies."""
    allowed, rest, base_denied = verdict
    return allowed.union(rest.intersection(policy_ports if isolated else ALL_PORTS.difference(base_denied)))
