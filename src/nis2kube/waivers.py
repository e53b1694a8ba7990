"""Waivers: a failing finding accepted for a time, with a justification and an owner.

A waiver matches a check id (glob) and optionally a resource (kind, namespace, name; globs). It applies
until the end of its expiry day (UTC); after that it stops applying and is reported as expired, so an
accepted risk can never silently become permanent. Unused waivers are reported too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

from nis2kube.findings import Finding, Status

REQUIRED = ("check", "justification", "owner", "expires")


class WaiverError(ValueError):
    """A waiver entry is incomplete or malformed."""


@dataclass
class Waiver:
    check: str
    justification: str
    owner: str
    expires: dt.date
    kind: str = "*"
    namespace: str = "*"
    name: str = "*"
    ticket: str | None = None
    approved_by: str | None = None
    used: int = field(default=0, compare=False)

    def matches(self, finding: Finding) -> bool:
        if not fnmatchcase(finding.check, self.check):
            return False
        ref = finding.resource
        if ref is None:
            return self.kind == "*" and self.namespace == "*" and self.name == "*"
        return (
            fnmatchcase(ref.kind, self.kind)
            and fnmatchcase(ref.namespace or "", self.namespace)
            and fnmatchcase(ref.name, self.name)
        )

    def to_dict(self) -> dict:
        out = {
            "check": self.check,
            "resource": {"kind": self.kind, "namespace": self.namespace, "name": self.name},
            "justification": self.justification,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }
        if self.ticket:
            out["ticket"] = self.ticket
        if self.approved_by:
            out["approved_by"] = self.approved_by
        return out


def parse_waivers(entries: list, where: str = "waivers") -> list[Waiver]:
    out = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise WaiverError(f"{where}[{index}]: a waiver must be a mapping")
        missing = [k for k in REQUIRED if not entry.get(k)]
        if missing:
            needs = ", ".join(REQUIRED)
            raise WaiverError(f"{where}[{index}]: missing {', '.join(missing)} (every waiver needs {needs})")
        expires = entry["expires"]
        if isinstance(expires, dt.datetime):
            expires = expires.date()
        elif not isinstance(expires, dt.date):
            try:
                expires = dt.date.fromisoformat(str(expires))
            except ValueError:
                raise WaiverError(f"{where}[{index}]: expires must be a date (YYYY-MM-DD), got {expires!r}") from None
        resource = entry.get("resource") or {}
        if not isinstance(resource, dict):
            raise WaiverError(f"{where}[{index}]: resource must be a mapping of kind/namespace/name")
        out.append(
            Waiver(
                check=str(entry["check"]),
                justification=str(entry["justification"]),
                owner=str(entry["owner"]),
                expires=expires,
                kind=str(resource.get("kind", "*")),
                namespace=str(resource.get("namespace", "*")),
                name=str(resource.get("name", "*")),
                ticket=entry.get("ticket"),
                approved_by=entry.get("approved_by"),
            )
        )
    return out


def apply_waivers(findings: list[Finding], waivers: list[Waiver], today: dt.date) -> tuple[list[Finding], list[dict]]:
    """Mark matching failures as waived; return the findings and an audit of every waiver's state."""
    if not waivers:
        return findings, []
    active = [w for w in waivers if w.expires >= today]
    expired = [w for w in waivers if w.expires < today]
    out = []
    for finding in findings:
        if finding.status is Status.FAIL:
            waiver = next((w for w in active if w.matches(finding)), None)
            if waiver is not None:
                waiver.used += 1
                finding = replace(finding, status=Status.WAIVED, waiver=waiver.to_dict())
            elif any(w.matches(finding) for w in expired):
                finding = replace(finding, evidence={**finding.evidence, "expired_waiver": True})
        out.append(finding)
    audit = []
    for waiver in waivers:
        state = "expired" if waiver.expires < today else ("used" if waiver.used else "unused")
        audit.append({**waiver.to_dict(), "state": state, "findings": waiver.used})
    return out, audit
