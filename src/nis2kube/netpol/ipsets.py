"""Sets of external IP addresses (ipBlock `cidr` minus `except`), as merged integer intervals.

IPv4 and IPv6 live in one integer space (IPv4 offset below IPv6's), so one interval list holds both and a
`0.0.0.0/0` block never covers an IPv6 address, as in the API.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from nis2kube.netpol.intervals import intersect, merge, subtract

_V6_BASE = 1 << 32  # IPv6 addresses are placed above the IPv4 space


def _span(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    base = 0 if net.version == 4 else _V6_BASE
    return base + int(net.network_address), base + int(net.broadcast_address)


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR as the API accepts it (host bits set are tolerated, as older API servers did)."""
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise ValueError(f"invalid CIDR {text!r}") from None


@dataclass(frozen=True, slots=True)
class IPSet:
    spans: tuple[tuple[int, int], ...] = ()

    @staticmethod
    def of(cidrs: list[str] | tuple[str, ...], excepts: list[str] | tuple[str, ...] = ()) -> IPSet:
        out = IPSet(merge([_span(parse_cidr(c)) for c in cidrs]))
        if excepts:
            out = out.difference(IPSet(merge([_span(parse_cidr(c)) for c in excepts])))
        return out

    def __bool__(self) -> bool:
        return bool(self.spans)

    def union(self, other: IPSet) -> IPSet:
        return IPSet(merge(list(self.spans) + list(other.spans)))

    def intersection(self, other: IPSet) -> IPSet:
        return IPSet(intersect(self.spans, other.spans))

    def difference(self, other: IPSet) -> IPSet:
        return IPSet(subtract(self.spans, other.spans))

    def cidrs(self) -> list[str]:
        """The set as the fewest CIDRs."""
        out: list[str] = []
        for lo, hi in self.spans:
            for start, end, cls in _split_versions(lo, hi):
                out.extend(str(n) for n in ipaddress.summarize_address_range(cls(start), cls(end)))
        return out

    def describe(self) -> str:
        cidrs = self.cidrs()
        if len(cidrs) > 6:
            return ", ".join(cidrs[:6]) + f" and {len(cidrs) - 6} more ranges"
        return ", ".join(cidrs) or "no addresses"


def _split_versions(lo: int, hi: int) -> Iterator[tuple[int, int, type]]:
    """(start, end, address class) pieces of a span that may cross from IPv4 into IPv6."""
    if lo < _V6_BASE:
        yield lo, min(hi, _V6_BASE - 1), ipaddress.IPv4Address
    if hi >= _V6_BASE:
        yield max(lo, _V6_BASE) - _V6_BASE, hi - _V6_BASE, ipaddress.IPv6Address


ALL_EXTERNAL = IPSet.of(["0.0.0.0/0", "::/0"])
NO_ADDRESSES = IPSet()
