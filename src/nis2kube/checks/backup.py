"""Backups (NIS2 Art. 21(2)(c) business continuity; IR 2024/2690 4.2 backup and redundancy).

Application namespaces are backed up when an active Velero Schedule includes them with a TTL at least
backup.retention_days long; the control plane when an etcd backup is attested (schedule, retention,
off-site copy). A backup nobody has restored is a hope, so the last restore test is judged as well.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from nis2kube.apiserver import apiservers
from nis2kube.checks.registry import CheckContext, InputError, check
from nis2kube.evidence_file import evidence, today
from nis2kube.findings import Finding, Severity
from nis2kube.wildcards import velero

MEASURES = ("art21.2.c", "ir2690.4.2")
VELERO = "velero.io"
DEFAULT_RETENTION_DAYS = 30
DEFAULT_RESTORE_TEST_DAYS = 365
VELERO_DEFAULT_TTL = dt.timedelta(hours=720)  # velero server --default-backup-ttl
_DURATION = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []



def go_duration(text: object) -> dt.timedelta | None:
    """Go's time.ParseDuration (`720h0m0s`, `168h`, `1.5h`, `.5h`, `-1h`, a bare `0`); None if invalid."""
    value = str(text or "").strip()
    sign = -1 if value.startswith("-") else 1
    if value.lstrip("+-") == "0":
        return dt.timedelta(0)
    if not _DURATION.fullmatch(value):
        return None
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(value))
    return dt.timedelta(seconds=sign * seconds)


@dataclass(frozen=True)
class Schedule:
    name: str
    included: tuple[str, ...]
    excluded: tuple[str, ...]
    ttl: dt.timedelta
    idle: str  # why no backups are made ("" when the Schedule runs)
    cron: str

    def covers(self, namespace: str) -> bool:
        """Velero's namespace filter: empty or `*` includes all; exclusions win; Velero's glob patterns."""
        included = not self.included or any(_matches(p, namespace) for p in self.included)
        return included and not any(_matches(p, namespace) for p in self.excluded)


def _matches(pattern: str, namespace: str) -> bool:
    regex = velero(pattern)
    return regex is not None and regex.fullmatch(namespace) is not None


def _ttl(value: object) -> dt.timedelta:
    """Backup TTL: Velero's backup controller replaces an unset or zero TTL with --default-backup-ttl (720h)."""
    ttl = go_duration(value) if value not in (None, "") else dt.timedelta(0)
    if ttl is None:
        return dt.timedelta(0)  # not a Go duration: the API server would have refused the object
    return VELERO_DEFAULT_TTL if ttl == dt.timedelta(0) else ttl


def _idle(spec: dict, status: dict, included: tuple[str, ...], excluded: tuple[str, ...]) -> str:
    """Why the Schedule makes no usable backups, or "": paused; no cron expression or status FailedValidation
    (the schedule controller then never runs it); namespace lists the backup controller rejects
    (ValidateIncludesExcludes: `*` only alone in the includes, never in the excludes, no name in both; patterns
    Velero's wildcard expansion refuses)."""
    if spec.get("paused") is True:
        return "paused"
    if not str(spec.get("schedule") or "").strip() or status.get("phase") == "FailedValidation":
        return "failed validation"
    if ("*" in included and len(set(included)) > 1) or "*" in excluded or set(included) & set(excluded):
        return "its backups fail validation (invalid namespace lists)"
    # with `*` among the includes Velero expands (and so validates) no pattern
    if bad := [p for p in (*included, *excluded) if "*" not in included and velero(p) is None]:
        return f"its backups fail validation (namespace pattern {bad[0]!r} is not a Velero glob)"
    return ""


def schedules(ctx: CheckContext) -> list[Schedule]:
    def build() -> list[Schedule]:
        out = []
        for obj in ctx.inv.objects("Schedule", VELERO):
            spec = _d(obj.get("spec"))
            template = _d(spec.get("template"))
            included = tuple(str(n) for n in _l(template.get("includedNamespaces")))
            excluded = tuple(str(n) for n in _l(template.get("excludedNamespaces")))
            out.append(Schedule(
                f"{obj['metadata'].get('namespace')}/{obj['metadata'].get('name', '')}",
                included,
                excluded,
                _ttl(template.get("ttl")),
                _idle(spec, _d(obj.get("status")), included, excluded),
                str(spec.get("schedule") or ""),
            ))
        return out

    return ctx.inv.cached("backup:velero-schedules", build)


def retention_days(ctx: CheckContext) -> int:
    return max_days_section(ctx, "retention_days", DEFAULT_RETENTION_DAYS)


def max_days_section(ctx: CheckContext, key: str, default: int) -> int:
    value = ctx.config.section("backup").get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"nis2kube.yaml backup.{key}: {value!r} is not a whole number of days >= 1")
    return value


@check(
    id="backup.namespaces",
    title="Every application namespace is backed up with sufficient retention",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Create a Velero Schedule (e.g. `velero schedule create daily --schedule '0 2 * * *' --ttl "
    "720h`) including the namespace, with a TTL of at least backup.retention_days; copy backups off-site.",
)
def namespaces_backed_up(ctx: CheckContext) -> Iterator[Finding]:
    """An active Velero Schedule must include the namespace with TTL >= backup.retention_days (30); without
    Velero, an attested etcd backup counts for the objects (not for volume data, which it does not hold)."""
    reason = ctx.inv.unlisted_reason("Schedule", VELERO)
    if reason:
        yield ctx.not_assessed(None, f"Velero Schedules could not be read ({reason})")
        return
    days = retention_days(ctx)
    needed = dt.timedelta(days=days)
    etcd = (evidence(ctx) or {}).get("etcd_backup")
    all_schedules = schedules(ctx)
    for namespace in ctx.inv.namespaces():
        if ctx.scan.is_system(namespace):
            continue
        subject = ctx.inv.get("Namespace", None, namespace) or {"apiVersion": "v1", "kind": "Namespace",
                                                                "metadata": {"name": namespace}}
        covering = [s for s in all_schedules if s.covers(namespace)]
        active = [s for s in covering if not s.idle]
        best = max(active, key=lambda s: s.ttl, default=None)
        if best is not None and best.ttl >= needed:
            yield ctx.passed(subject, f"Velero Schedule {best.name} ({best.cron}) keeps backups "
                                      f"{best.ttl.days} days (>= {days})", evidence={"schedule": best.name})
        elif best is not None:
            yield ctx.fail(subject, f"Velero Schedule {best.name} keeps backups only {best.ttl.days} days "
                                    f"(backup.retention_days {days})", evidence={"schedule": best.name})
        elif covering:
            yield ctx.fail(subject, "the only Velero Schedule(s) covering it make no backups: "
                                    f"{', '.join(f'{s.name} ({s.idle})' for s in covering)}")
        elif etcd is not None and etcd.get("retention_days", 0) >= days and (volumes := _volume_claims(ctx, namespace)):
            yield ctx.fail(subject, f"no Velero Schedule includes it; the attested etcd backup restores its objects "
                                    f"but not the data of its {volumes} persistent volume claim(s)",
                           evidence={"etcd_backup": True, "persistent_volume_claims": volumes})
        elif etcd is not None and etcd.get("retention_days", 0) >= days:
            yield ctx.passed(subject, f"no Velero Schedule, but an etcd backup ({etcd['schedule']}, "
                                      f"{etcd['retention_days']} days) is attested: it restores the objects, "
                                      "not persistent volume data", evidence={"etcd_backup": True})
        else:
            what = "no Velero Schedule includes it" if all_schedules else "no Velero Schedule exists"
            kept = (etcd or {}).get("retention_days", 0)
            extra = "" if etcd is None else f"; the attested etcd backup keeps only {kept} days"
            yield ctx.fail(subject, f"{what} and no sufficient etcd backup is attested{extra}")


def _volume_claims(ctx: CheckContext, namespace: str) -> int:
    """PersistentVolumeClaims in the namespace, counting StatefulSet volumeClaimTemplates per replica."""
    count = len(ctx.inv.in_namespace("PersistentVolumeClaim", namespace))
    if count:
        return count
    for sts in ctx.inv.in_namespace("StatefulSet", namespace):
        spec = _d(sts.get("spec"))
        replicas = spec.get("replicas", 1) if isinstance(spec.get("replicas", 1), int) else 1
        count += len(_l(spec.get("volumeClaimTemplates"))) * max(replicas, 1)
    return count


@check(
    id="backup.etcd",
    title="etcd is backed up on a schedule, off-site, with sufficient retention",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Snapshot etcd on a schedule (`etcdctl snapshot save`), keep copies off-site and encrypted, and "
    "attest schedule, retention_days and offsite under etcd_backup in the evidence file.",
)
def etcd_backup(ctx: CheckContext) -> Iterator[Finding]:
    """Only for self-managed control planes (a kube-apiserver is visible); managed ones back up etcd for you."""
    data = evidence(ctx)
    managed = not apiservers(ctx)
    section = (data or {}).get("etcd_backup")
    if section is None:
        if data is None:
            yield ctx.not_assessed(None, "no --evidence file: attest the etcd backup under etcd_backup")
        elif managed:
            yield ctx.not_assessed(None, "no kube-apiserver visible (managed control plane?): etcd backup is the "
                                         "provider's; attest it under etcd_backup if you run etcd yourself")
        else:
            yield ctx.fail(None, "the control plane is self-managed and no etcd backup is attested (etcd_backup)")
        return
    days = retention_days(ctx)
    problems = []
    if section.get("retention_days") is None:
        problems.append("no retention_days attested")
    elif section["retention_days"] < days:
        problems.append(f"retention {section['retention_days']} days < backup.retention_days {days}")
    if section.get("offsite") is not True:
        problems.append("no off-site copy attested (offsite: true)")
    detail = {"schedule": section["schedule"], "retention_days": section.get("retention_days"),
              "offsite": section.get("offsite")}
    if problems:
        yield ctx.fail(None, f"etcd backup ({section['schedule']}): {'; '.join(problems)}", evidence=detail)
    else:
        yield ctx.passed(None, f"etcd backup {section['schedule']}, kept {section['retention_days']} days, off-site",
                         evidence=detail)


@check(
    id="backup.restore-tested",
    title="Restoring from backup was tested recently",
    severity=Severity.MEDIUM,
    measures=(*MEASURES, "ir2690.4.1"),
    remediation="Restore into a scratch namespace or cluster regularly (`velero restore create --from-backup ... "
    "--namespace-mappings`) and record the date as etcd_backup.last_restore_test.",
)
def restore_tested(ctx: CheckContext) -> Iterator[Finding]:
    """A completed Velero Restore or the attested etcd_backup.last_restore_test within
    backup.restore_test_max_age_days (365)."""
    reason = ctx.unlisted(("Restore", VELERO))
    if reason:
        yield ctx.not_assessed(None, reason)
        return
    limit = max_days_section(ctx, "restore_test_max_age_days", DEFAULT_RESTORE_TEST_DAYS)
    on = today(ctx)
    dates: list[tuple[dt.date, str]] = []
    for restore in ctx.inv.objects("Restore", VELERO):
        status = _d(restore.get("status"))
        stamp = str(status.get("completionTimestamp") or "")
        if status.get("phase") == "Completed" and len(stamp) >= 10:
            try:
                dates.append((dt.date.fromisoformat(stamp[:10]), f"Velero Restore {restore['metadata'].get('name')}"))
            except ValueError:
                continue
    data = evidence(ctx)
    attested = _d((data or {}).get("etcd_backup")).get("last_restore_test")
    if attested is not None:
        dates.append((attested, "attested etcd_backup.last_restore_test"))
    if not dates:
        if data is None and not ctx.inv.objects("Schedule", VELERO):
            yield ctx.not_assessed(None, "no restore evidence: no completed Velero Restore and no --evidence file "
                                         "with etcd_backup.last_restore_test")
        else:
            yield ctx.fail(None, "no restore test on record (no completed Velero Restore, no "
                                 "etcd_backup.last_restore_test)")
        return
    when, source = max(dates)
    age = (on - when).days
    detail = {"date": when.isoformat(), "source": source, "age_days": age, "max_age_days": limit}
    if age > limit:
        yield ctx.fail(None, f"last restore test {when.isoformat()} ({source}) is {age} days old (limit {limit})",
                       evidence=detail)
    else:
        yield ctx.passed(None, f"last restore test {when.isoformat()} ({source}), {age} days ago", evidence=detail)
