"""A scan as Prometheus text exposition (`scan --metrics FILE`).

What the in-cluster CronJob leaves beside its JSON report, for node-exporter's textfile collector or a
Pushgateway, so the score and the failing measures can be graphed and alerted on like any other signal.
Counts cover application namespaces only (as the score and the exit code do); every selected check and
every measure gets a series, zeros included, so an alert can compare with yesterday.
"""

from __future__ import annotations

from collections import Counter

from nis2kube.engine import Result
from nis2kube.findings import Severity, Status


def _label(value: str) -> str:
    """Escape a label value as the exposition format requires (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        number = str(int(value)) if float(value).is_integer() else repr(float(value))
        lines.append(f"{name}{{{text}}} {number}" if text else f"{name} {number}")
    return lines


def render_metrics(result: Result) -> str:
    summary = result.summary()
    by_status_severity: Counter = Counter()
    for (_, status, severity, system), n in result.tally().items():  # counted once, shared with summary()
        if not system:
            by_status_severity[(status, severity)] += n
    failures = Counter(f.check for f in result.findings if f.status is Status.FAIL and not f.system)
    source = result.inventory.source
    lines: list[str] = []
    lines += _family("nis2kube_scan_info", "gauge", "The scan that produced these metrics (value is always 1).",
                     [({"version": result.tool_version, "source": source.type,
                        "cluster": source.cluster or ""}, 1)])  # fmt: skip
    lines += _family("nis2kube_scan_timestamp_seconds", "gauge", "When the scan ran (Unix time).",
                     [({}, result.generated_at.timestamp())])
    lines += _family("nis2kube_scan_duration_seconds", "gauge", "Time the checks took.",
                     [({}, round(result.duration_s, 3))])
    lines += _family("nis2kube_scan_objects", "gauge", "Kubernetes objects read.", [({}, len(result.inventory))])
    lines += _family("nis2kube_scan_score", "gauge", "Severity-weighted share of passing verdicts, 0-100.",
                     [({}, summary["score"])])
    lines += _family("nis2kube_scan_blocking_findings", "gauge",
                     "Failures at or above --fail-on (what makes the scan exit 1).", [({}, summary["blocking"])])
    lines += _family("nis2kube_scan_findings", "gauge", "Findings in application namespaces by status and severity.",
                     [({"status": s.value, "severity": v.value}, by_status_severity[(s, v)])
                      for s in Status for v in Severity])  # fmt: skip
    lines += _family("nis2kube_check_failures", "gauge", "Failing findings per check (application namespaces).",
                     [({"check": cid, "severity": spec.severity.value}, failures[cid])
                      for cid, spec in sorted(result.checks.items())])  # fmt: skip
    lines += _family("nis2kube_measure_status", "gauge",
                     "1 for the status each NIS2 measure has in this scan (fail, pass, not-assessed, organisational).",
                     [({"measure": m["id"], "status": m["status"]}, 1) for m in summary["measures"]])
    return "\n".join(lines) + "\n"
