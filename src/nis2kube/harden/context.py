"""What every generator is handed: the cluster's inventory, the team's config, and the harden options."""

from __future__ import annotations

from dataclasses import dataclass, field

from nis2kube.config import Config
from nis2kube.engine import Result
from nis2kube.inventory import Inventory

AREAS = ("netpol", "admission", "audit", "runtime", "alerting")
LABELS = {"app.kubernetes.io/managed-by": "nis2kube", "nis2kube.io/harden": "true"}


class HardenError(ValueError):
    """An option or input of `harden` cannot be used; the message says which and why."""


@dataclass
class HardenOptions:
    only: tuple[str, ...] = AREAS
    engine: str = "kyverno"  # admission engine: kyverno or vap
    kube_version: str | None = None  # None = newest schemas known
    cosign_key: str | None = None  # PEM text of the cosign public key (not the path)
    keyless_issuer: str | None = None
    keyless_subject: str | None = None
    flows: str | None = None  # path of flows.yaml
    serve_url: str = "http://nis2kube.nis2kube.svc:8080"  # where `nis2kube serve` listens in-cluster
    extra_cidrs: tuple[str, ...] = ()  # more allowed outbound destinations for the Falco rule


@dataclass
class HardenContext:
    inv: Inventory
    config: Config = field(default_factory=Config)
    options: HardenOptions = field(default_factory=HardenOptions)
    before: Result | None = None  # the scan of the input, run once; generators read failures from it

    def failing(self, *check_ids: str) -> list:
        """Application (non-system) failures of these checks in the scan of the input."""
        if self.before is None:
            return []
        wanted = set(check_ids)
        return [f for f in self.before.findings if f.check in wanted and f.status.value == "fail" and not f.system]

    def is_system(self, namespace: str | None) -> bool:
        return namespace is not None and namespace in self.config.system_namespaces


def labels(**extra: str) -> dict[str, str]:
    """The labels every generated object carries, so `kubectl get -l nis2kube.io/harden` finds them all."""
    return {**LABELS, **extra}


def meta(name: str, namespace: str | None = None, annotations: dict[str, str] | None = None) -> dict:
    out: dict = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out["labels"] = labels()
    if annotations:
        out["annotations"] = dict(sorted(annotations.items()))
    return out
