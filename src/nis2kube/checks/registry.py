"""How a check is declared and what it is handed.

A check is a plain generator function registered with its metadata by `@check`. It receives a
`CheckContext` (the Inventory, the config, extra evidence inputs, and helpers that stamp findings with
the check's metadata) and yields findings: failures, passes (passes are audit evidence too) and
not-assessed verdicts with a reason. It never prints and never mutates the inventory.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nis2kube.config import Config
from nis2kube.findings import NO_EVIDENCE, Finding, ResourceRef, Severity, Status
from nis2kube.inventory import Inventory
from nis2kube.inventory.workloads import Workload

CheckFunc = Callable[["CheckContext"], Iterator[Finding]]
T = TypeVar("T")


class InputError(ValueError):
    """An evidence input given beside the objects (--audit-policy, --trivy-report, ...) cannot be used.

    The engine turns it into a not-assessed verdict carrying this message, for every check that needed it."""


def read_input_text(path: str, option: str, limit: int, what: str) -> str:
    """An evidence file's text, read as hostile input: at most `limit` bytes of UTF-8 (a BOM dropped). The
    InputError names the option, the file and what it was expected to be."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
        raise InputError(f"{option} {path}: larger than {size}; not {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{option} {path}: not UTF-8 text") from None


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    severity: Severity
    measures: tuple[str, ...]
    remediation: str
    func: CheckFunc
    description: str = ""

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]


_REGISTRY: dict[str, CheckSpec] = {}


def check(
    *, id: str, title: str, severity: Severity, measures: tuple[str, ...], remediation: str, description: str = ""
) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check. Ids are stable and never reused."""

    def register(func: CheckFunc) -> CheckFunc:
        if id in _REGISTRY and _REGISTRY[id].func is not func:
            raise ValueError(f"check id {id!r} registered twice")
        if not measures:
            raise ValueError(f"check {id!r} names no NIS2 measure")
        doc = description or inspect.cleandoc(func.__doc__ or "")
        _REGISTRY[id] = CheckSpec(id, title, severity, tuple(measures), remediation, func, doc)
        return func

    return register


def all_checks() -> dict[str, CheckSpec]:
    """Every check of every family module under nis2kube.checks, sorted by id."""
    import nis2kube.checks as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "registry" and not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(_REGISTRY.items()))


@dataclass
class ScanContext:
    """What every check may read: the inventory, the config, and evidence given beside the objects."""

    inv: Inventory
    config: Config = field(default_factory=Config)
    # Evidence given beside the objects, as the CLI received it: option name -> path or list of paths
    # (e.g. "audit_policy": "policy.yaml", "trivy_report": [...]). Families parse them through input().
    inputs: dict[str, Any] = field(default_factory=dict)
    _parsed: dict[str, Any] = field(default_factory=dict, repr=False)
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)
    system_namespaces: frozenset[str] = field(init=False, repr=False)  # the config's, as a set

    def __post_init__(self) -> None:
        self.system_namespaces = frozenset(self.config.system_namespaces)

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """A view derived from the objects AND the config, built once per scan and shared by the checks
        (Inventory.cached serves views of the objects alone)."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def input(self, key: str, parse: Callable[[Any], T]) -> T | None:
        """The evidence input `key` parsed once by `parse` (shared by all checks); None when not given.

        `parse` receives the raw value and raises InputError naming the file and what is wrong."""
        raw = self.inputs.get(key)
        if raw in (None, [], ()):
            return None
        if key not in self._parsed:
            try:
                self._parsed[key] = (parse(raw), None)
            except InputError as exc:
                self._parsed[key] = (None, exc)
        value, error = self._parsed[key]
        if error is not None:
            raise error
        return value

    def is_system(self, namespace: str | None) -> bool:
        return namespace is not None and namespace in self.system_namespaces


_PASS, _FAIL, _NOT_ASSESSED = Status.PASS, Status.FAIL, Status.NOT_ASSESSED


class CheckContext:
    """A ScanContext bound to one check: its helpers stamp findings with the check's metadata."""

    def __init__(self, scan: ScanContext, spec: CheckSpec) -> None:
        self.scan = scan
        self.spec = spec
        self.inv = scan.inv
        self.config = scan.config
        self.inputs = scan.inputs
        self.input = scan.input
        self.system_namespaces = scan.system_namespaces
        self._stamp = (spec.id, spec.severity, spec.measures, spec.remediation)

    def finding(
        self,
        status: Status,
        subject: dict | ResourceRef | Workload | None,
        message: str,
        *,
        container: str | None = None,
        severity: Severity | None = None,
        evidence: dict | None = None,
        system: bool | None = None,
    ) -> Finding:
        """`system` overrides the namespace rule (e.g. a binding whose subjects are all control-plane identities)."""
        return self._make(status, subject, message, container, severity, evidence, system)

    def _make(self, status: Status, subject: dict | ResourceRef | Workload | None, message: str,
              container: str | None, severity: Severity | None, evidence: dict | None, system: bool | None) -> Finding:
        # Positional all the way down: this runs once per verdict, hundreds of thousands of times in a big scan.
        kind = type(subject)
        ref = subject.ref if kind is Workload else subject if subject is None or kind is ResourceRef else \
            self.inv.ref(subject)
        if system is None:
            if ref is None:
                system = False
            else:  # a Namespace object is a system finding when it is itself a system namespace
                ns = ref.namespace or (ref.name if ref.kind == "Namespace" else None)
                system = ns is not None and ns in self.system_namespaces
        check_id, default_severity, measures, remediation = self._stamp
        return Finding(check_id, status, severity or default_severity, message, ref, container, measures,
                       remediation, evidence or NO_EVIDENCE, None, system)

    def fail(self, subject, message: str, *, container: str | None = None, severity: Severity | None = None,
             evidence: dict | None = None, system: bool | None = None) -> Finding:
        return self._make(_FAIL, subject, message, container, severity, evidence, system)

    def passed(self, subject, message: str, *, container: str | None = None, severity: Severity | None = None,
               evidence: dict | None = None, system: bool | None = None) -> Finding:
        if type(subject) is Workload and system is None:  # most verdicts of a scan: _make without the dispatch
            ref = subject.ref
            check_id, default_severity, measures, remediation = self._stamp
            return Finding(check_id, _PASS, severity or default_severity, message, ref, container, measures,
                           remediation, evidence or NO_EVIDENCE, None, ref.namespace in self.system_namespaces)
        return self._make(_PASS, subject, message, container, severity, evidence, system)

    def not_assessed(self, subject, reason: str, *, container: str | None = None, severity: Severity | None = None,
                     evidence: dict | None = None, system: bool | None = None) -> Finding:
        return self._make(_NOT_ASSESSED, subject, reason, container, severity, evidence, system)

    def unlisted(self, *kinds: tuple[str, str]) -> str | None:
        """Live scans: a kind that could not be listed makes its absence no evidence; say which and why."""
        for kind, group in kinds:
            if reason := self.inv.unlisted_reason(kind, group):
                return f"{kind} objects could not be listed ({reason})"
        return None
