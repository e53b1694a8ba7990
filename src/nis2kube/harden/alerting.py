"""PrometheusRules that turn the signals NIS2 cares about into pages.

Denied API requests (credential stuffing, a compromised token probing RBAC), critical Falco events, Art. 23
report deadlines from `nis2kube serve`'s /metrics, failed or missing scans of the `deploy/` CronJob from
kube-state-metrics, and blocking findings and score drops from the scan's metrics file. Every nis2kube metric
used here is one that exists: the names are tested against serve's /metrics and `scan --metrics` output.
Placed in the namespace where Prometheus runs, with the `release`-style labels of the existing PrometheusRules
copied, so the Prometheus ruleSelector that already picks those up picks these up too.
"""

from __future__ import annotations

from nis2kube.harden.bundle import Area, Artifact
from nis2kube.harden.context import HardenContext, meta

# `nis2kube serve` /metrics: {incident, report} -> seconds until the next unmet Art. 23 report (negative: overdue).
NEXT_DEADLINE = "nis2kube_incident_next_deadline_seconds"
FALCO_EVENTS = "falcosecurity_falcosidekick_falco_events_total"
# `nis2kube scan --metrics FILE` (the CronJob's nis2kube.prom, collected by a textfile collector or Pushgateway).
BLOCKING = "nis2kube_scan_blocking_findings"
SCORE = "nis2kube_scan_score"
# kube-state-metrics, for the scan CronJob of deploy/ (namespace nis2kube, CronJob nis2kube-scan).
SCAN_JOBS = 'namespace="nis2kube", job_name=~"nis2kube-scan-.*"'
SCAN_CRONJOB = 'namespace="nis2kube", cronjob="nis2kube-scan"'


def _alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict:
    rule: dict = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, "framework": "nis2"}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def rule_groups() -> list[dict]:
    return [
        {"name": "nis2-api-access", "rules": [
            _alert("NIS2APIRequestsDeniedBurst",
                   'sum by (code) (rate(apiserver_request_total{code=~"401|403"}[5m])) > 1', "10m", "warning",
                   "Burst of denied Kubernetes API requests ({{ $labels.code }})",
                   "More than one denied API request per second for 10 minutes: a stolen or misused credential "
                   "probing permissions. Check the audit log for the user and source IP."),
        ]},
        {"name": "nis2-runtime", "rules": [
            _alert("NIS2FalcoCriticalEvent",
                   f'sum by (rule, k8s_ns_name, k8s_pod_name) (increase({FALCO_EVENTS}'
                   '{priority_raw=~"critical|alert|emergency"}[5m])) > 0', "", "critical",
                   "Falco: {{ $labels.rule }} in {{ $labels.k8s_ns_name }}/{{ $labels.k8s_pod_name }}",
                   "A critical runtime detection fired. Triage it as a potential significant incident "
                   "(NIS2 Art. 23: early warning within 24 hours)."),
        ]},
        {"name": "nis2-incident-deadlines", "rules": [
            _alert("NIS2IncidentReportDueSoon", f"{NEXT_DEADLINE} < 4 * 3600 and {NEXT_DEADLINE} >= 0", "",
                   "critical", "NIS2 {{ $labels.report }} for incident {{ $labels.incident }} due in under 4 hours",
                   "Submit the report to the CSIRT/competent authority before the Art. 23 deadline, then record "
                   "it with `nis2kube incident submit`."),
            _alert("NIS2IncidentReportOverdue", f"{NEXT_DEADLINE} < 0", "", "critical",
                   "NIS2 {{ $labels.report }} for incident {{ $labels.incident }} is overdue",
                   "The Art. 23 deadline has passed without a recorded submission."),
        ]},
        {"name": "nis2-compliance-scans", "rules": [
            _alert("NIS2ScanFailing", f"sum(kube_job_status_failed{{{SCAN_JOBS}}}) > 0", "", "warning",
                   "nis2kube scan jobs are failing",
                   "Compliance evidence is not being collected: `kubectl -n nis2kube logs job/<failed job>`."),
            _alert("NIS2ScanStale",
                   f"time() - kube_cronjob_status_last_successful_time{{{SCAN_CRONJOB}}} > 26 * 3600", "", "warning",
                   "No successful nis2kube scan for more than a day",
                   "Continuous monitoring of the Art. 21 measures has stopped."),
            _alert("NIS2BlockingFindings", f"{BLOCKING} > 0", "", "warning",
                   "nis2kube: {{ $value }} findings at or above the scan's --fail-on severity",
                   "`nis2kube scan` (or the JSON report on the reports volume) lists them with their fixes."),
            _alert("NIS2ComplianceScoreDrop", f"{SCORE} < ({SCORE} offset 1d) - 5", "", "warning",
                   "NIS2 compliance score dropped by more than 5 points in a day",
                   "A change made the cluster less compliant; `nis2kube scan` lists the new failures."),
        ]},
    ]


def _prometheus_namespace(ctx: HardenContext) -> tuple[str, dict[str, str]]:
    """Where existing PrometheusRules live (their labels reused), else where Prometheus runs, else monitoring."""
    existing = sorted(ctx.inv.objects("PrometheusRule"),
                      key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"].get("name", "")))
    if existing:
        labels = (existing[0]["metadata"].get("labels") or {})
        keep = {k: str(v) for k, v in sorted(labels.items()) if k in ("release", "prometheus", "role")}
        return existing[0]["metadata"].get("namespace") or "monitoring", keep
    for kind in ("Prometheus", "Deployment", "StatefulSet"):
        group = "monitoring.coreos.com" if kind == "Prometheus" else None
        for obj in ctx.inv.objects(kind, group):
            name = obj["metadata"].get("name", "")
            if name == "prometheus" or (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == \
                    "prometheus":
                return obj["metadata"].get("namespace") or "monitoring", {}
    return "monitoring", {}


def generate(ctx: HardenContext) -> Area:
    area = Area("alerting", "Alerting (PrometheusRules)", targets=("alerting.*",))
    namespace, extra_labels = _prometheus_namespace(ctx)
    metadata = meta("nis2kube-security-alerts", namespace)
    metadata["labels"].update(extra_labels)
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata,
            "spec": {"groups": rule_groups()}}
    area.artifacts.append(Artifact("alerting/prometheusrule.yaml",
                                   f"PrometheusRule in `{namespace}`: API denials, Falco, Art. 23 deadlines, scans.",
                                   [rule]))
    area.notes.append(
        "The deadline alerts need Prometheus to scrape `nis2kube serve` (/metrics), the scan-job alerts "
        "kube-state-metrics and the CronJob of `deploy/`, the findings and score alerts the CronJob's "
        "nis2kube.prom (textfile collector or Pushgateway), the Falco alert falcosidekick's metrics. "
        "Route `severity=critical` to paging in Alertmanager.")
    return area
