"""Patching without downtime (NIS2 Art. 21(2)(c) continuity, (e) maintenance; IR 2024/2690 4.2, 6.4, 6.6).

A plant cannot postpone security patches because a rollout would stop the line. These checks judge what
decides that, with the API's own defaulting and rounding: the Deployment rollout strategy, replica counts,
readiness probes, PodDisruptionBudgets (which keep node drains from taking every replica at once), and
whether the cluster's Kubernetes versions still receive upstream security fixes.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase

from nis2kube.apiserver import apiservers
from nis2kube.bundled import load_yaml
from nis2kube.checks.registry import CheckContext, InputError, check
from nis2kube.evidence_file import today
from nis2kube.findings import Finding, Severity
from nis2kube.inventory import Inventory
from nis2kube.inventory.selectors import InvalidSelector, SelectorIndex, parse_selector
from nis2kube.inventory.workloads import Workload, workloads

MEASURES = ("art21.2.c", "art21.2.e", "ir2690.6.4", "ir2690.6.6", "ir2690.4.2")
SCALED_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")
LONG_RUNNING = (*SCALED_KINDS, "DaemonSet", "Pod")
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
EOL_WARNING_DAYS = 60
PROBE_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")


# ---- shared helpers -----------------------------------------------------------------------------------


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []



def production_namespaces(ctx: CheckContext) -> set[str]:
    """resilience.production_namespaces (names or globs), or resilience.production_label (`key` or
    `key=value`); without either, every non-system namespace is treated as production."""
    section = ctx.config.section("resilience")
    names = section.get("production_namespaces")
    label = section.get("production_label")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise InputError("nis2kube.yaml resilience.production_namespaces must be a list of namespace names")
    if label is not None and not isinstance(label, str):
        raise InputError("nis2kube.yaml resilience.production_label must be `key` or `key=value`")
    out = set()
    for ns in ctx.inv.namespaces():
        if ctx.scan.is_system(ns):
            continue
        if names is None and label is None:
            out.add(ns)
            continue
        if names and any(fnmatchcase(ns, pattern) for pattern in names):
            out.add(ns)
        if label:
            key, _, value = label.partition("=")
            labels = ctx.inv.namespace_labels(ns)
            if key in labels and ("=" not in label or labels[key] == value):
                out.add(ns)
    return out


def _scope_note(ctx: CheckContext) -> str:
    section = ctx.config.section("resilience")
    if "production_namespaces" in section or "production_label" in section:
        return ""
    return " (all application namespaces count as production; set resilience.production_namespaces)"


def scaled(value: object, total: int, *, round_up: bool) -> int | None:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, "N%" of total rounded as the caller asks; any other
    string (even "2") is an error upstream, so None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return None


def _field(spec: dict, key: str, default: object) -> object:
    """A defaulted API field: absent and null both take the default (the API server fills in nil pointers)."""
    value = spec.get(key)
    return default if value is None else value


def _replicas(spec: dict) -> int:
    value = spec.get("replicas", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def replicas(w: Workload) -> int:
    """spec.replicas with the API default of 1 (a bare Pod is one replica)."""
    return _replicas(_d(w.obj.get("spec"))) if w.kind in SCALED_KINDS else 1


def _hpa_min(ctx: CheckContext) -> dict[tuple[str, str, str], int]:
    """(namespace, kind, name) -> minReplicas of the HorizontalPodAutoscaler scaling it (default 1)."""

    def build() -> dict[tuple[str, str, str], int]:
        out = {}
        for hpa in ctx.inv.objects("HorizontalPodAutoscaler", "autoscaling"):
            spec = _d(hpa.get("spec"))
            target = _d(spec.get("scaleTargetRef"))
            if isinstance(target, dict) and target.get("kind") and target.get("name"):
                minimum = spec.get("minReplicas", 1)
                key = (hpa["metadata"].get("namespace") or "", str(target["kind"]), str(target["name"]))
                out[key] = minimum if isinstance(minimum, int) else 1
        return out

    return ctx.inv.cached("resilience:hpa-min", build)


def effective_replicas(ctx: CheckContext, w: Workload) -> tuple[int, str]:
    hpa = _hpa_min(ctx).get((w.namespace, w.kind, w.name))
    if hpa is not None:
        return hpa, f"HorizontalPodAutoscaler minReplicas {hpa}"
    count = replicas(w)
    return count, f"replicas {count}"


def _production(ctx: CheckContext, kinds: tuple[str, ...]) -> Iterator[Workload]:
    prod = production_namespaces(ctx)
    for w in workloads(ctx.inv):
        if w.kind in kinds and w.namespace in prod:
            yield w


# ---- rollout strategy ---------------------------------------------------------------------------------


def rollout_budget(deployment: dict) -> tuple[str, int, int, int]:
    """(strategy type, replicas, resolved maxUnavailable, resolved maxSurge) with upstream defaulting.

    Defaults are 25%/25%; maxSurge rounds up and maxUnavailable down; when both resolve to 0 the
    controller uses maxUnavailable 1 (deployment util ResolveFenceposts), and MaxUnavailable caps it at
    the replica count (0 when scaled to zero)."""
    spec = _d(deployment.get("spec"))
    count = _replicas(spec)
    strategy = _d(spec.get("strategy"))
    kind = str(strategy.get("type") or "RollingUpdate")
    if kind != "RollingUpdate":
        return kind, count, count, 0
    rolling = _d(strategy.get("rollingUpdate"))
    surge = scaled(_field(rolling, "maxSurge", "25%"), count, round_up=True) or 0
    unavailable = scaled(_field(rolling, "maxUnavailable", "25%"), count, round_up=False) or 0
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return kind, count, max(0, min(unavailable, count)), surge


def _statefulset_rollout(sts: dict) -> tuple[str, str | None]:
    """(updateStrategy type, why a RollingUpdate leaves pods unpatched or down, or None).

    Only pods with an ordinal >= partition get the new template; maxUnavailable (default 1, rounded down,
    at least 1: getStatefulSetMaxUnavailable) at or above the replica count takes every pod down."""
    spec = _d(sts.get("spec"))
    strategy = _d(spec.get("updateStrategy"))
    kind = str(strategy.get("type") or "RollingUpdate")
    if kind != "RollingUpdate":
        return kind, None
    count = _replicas(spec)
    rolling = _d(strategy.get("rollingUpdate"))
    partition = _field(rolling, "partition", 0)
    if isinstance(partition, int) and not isinstance(partition, bool) and partition > 0 and count > 0:
        kept = min(partition, count)
        return kind, f"partition {partition}: {kept} of {count} pod(s) (ordinals below {partition}) never get " \
                     "the new template, so patches stop there"
    unavailable = scaled(_field(rolling, "maxUnavailable", 1), count, round_up=False)
    if count > 1 and unavailable is not None and max(unavailable, 1) >= count:
        return kind, f"maxUnavailable resolves to {max(unavailable, 1)} of {count} replicas: a rollout may take " \
                     "every pod down"
    return kind, None


@check(
    id="resilience.rolling-update",
    title="Production workloads roll out updates without taking capacity down",
    severity=Severity.MEDIUM,
    measures=MEASURES,
    remediation="Use strategy RollingUpdate with maxUnavailable: 0 and maxSurge: 1 (Deployments); "
    "updateStrategy RollingUpdate without partition (StatefulSets, DaemonSets).",
)
def rolling_update(ctx: CheckContext) -> Iterator[Finding]:
    """Recreate stops every pod before starting new ones; maxUnavailable >= replicas can do the same. OnDelete
    (StatefulSets, DaemonSets) and a StatefulSet partition leave pods on the old, unpatched template."""
    note = _scope_note(ctx)
    for w in _production(ctx, ("Deployment", "StatefulSet", "DaemonSet")):
        if w.kind != "Deployment":
            yield _update_strategy_verdict(ctx, w, note)
            continue
        kind, count, unavailable, surge = rollout_budget(w.obj)
        evidence = {"strategy": kind, "replicas": count, "maxUnavailable": unavailable, "maxSurge": surge}
        if kind != "RollingUpdate":
            yield ctx.fail(w, f"strategy {kind} stops all {count} pod(s) before starting the new version: every "
                              f"update is an outage{note}", severity=Severity.HIGH, evidence=evidence)
        elif count and unavailable >= count:
            yield ctx.fail(w, f"maxUnavailable resolves to {unavailable} of {count} replica(s): a rollout may take "
                              f"every pod down{note}", severity=Severity.HIGH, evidence=evidence)
        elif unavailable > 0:
            yield ctx.fail(w, f"maxUnavailable resolves to {unavailable} of {count} replicas: capacity drops "
                              f"during every rollout (set maxUnavailable: 0, maxSurge >= 1){note}",
                           severity=Severity.LOW, evidence=evidence)
        else:
            yield ctx.passed(w, f"RollingUpdate keeps all {count} replica(s) available (maxUnavailable 0, "
                                f"maxSurge {surge})", evidence=evidence)


def _update_strategy_verdict(ctx: CheckContext, w: Workload, note: str) -> Finding:
    """StatefulSets and DaemonSets: OnDelete never rolls a patch out by itself."""
    if w.kind == "StatefulSet":
        strategy, problem = _statefulset_rollout(w.obj)
    else:
        strategy, problem = str(_d(_d(w.obj.get("spec")).get("updateStrategy")).get("type") or "RollingUpdate"), None
    evidence = {"updateStrategy": strategy}
    if strategy == "OnDelete":
        return ctx.fail(w, "updateStrategy OnDelete: new images (patches) only run once someone deletes each pod "
                           f"by hand{note}", evidence=evidence)
    if problem is not None:
        return ctx.fail(w, f"updateStrategy {strategy} with {problem}{note}", evidence=evidence)
    what = "one pod at a time" if w.kind == "StatefulSet" else "node by node"
    return ctx.passed(w, f"updateStrategy {strategy} replaces pods {what}", evidence=evidence)


@check(
    id="resilience.replicas",
    title="Production workloads run at least two replicas",
    severity=Severity.MEDIUM,
    measures=MEASURES,
    remediation="Set spec.replicas: 2 or more (or an HPA with minReplicas >= 2) and spread the pods with "
    "topologySpreadConstraints.",
)
def replica_count(ctx: CheckContext) -> Iterator[Finding]:
    """One replica means every node drain, eviction or patch rollout is a short outage."""
    reason = ctx.unlisted(("HorizontalPodAutoscaler", "autoscaling"))
    if reason:
        yield ctx.not_assessed(None, reason)
        return
    note = _scope_note(ctx)
    for w in _production(ctx, ("Deployment", "StatefulSet")):
        count, source = effective_replicas(ctx, w)
        if count >= 2:
            yield ctx.passed(w, f"{source}", evidence={"replicas": count})
        else:
            yield ctx.fail(w, f"{source}: a single pod, so a drain or patch means downtime{note}",
                           evidence={"replicas": count})


def has_probe_handler(probe: object) -> bool:
    """A probe counts with exactly one handler (httpGet, tcpSocket, exec or grpc); the API rejects any other."""
    return sum(isinstance(_d(probe).get(h), dict) for h in PROBE_HANDLERS) == 1


@check(
    id="resilience.readiness-probe",
    title="Long-running production containers have a readiness probe",
    severity=Severity.MEDIUM,
    measures=MEASURES,
    remediation="Add a readinessProbe (httpGet/tcpSocket/grpc/exec) so rollouts wait until new pods serve.",
)
def readiness_probe(ctx: CheckContext) -> Iterator[Finding]:
    """Without a readiness probe a new pod counts as available the moment it starts; a broken patch then
    replaces working pods with failing ones."""
    for w in _production(ctx, LONG_RUNNING):
        missing = [str(c.get("name", "")) for c in _l(w.pod_spec.get("containers"))
                   if isinstance(c, dict) and not has_probe_handler(c.get("readinessProbe"))]
        for name in missing:
            yield ctx.fail(w, f"container {name} has no readinessProbe", container=name)
        if not missing:
            yield ctx.passed(w, "every container has a readinessProbe")


# ---- PodDisruptionBudgets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pdb:
    obj: dict
    name: str


def _pdbs(ctx: CheckContext, namespace: str) -> SelectorIndex[_Pdb]:
    """The namespace's PDBs by selector, parsed once (each workload of the namespace is matched)."""
    return ctx.inv.cached(f"resilience.pdbs:{namespace}", lambda: _parse_pdbs(ctx.inv, namespace))


def _parse_pdbs(inv: Inventory, namespace: str) -> SelectorIndex[_Pdb]:
    out = []
    for pdb in inv.in_namespace("PodDisruptionBudget", namespace, "policy"):
        try:
            selector = parse_selector(_d(pdb.get("spec")).get("selector"))
        except InvalidSelector:
            continue
        if selector.is_empty and pdb.get("apiVersion") == "policy/v1beta1":
            continue  # policy/v1beta1 converts an empty selector to one that selects no pods
        out.append((selector, _Pdb(pdb, str(pdb["metadata"].get("name", "")))))
    return SelectorIndex(out)


def pdb_blocks_all(pdb: dict, expected: int) -> str | None:
    """Why this PDB would refuse every voluntary eviction of `expected` pods, or None."""
    spec = _d(pdb.get("spec"))
    if spec.get("maxUnavailable") is not None:
        value = scaled(spec["maxUnavailable"], expected, round_up=True)
        if value == 0:
            return f"maxUnavailable {spec['maxUnavailable']}"
        return None
    if spec.get("minAvailable") is not None:
        value = scaled(spec["minAvailable"], expected, round_up=True)
        if value is not None and value >= expected:
            return f"minAvailable {spec['minAvailable']} of {expected} pods"
    return None


@check(
    id="resilience.pdb",
    title="Every multi-replica production workload has one PodDisruptionBudget that allows evictions",
    severity=Severity.MEDIUM,
    measures=MEASURES,
    remediation="Create one PodDisruptionBudget per workload with maxUnavailable: 1 (or minAvailable below the "
    "replica count); e.g. `nis2kube harden --only pdb`.",
)
def pdb(ctx: CheckContext) -> Iterator[Finding]:
    """No PDB: a node drain may evict every replica at once. A PDB allowing no disruption blocks drains and
    with them node patching. Pods selected by two PDBs cannot be evicted at all (the eviction API refuses)."""
    reason = ctx.unlisted(("PodDisruptionBudget", "policy"), ("HorizontalPodAutoscaler", "autoscaling"))
    if reason:
        yield ctx.not_assessed(None, reason)
        return
    note = _scope_note(ctx)
    for w in _production(ctx, SCALED_KINDS):
        count, source = effective_replicas(ctx, w)
        if count < 2:
            continue  # single replicas are resilience.replicas' finding
        matching = _pdbs(ctx, w.namespace).matching(w.pod_labels)
        names = [p.name for p in matching]
        if not matching:
            yield ctx.fail(w, f"no PodDisruptionBudget selects its pods ({source}): a drain may evict all of "
                              f"them at once{note}")
        elif len(matching) > 1:
            yield ctx.fail(w, f"pods are selected by {len(matching)} PodDisruptionBudgets ({', '.join(names)}): "
                              "the eviction API refuses to evict them, so drains hang", evidence={"pdbs": names})
        elif (why := pdb_blocks_all(matching[0].obj, count)) is not None:
            yield ctx.fail(w, f"PodDisruptionBudget {names[0]} allows no eviction ({why}): node drains and "
                              "patching stall", evidence={"pdbs": names})
        else:
            yield ctx.passed(w, f"PodDisruptionBudget {names[0]} protects its {count} replicas and allows "
                                "evictions", evidence={"pdbs": names})


# ---- supported Kubernetes versions --------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseTable:
    as_of: dt.date
    source: str
    end_of_life: dict[tuple[int, int], dt.date]

    @property
    def newest(self) -> tuple[int, int]:
        return max(self.end_of_life)

    @property
    def oldest(self) -> tuple[int, int]:
        return min(self.end_of_life)


def release_table() -> ReleaseTable:
    """The shipped table of Kubernetes minor releases (src/nis2kube/data/k8s_releases.yaml)."""
    raw = load_yaml("nis2kube", "data/k8s_releases.yaml")
    eol = {}
    for row in raw["releases"]:
        major, minor = (int(p) for p in str(row["minor"]).split("."))
        eol[(major, minor)] = _as_date(row["end_of_life"])
    return ReleaseTable(_as_date(raw["as_of"]), str(raw["source"]), eol)


def _as_date(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def parse_version(text: object) -> tuple[int, int] | None:
    """`v1.29.3`, `v1.29.3-eks-1234`, `1.29` -> (1, 29)."""
    match = _VERSION.match(str(text or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def apiserver_versions(ctx: CheckContext) -> list[tuple[str, tuple[int, int]]]:
    """The API servers' versions: the live cluster's, else each kube-apiserver's image tag (the given manifest,
    or the mirror Pods: an HA control plane mid-upgrade runs several)."""
    if ctx.inv.source.server_version and (parsed := parse_version(ctx.inv.source.server_version)):
        return [(ctx.inv.source.server_version, parsed)]
    out = []
    for server in apiservers(ctx):
        image = server.image.split("@", 1)[0]  # a pinned digest follows the tag
        if "kube-apiserver" in image and ":" in image.rsplit("/", 1)[-1]:
            tag = image.rsplit(":", 1)[-1]
            if parsed := parse_version(tag):
                out.append((tag, parsed))
    return out


def skew_problem(kubelet: tuple[int, int], api: tuple[int, int]) -> int | None:
    """Version skew policy: a kubelet never newer than the (oldest) API server, at most 3 minors older (2 for
    kubelets before 1.25). The minors allowed when this kubelet breaks it (for the message), else None."""
    allowed = 3 if kubelet >= (1, 25) else 2
    too_old = kubelet[0] == api[0] and api[1] - kubelet[1] > allowed
    return allowed if kubelet > api or too_old else None


def _judge(table: ReleaseTable, version: str, minor: tuple[int, int], on: dt.date) -> tuple[str, str]:
    """(status, message) for one component version against the table."""
    name = f"{minor[0]}.{minor[1]}"
    cite = f"(release table as of {table.as_of.isoformat()}, {table.source})"
    eol = table.end_of_life.get(minor)
    if eol is None:
        if minor > table.newest:
            return "na", f"version {version} is newer than the release table {cite}; update nis2kube"
        oldest = table.end_of_life[table.oldest]
        return "fail", f"version {version} is older than 1.{table.oldest[1]}, which reached end of life " \
                       f"on {oldest.isoformat()} {cite}"
    if eol < on:
        return "fail", f"Kubernetes {name} ({version}) reached end of life on {eol.isoformat()} and receives no " \
                       f"security fixes {cite}"
    left = (eol - on).days
    soon = f"; plan the upgrade, support ends in {left} days" if left <= EOL_WARNING_DAYS else ""
    return "pass", f"Kubernetes {name} ({version}) is supported until {eol.isoformat()}{soon} {cite}"


@check(
    id="resilience.k8s-version",
    title="API server and kubelets run Kubernetes versions that still receive security fixes",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Upgrade the control plane, then the nodes, to a supported minor release "
    "(https://kubernetes.io/releases/); kubelets may be at most 3 minor versions older than the API server.",
)
def k8s_version(ctx: CheckContext) -> Iterator[Finding]:
    """Versions are judged against a dated table of upstream end-of-life dates, which the finding cites.

    A managed platform may support a minor longer than upstream: record that as a waiver with its date."""
    table = release_table()
    on = today(ctx)
    apis = apiserver_versions(ctx)
    nodes = ctx.inv.objects("Node")
    reason = ctx.unlisted(("Node", ""))
    if reason:
        yield ctx.not_assessed(None, f"kubelet versions unknown: {reason}")
    if not apis and not nodes:
        if not reason:
            yield ctx.not_assessed(None, "no Kubernetes version in the input (no Nodes, no kube-apiserver Pod, not "
                                         "a live scan)")
        return
    for version, minor in dict(apis).items():
        status, message = _judge(table, version, minor, on)
        yield _verdict(ctx, status, None, f"API server: {message}", {"version": version})
    oldest = min(apis, key=lambda a: a[1], default=None)
    for node in nodes:
        version = _d(_d(node.get("status")).get("nodeInfo")).get("kubeletVersion")
        minor = parse_version(version)
        if minor is None:
            yield ctx.not_assessed(node, "the Node reports no status.nodeInfo.kubeletVersion")
            continue
        status, message = _judge(table, str(version), minor, on)
        if status == "pass" and oldest is not None and (allowed := skew_problem(minor, oldest[1])) is not None:
            status = "fail"
            message = (f"kubelet {version} is outside the supported version skew with API server {oldest[0]} "
                       f"(kubelets may be up to {allowed} minor versions older, never newer)")
        yield _verdict(ctx, status, node, f"kubelet: {message}", {"version": version})


def _verdict(ctx: CheckContext, status: str, subject: dict | None, message: str, evidence: dict) -> Finding:
    if status == "fail":
        return ctx.fail(subject, message, evidence=evidence)
    if status == "na":
        return ctx.not_assessed(subject, message, evidence=evidence)
    return ctx.passed(subject, message, evidence=evidence)
