"""The result vocabulary shared by checks, the engine, renderers and stores: small dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WAIVED = "waived"
    NOT_ASSESSED = "not-assessed"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r} (choose from {choices})") from None


_RANK = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class Location:
    """Where an object was read: file, 0-based document index, 1-based line (None when unknown)."""

    file: str
    document: int = 0
    line: int | None = None
    helm_source: str | None = None  # the `# Source:` template path in Helm-rendered output
    item: int | None = None  # 1-based position inside a `List` document


@dataclass(frozen=True, slots=True)
class ResourceRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    uid: str | None = None
    location: Location | None = None

    @classmethod
    def of(cls, obj: dict, location: Location | None = None) -> ResourceRef:
        meta = obj.get("metadata") or {}
        return cls(
            api_version=str(obj.get("apiVersion", "")),
            kind=str(obj.get("kind", "")),
            namespace=meta.get("namespace"),
            name=str(meta.get("name", "")),
            uid=meta.get("uid"),
            location=location,
        )

    @property
    def display(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"

    def to_dict(self) -> dict:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


@dataclass(slots=True)
class Finding:
    """One verdict of one check on one resource (or on the cluster as a whole when resource is None).

    Treated as immutable (waivers make a changed copy with dataclasses.replace), but not frozen: a scan creates
    hundreds of thousands, and a frozen dataclass's __init__ costs four times as much."""

    check: str
    status: Status
    severity: Severity
    message: str
    resource: ResourceRef | None = None
    container: str | None = None
    measures: tuple[str, ...] = ()
    remediation: str = ""
    evidence: Mapping = field(default_factory=dict)
    waiver: dict | None = None
    system: bool = False  # the resource lives in a system namespace (reported separately)


# The evidence of the many findings that carry none: one shared read-only mapping instead of an empty dict
# each (a big scan makes hundreds of thousands of them).
NO_EVIDENCE: Mapping = MappingProxyType({})
