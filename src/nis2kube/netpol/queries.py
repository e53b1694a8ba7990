"""`can-reach` questions: parse `ns/workload`, `ns/pod`, `ns/*`, `external[:CIDR]`, answer with reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

from nis2kube.netpol.explain import egress_side, external_side, ingress_side
from nis2kube.netpol.ipsets import ALL_EXTERNAL, IPSet
from nis2kube.netpol.model import Endpoint, Model
from nis2kube.netpol.ports import NO_PORTS, PortRef, PortSet, parse_port_ref

HOST_NETWORK_NOTE = ("NetworkPolicy does not apply to hostNetwork pods; upstream leaves their behaviour to the "
                     "network plugin (most treat it as node traffic, matched only by ipBlock or an empty from/to)")


@dataclass
class Target:
    label: str
    endpoints: list[Endpoint] = field(default_factory=list)
    addresses: IPSet | None = None  # set for external targets


@dataclass
class Answer:
    src: str
    dst: str
    port: str | None
    verdict: str  # allowed, denied, partial, host-network, not-modelled
    ports: PortSet
    reasons: list[str]
    addresses: IPSet | None = None  # external peer: the addresses allowed

    def to_dict(self) -> dict:
        out = {"from": self.src, "to": self.dst, "port": self.port, "verdict": self.verdict,
               "ports": self.ports.to_list(), "reasons": self.reasons}
        if self.addresses is not None:
            out["addresses"] = self.addresses.cidrs()
        return out


def parse_target(model: Model, text: str) -> Target:
    """`ns/name`, `ns/Kind/name`, `ns/pod`, `ns/*`, `external` or `external:CIDR[,CIDR]`."""
    text = text.strip()
    if text == "external" or text.startswith("external:"):
        cidrs = [c for c in text.partition(":")[2].split(",") if c.strip()]
        return Target(text, addresses=IPSet.of(cidrs) if cidrs else ALL_EXTERNAL)
    ns, sep, rest = text.partition("/")
    if not sep or not ns or not rest:
        raise ValueError(f"cannot read {text!r}: use ns/workload, ns/pod, ns/* or external[:CIDR]")
    if rest == "*":
        found = [e for e in model.endpoints if e.namespace == ns]
        if not found:
            raise ValueError(f"no workloads in namespace {ns!r}")
        return Target(text, found)
    idx = model.find(ns, rest)
    if len(idx) > 1:
        kinds = ", ".join(f"{ns}/{model.endpoints[i].kind}/{rest}" for i in idx)
        raise ValueError(f"{text!r} is ambiguous; say which: {kinds}")
    if idx:
        return Target(text, [model.endpoints[idx[0]]])
    pod = model.pods.get((ns, rest))
    if pod is not None:
        return Target(text, [pod])
    raise ValueError(f"no workload or pod {text!r} in the input")


def can_reach(model: Model, src: str | Endpoint, dst: str | Endpoint, port: str | int | None = None,
              protocol: str = "TCP") -> Answer:
    """One answer for one source and one destination (see `answers` for `ns/*`)."""
    found = answers(model, _target(model, src), _target(model, dst), _port(port, protocol))
    if len(found) != 1:
        raise ValueError("can_reach needs one source and one destination; use answers() for ns/*")
    return found[0]


def _target(model: Model, value: str | Endpoint) -> Target:
    return Target(value.id, [value]) if isinstance(value, Endpoint) else parse_target(model, value)


def _port(port: str | int | None, protocol: str) -> PortRef | None:
    if port is None:
        return None
    text = str(port)
    return parse_port_ref(text if "/" in text else f"{text}/{protocol}")


def answers(model: Model, src: Target, dst: Target, port: PortRef | None) -> list[Answer]:
    if src.addresses is not None and dst.addresses is not None:
        raise ValueError("at least one side must be a workload or pod: external to external is not the cluster's")
    out = []
    if src.addresses is not None:
        for d in dst.endpoints:
            out.append(_external_answer(model, d, src.addresses, "ingress", src.label, port))
    elif dst.addresses is not None:
        for s in src.endpoints:
            out.append(_external_answer(model, s, dst.addresses, "egress", dst.label, port))
    else:
        wildcard = len(src.endpoints) > 1 or len(dst.endpoints) > 1
        for s in src.endpoints:
            for d in dst.endpoints:
                if not (wildcard and s is d):  # ns/* to ns/*: skip each workload to itself
                    out.append(_pair_answer(model, s, d, port))
    return out


def _wanted(port: PortRef | None, dst: Endpoint | None) -> tuple[PortSet | None, str | None]:
    """The asked port as a set on the destination, or the reason it does not exist there."""
    if port is None:
        return None, None
    if port.name is None:
        return PortSet.single(port.protocol, port.lo, port.hi), None  # type: ignore[arg-type]
    number = dst.resolve_named(port.name, port.protocol) if dst is not None else None
    if number is None:
        who = dst.id if dst is not None else "an external address"
        return NO_PORTS, f"{who} defines no container port named {port.name!r} on {port.protocol}"
    return PortSet.single(port.protocol, number), None


def _verdict(allowed: PortSet, wanted: PortSet | None) -> tuple[str, PortSet]:
    if wanted is None:
        return ("allowed" if allowed else "denied"), allowed
    got = allowed.intersection(wanted)
    if not got:
        return "denied", got
    return ("allowed" if got == wanted else "partial"), got


def _pair_answer(model: Model, s: Endpoint, d: Endpoint, port: PortRef | None) -> Answer:
    asked = port.describe() if port else None
    e, i = egress_side(model, s, d), ingress_side(model, s, d)
    reasons = e.reasons(s.id) + i.reasons(d.id)
    if s.host_network or d.host_network:
        who = s.id if s.host_network else d.id
        return Answer(s.id, d.id, asked, "host-network", NO_PORTS, [f"{who}: {HOST_NETWORK_NOTE}"])
    wanted, missing = _wanted(port, d)
    if missing:
        return Answer(s.id, d.id, asked, "denied", NO_PORTS, [missing])
    verdict, ports = _verdict(e.ports.intersection(i.ports), wanted)
    unmodelled = sorted(set(model.unmodelled_for(s.namespace) + model.unmodelled_for(d.namespace)))
    if unmodelled:
        note = f"not modelled: {', '.join(unmodelled)} may change this; NetworkPolicy v1 alone says {verdict}"
        reasons = [note, *reasons]
        verdict = "not-modelled"
    return Answer(s.id, d.id, asked, verdict, ports, reasons)


def _external_answer(model: Model, ep: Endpoint, addresses: IPSet, direction: str, label: str,
                     port: PortRef | None) -> Answer:
    src, dst = (label, ep.id) if direction == "ingress" else (ep.id, label)
    asked = port.describe() if port else None
    if ep.host_network:
        return Answer(src, dst, asked, "host-network", NO_PORTS, [f"{ep.id}: {HOST_NETWORK_NOTE}"])
    side = external_side(model, ep, addresses, direction)
    reasons = side.reasons(ep.id)
    wanted, missing = _wanted(port, ep if direction == "ingress" else None)
    if missing:
        return Answer(src, dst, asked, "denied", NO_PORTS, [missing], IPSet())
    covered, ports = IPSet(), NO_PORTS
    for m in side.matches:
        hit = m.ports if wanted is None else m.ports.intersection(wanted)
        if hit and m.addresses is not None:
            covered, ports = covered.union(m.addresses), ports.union(hit)
    if not covered:
        verdict = "denied"
    elif covered == addresses and (wanted is None or ports == wanted):
        verdict = "allowed"
    else:
        verdict = "partial"
    if verdict == "partial":
        reasons.append(f"allowed only for {covered.describe()} on {ports.describe()}")
    unmodelled = model.unmodelled_for(ep.namespace)
    if unmodelled:
        reasons.insert(0, f"not modelled: {', '.join(unmodelled)} may change this; NetworkPolicy v1 alone says "
                          f"{verdict}")
        verdict = "not-modelled"
    return Answer(src, dst, asked, verdict, ports, reasons, covered)
