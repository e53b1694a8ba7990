"""Port sets: which (protocol, port) pairs a rule or a matrix cell allows.

A PortSet is canonical (sorted, merged intervals per protocol), immutable and hashable, so the engine can
cache unions/intersections of the few distinct sets a cluster has and compare cells by equality.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from nis2kube.netpol.intervals import Intervals, intersect, merge, subtract

PROTOCOLS = ("TCP", "UDP", "SCTP")
MIN_PORT, MAX_PORT = 1, 65535


class PolicyError(ValueError):
    """A policy object breaks the API server's (or the CRD's) validation: it cannot exist in a cluster."""


@dataclass(frozen=True, slots=True)
class PortSet:
    """protocol -> merged port intervals; protocols with no ports are absent."""

    by_protocol: tuple[tuple[str, Intervals], ...] = ()

    @staticmethod
    def of(pairs: dict[str, list[tuple[int, int]]]) -> PortSet:
        items = tuple((p, merge(v)) for p, v in sorted(pairs.items()) if v)
        return PortSet(tuple((p, iv) for p, iv in items if iv))

    @staticmethod
    def single(protocol: str, lo: int, hi: int | None = None) -> PortSet:
        return PortSet(((protocol, ((lo, hi if hi is not None else lo),)),))

    def __bool__(self) -> bool:
        return bool(self.by_protocol)

    def intervals(self, protocol: str) -> Intervals:
        for p, iv in self.by_protocol:
            if p == protocol:
                return iv
        return ()

    def contains(self, protocol: str, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.intervals(protocol))

    def union(self, other: PortSet) -> PortSet:
        return _union(self, other)

    def intersection(self, other: PortSet) -> PortSet:
        return _intersection(self, other)

    def difference(self, other: PortSet) -> PortSet:
        return _difference(self, other)

    def is_all(self) -> bool:
        return self == ALL_PORTS

    def describe(self) -> str:
        """`all ports`, or `80/TCP, 8000-8080/TCP, 53/UDP`."""
        if self.is_all():
            return "all ports"
        if not self:
            return "no ports"
        parts = []
        for proto, iv in self.by_protocol:
            if iv == ((MIN_PORT, MAX_PORT),):
                parts.append(f"all {proto}")
                continue
            parts.extend(f"{lo}/{proto}" if lo == hi else f"{lo}-{hi}/{proto}" for lo, hi in iv)
        return ", ".join(parts)

    def to_list(self) -> list[str]:
        """JSON form: ["80/TCP", "8000-8080/TCP"] or ["all"]."""
        if self.is_all():
            return ["all"]
        return [f"{lo}/{p}" if lo == hi else f"{lo}-{hi}/{p}" for p, iv in self.by_protocol for lo, hi in iv]


@lru_cache(maxsize=65536)
def _union(a: PortSet, b: PortSet) -> PortSet:
    if not a:
        return b
    if not b or a == b:
        return a
    pairs: dict[str, list[tuple[int, int]]] = {}
    for src in (a, b):
        for p, iv in src.by_protocol:
            pairs.setdefault(p, []).extend(iv)
    return PortSet.of(pairs)


@lru_cache(maxsize=65536)
def _intersection(a: PortSet, b: PortSet) -> PortSet:
    if a == b:
        return a
    return PortSet.of({p: list(intersect(iv, b.intervals(p))) for p, iv in a.by_protocol})


@lru_cache(maxsize=65536)
def _difference(a: PortSet, b: PortSet) -> PortSet:
    return PortSet.of({p: list(subtract(iv, b.intervals(p))) for p, iv in a.by_protocol})


NO_PORTS = PortSet()
ALL_PORTS = PortSet.of({p: [(MIN_PORT, MAX_PORT)] for p in PROTOCOLS})

_PORT_SPEC = re.compile(r"^(?P<lo>\d{1,5})(?:-(?P<hi>\d{1,5}))?(?:/(?P<proto>[A-Za-z]+))?$")
PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")  # IANA_SVC_NAME, at most 15 characters


@dataclass(frozen=True, slots=True)
class PortRef:
    """A port as a user or a rule names it: a number range or a name, on a protocol."""

    protocol: str
    lo: int | None = None
    hi: int | None = None
    name: str | None = None

    def describe(self) -> str:
        if self.name is not None:
            return f"{self.name}/{self.protocol}"
        return f"{self.lo}/{self.protocol}" if self.lo == self.hi else f"{self.lo}-{self.hi}/{self.protocol}"


def parse_port_ref(text: str) -> PortRef:
    """`8080`, `8080/TCP`, `30000-32767/UDP`, `http`, `dns/UDP`; protocol defaults to TCP (as in the API)."""
    value = str(text).strip()
    m = _PORT_SPEC.match(value)
    if m:
        lo = int(m["lo"])
        hi = int(m["hi"]) if m["hi"] else lo
        proto = _protocol(m["proto"] or "TCP", value)
        if not (MIN_PORT <= lo <= hi <= MAX_PORT):
            raise ValueError(f"port {value!r} is out of range 1-65535 or the range is reversed")
        return PortRef(proto, lo, hi)
    name, _, proto = value.partition("/")
    if PORT_NAME.match(name) and not name.isdigit():
        return PortRef(_protocol(proto or "TCP", value), name=name)
    raise ValueError(f"invalid port {value!r}; use PORT/PROTO, PORT-ENDPORT/PROTO or a port name")


def checked_protocol(raw: Mapping, where: str) -> str:
    """A policy port's `protocol` (TCP when absent), as NetworkPolicy and the admin policies validate it."""
    proto = str(raw.get("protocol") or "TCP")
    if proto not in PROTOCOLS:
        raise PolicyError(f"{where}.protocol {proto!r} is not TCP, UDP or SCTP")
    return proto


def checked_range(protocol: str, lo: object, hi: object, where: str) -> PortRef:
    """A policy's numeric port or range (`port`..`endPort`, `start`..`end`): numbers in 1-65535, in order."""
    for value in (lo, hi):
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_PORT <= value <= MAX_PORT:
            raise PolicyError(f"{where}: port {value!r} is not a number between {MIN_PORT} and {MAX_PORT}")
    if lo > hi:  # type: ignore[operator]
        raise PolicyError(f"{where}: the range ends ({hi}) before it starts ({lo})")
    return PortRef(protocol, lo, hi)  # type: ignore[arg-type]


def _protocol(text: str, whole: str) -> str:
    proto = text.upper()
    if proto not in PROTOCOLS:
        raise ValueError(f"unknown protocol in {whole!r}; use TCP, UDP or SCTP")
    return proto
