"""Vulnerability handling (NIS2 Art. 21(2)(e); IR 2024/2690 6.6 patching, 6.10 vulnerability handling).

The scans come from Trivy: Trivy Operator VulnerabilityReports among the objects, and Trivy JSON reports
given with `--trivy-report`. Each running container is matched to the scan of the image it runs. A fixable
vulnerability at or above the threshold is a finding; an image nobody scanned is not a pass but a gap in
scan coverage, reported as such.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from nis2kube.checks.registry import CheckContext, InputError, check
from nis2kube.evidence_file import today
from nis2kube.findings import Finding, Severity
from nis2kube.images import canonical_image
from nis2kube.inventory.workloads import Workload, workloads
from nis2kube.trivy import (
    SEVERITIES,
    TRIVY_GROUP,
    ReportMatcher,
    load_trivy_reports,
    matcher,
    operator_reports,
)

MEASURES = ("art21.2.e", "ir2690.6.6", "ir2690.6.10")
DEFAULT_THRESHOLD = "HIGH"
# the finding is as severe as the worst fixable vulnerability in it (UNKNOWN ranks as MEDIUM)
FINDING_SEVERITY = {"CRITICAL": Severity.CRITICAL, "HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM,
                    "LOW": Severity.LOW, "UNKNOWN": Severity.MEDIUM}
DEFAULT_MAX_AGE_DAYS = 7
HOW_TO_SCAN = ("install Trivy Operator (VulnerabilityReports are then read from the cluster or a dump), or give "
               "`--trivy-report FILE` per image (`trivy image --format json -o FILE IMAGE`)")


@dataclass(frozen=True)
class Scans:
    matcher: ReportMatcher
    count: int
    sources: tuple[str, ...]  # human description of where scans came from


def _scans(ctx: CheckContext) -> Scans:
    files = ctx.input("trivy_report", lambda raw: load_trivy_reports([raw] if isinstance(raw, str) else raw)) or ()
    operator = operator_reports(ctx.inv, "VulnerabilityReport")
    sources = []
    if operator:
        sources.append(f"{len(operator)} Trivy Operator VulnerabilityReport(s)")
    if files:
        sources.append(f"{len(files)} Trivy JSON report(s)")
    return Scans(matcher(ctx.inv, "VulnerabilityReport", files), len(operator) + len(files), tuple(sources))


def _threshold(ctx: CheckContext) -> str:
    value = str(ctx.config.section("vulns").get("severity_threshold", DEFAULT_THRESHOLD)).upper()
    if value not in SEVERITIES:
        raise InputError(f"nis2kube.yaml vulns.severity_threshold: {value!r} is not one of {', '.join(SEVERITIES)}")
    return value


def _max_age(ctx: CheckContext) -> int:
    value = ctx.config.section("vulns").get("max_report_age_days", DEFAULT_MAX_AGE_DAYS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"nis2kube.yaml vulns.max_report_age_days: {value!r} is not a whole number of days >= 1")
    return value


def _no_scans(ctx: CheckContext) -> Finding | None:
    """Not assessed when no scan result exists at all (unless live mode proves the operator is absent)."""
    reason = ctx.inv.unlisted_reason("VulnerabilityReport", TRIVY_GROUP)
    if reason:
        return ctx.not_assessed(None, f"VulnerabilityReports could not be read ({reason}); {HOW_TO_SCAN}")
    return ctx.not_assessed(None, f"no vulnerability scan results in the input; {HOW_TO_SCAN}")


def _containers(w: Workload) -> Iterator[tuple[str, str]]:
    for _, container in w.containers():
        image = str(container.get("image", "")).strip()
        if image:
            yield str(container.get("name", "")), image


@check(
    id="vulns.fixable",
    title="No running image has a fixable vulnerability at or above the severity threshold",
    severity=Severity.HIGH,
    measures=MEASURES,
    remediation="Rebuild or update the image to the fixed package versions the finding lists, then roll it "
    "out; if a fix cannot be deployed yet, record a waiver with an expiry and the compensating control.",
)
def fixable(ctx: CheckContext) -> Iterator[Finding]:
    """A vulnerability with a fixed version available and severity >= vulns.severity_threshold (HIGH) fails.

    Images without any scan result are not assessed (and counted by vulns.scan-coverage)."""
    threshold = _threshold(ctx)
    scans = _scans(ctx)
    if not scans.matcher:
        yield _no_scans(ctx)
        return
    for w in workloads(ctx.inv):
        clean = True
        for name, raw in _containers(w):
            reports, how = scans.matcher.find(w.ref, name, canonical_image(raw))
            if not reports:
                clean = False
                yield ctx.not_assessed(w, f"no vulnerability scan of image {raw}", container=name,
                                       evidence={"image": raw})
                continue
            found = {(v.id, v.package): v for r in reports for v in r.at_or_above(threshold)}
            if found:
                clean = False
                worst = sorted(found.values(), key=lambda v: (-SEVERITIES.index(v.severity), v.id))
                counts = {s: sum(1 for v in worst if v.severity == s) for s in reversed(SEVERITIES)}
                summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
                listed = "; ".join(f"{v.id} ({v.severity}) {v.package} {v.installed} -> {v.fixed}" for v in worst[:5])
                more = f" and {len(worst) - 5} more" if len(worst) > 5 else ""
                yield ctx.fail(
                    w, f"image {raw} has {summary} fixable vulnerabilit{'y' if len(worst) == 1 else 'ies'}: "
                       f"{listed}{more}",
                    container=name, severity=FINDING_SEVERITY[worst[0].severity],
                    evidence={"image": raw, "matched_by": how, "reports": [r.source for r in reports],
                              "vulnerabilities": sorted({v.id for v in worst})},
                )
        if clean:
            yield ctx.passed(w, f"no fixable vulnerability at or above {threshold} in any scanned image")


@check(
    id="vulns.report-age",
    title="Vulnerability scans of running images are recent",
    severity=Severity.MEDIUM,
    measures=MEASURES,
    remediation="Re-scan regularly: Trivy Operator rescans when its reports expire (OPERATOR_SCANNER_REPORT_TTL, "
    "e.g. 24h); for CI scans, re-run `trivy image` on a schedule, not only at build time.",
)
def report_age(ctx: CheckContext) -> Iterator[Finding]:
    """New CVEs are published daily: a scan older than vulns.max_report_age_days (7) no longer says much."""
    max_age = _max_age(ctx)
    scans = _scans(ctx)
    if not scans.matcher:
        yield _no_scans(ctx)
        return
    now = dt.datetime.combine(today(ctx), dt.time(23, 59, 59), dt.UTC)
    for w in workloads(ctx.inv):
        for name, raw in _containers(w):
            reports, _ = scans.matcher.find(w.ref, name, canonical_image(raw))
            if not reports:
                continue  # vulns.scan-coverage reports it
            stamps = [r.scanned_at for r in reports if r.scanned_at is not None]
            if not stamps:
                yield ctx.not_assessed(w, f"the scan of {raw} carries no timestamp", container=name,
                                       evidence={"reports": [r.source for r in reports]})
                continue
            newest = max(stamps)
            age = (now - newest).days
            detail = {"image": raw, "scanned_at": newest.isoformat(), "age_days": age, "max_age_days": max_age}
            if age > max_age:
                yield ctx.fail(w, f"the newest scan of {raw} is {age} days old (scanned "
                                  f"{newest.date().isoformat()}; limit {max_age} days)", container=name,
                               evidence=detail)
            else:
                yield ctx.passed(w, f"image {raw} was scanned {newest.date().isoformat()} ({age} days ago)",
                                 container=name, evidence=detail)


@check(
    id="vulns.scan-coverage",
    title="Every running image has a vulnerability scan",
    severity=Severity.MEDIUM,
    measures=MEASURES,
    remediation="Let Trivy Operator scan every namespace (do not exclude application namespaces via "
    "OPERATOR_EXCLUDE_NAMESPACES), or add a `--trivy-report` for each image listed.",
)
def scan_coverage(ctx: CheckContext) -> Iterator[Finding]:
    """Coverage across the cluster: the images that run without any scan result, by name."""
    scans = _scans(ctx)
    if not scans.matcher:
        yield _no_scans(ctx)
        return
    images: dict[str, bool] = {}
    for w in workloads(ctx.inv):
        for name, raw in _containers(w):
            covered = bool(scans.matcher.find(w.ref, name, canonical_image(raw))[0])
            images[raw] = images.get(raw, False) or covered
    missing = sorted(raw for raw, ok in images.items() if not ok)
    total = len(images)
    percent = 100.0 * (total - len(missing)) / total if total else 100.0
    evidence = {"images": total, "scanned": total - len(missing), "coverage_percent": round(percent, 1),
                "sources": list(scans.sources), "unscanned": missing}
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        yield ctx.fail(None, f"{len(missing)} of {total} running images have no vulnerability scan "
                             f"({percent:.0f}% coverage): {shown}", evidence=evidence)
    else:
        yield ctx.passed(None, f"all {total} running images have a vulnerability scan "
                               f"({'; '.join(scans.sources)})", evidence=evidence)
