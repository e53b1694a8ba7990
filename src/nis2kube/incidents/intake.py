"""Map Falco (falcosidekick webhook) and Alertmanager (webhook v4) payloads to alerts.

Inputs are hostile: every field is type-checked and bounded, and errors say which field is wrong so a
sender's operator can fix the integration. Deduplication keys on rule + top-level workload, so one noisy
Deployment opens one incident, not one per Pod. Priorities are mapped onto the Falco scale here, so the
rest of the code compares one vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nis2kube.incidents.model import IncidentError, parse_time, utcnow
from nis2kube.incidents.profile import PRIORITIES, canonical_priority, priority_rank

MAX_TEXT = 4096
MAX_FIELDS = 256
MAX_ALERTS = 1000

# Falco output fields that are worth carrying into the record as indicators of compromise.
IOC_FIELDS = ("fd.rip", "fd.sip", "fd.name", "proc.cmdline", "proc.exepath", "proc.pname", "user.name",
              "ka.user.name", "ka.target.resource", "container.image.repository", "container.image.digest")
# Pod names from controllers: <rs-or-ds-name>-<pod-template-hash?>-<5 random>; alphabet from
# k8s.io/apimachinery rand.SafeEncodeString (no vowels, no ambiguous digits).
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_RS_POD = re.compile(rf"^(.+)-{_SAFE}{{6,10}}-{_SAFE}{{5}}$")
_DS_POD = re.compile(rf"^(.+)-{_SAFE}{{5}}$")
_STS_POD = re.compile(r"^(.+)-\d+$")
# Falco writes "<NA>" for a field it cannot resolve (falcosecurity/falco#1029), e.g. k8s.* on a host process.
_UNSET = ("", "<NA>", "N/A")


class PayloadError(ValueError):
    """The payload does not have the expected shape; the message names the field."""


@dataclass
class Alert:
    source: str  # falco | alertmanager
    rule: str
    priority: str  # on the Falco scale
    at: datetime
    status: str = "firing"
    namespace: str = ""
    workload: str = ""  # namespace/name of the top-level owner when known, else host
    summary: str = ""
    iocs: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    ref: dict[str, Any] = field(default_factory=dict)  # sender's own identifiers (uuid, fingerprint, ...)
    occurrence: str = ""  # the sender's id of this one alert, the same in every re-send; "" when unknown

    @property
    def dedup_key(self) -> str:
        return f"{self.source}|{self.rule}|{self.workload}"

    @property
    def occurrence_key(self) -> str | None:
        """Names one alert across re-sends (Alertmanager's repeat_interval, falcosidekick's retries), so a
        re-send is recognised as the alert already stored rather than a new one."""
        return f"{self.source}|{self.occurrence}" if self.occurrence else None

    def at_or_above(self, min_priority: str) -> bool:
        return self.status == "firing" and priority_rank(self.priority) >= priority_rank(min_priority)

    def record(self) -> dict[str, Any]:
        """What the store keeps for the alert (bounded, JSON-ready)."""
        return {"source": self.source, "rule": self.rule, "priority": self.priority,
                "at": self.at.isoformat(), "status": self.status, "namespace": self.namespace,
                "workload": self.workload, "summary": self.summary, "iocs": self.iocs, "labels": self.labels,
                **self.ref}


def _text(obj: dict, key: str, where: str, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise PayloadError(f"{where}.{key}: expected a non-empty string")
    return value[:MAX_TEXT]


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected an RFC 3339 time string")
    # RFC 3339 allows nanoseconds (Falco, Go); Python keeps microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())
    try:
        return parse_time(trimmed)
    except IncidentError:
        raise PayloadError(f"{where}: {value[:64]!r} is not an RFC 3339 time with an offset") from None


def _optional_time(alert: dict, key: str, where: str) -> datetime | None:
    """Go's zero time (0001-01-01T00:00:00Z, Alertmanager's "no end yet") means unset, like a missing key."""
    if alert.get(key) is None:
        return None
    at = _time(alert[key], f"{where}.{key}")
    return None if at.year == 1 else at


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_FIELDS:
        raise PayloadError(f"{where}: expected an object with at most {MAX_FIELDS} entries")
    out = {}
    for key, item in value.items():
        if isinstance(item, dict | list):
            raise PayloadError(f"{where}.{key}: expected a scalar value")
        out[str(key)[:256]] = "" if item is None else str(item)[:MAX_TEXT]
    return out


def owner_from_pod_name(pod: str) -> str:
    """Best effort top-level owner of a controller-made Pod: strips the generated suffixes."""
    for pattern in (_RS_POD, _DS_POD, _STS_POD):
        match = pattern.match(pod)
        if match:
            return match.group(1)
    return pod


def parse_falco(payload: Any) -> list[Alert]:
    """falcosidekick's webhook body: one Falco event object (a list of them is accepted too)."""
    events = payload if isinstance(payload, list) else [payload]
    if len(events) > MAX_ALERTS:
        raise PayloadError(f"at most {MAX_ALERTS} events per request")
    return [_falco_event(e, f"event[{i}]" if isinstance(payload, list) else "event") for i, e in enumerate(events)]


def _falco_event(event: Any, where: str) -> Alert:
    if not isinstance(event, dict):
        raise PayloadError(f"{where}: expected a JSON object (a Falco event)")
    rule = _text(event, "rule", where)
    raw_priority = _text(event, "priority", where).lower()
    priority = canonical_priority(raw_priority)  # Falco writes "Informational"; "Info" is its short form
    if priority is None:
        raise PayloadError(f"{where}.priority: {raw_priority!r} is not a Falco priority ({', '.join(PRIORITIES)})")
    at = _time(event.get("time"), f"{where}.time")
    fields = {k: v for k, v in _str_map(event.get("output_fields"), f"{where}.output_fields").items()
              if v not in _UNSET}
    hostname = _text(event, "hostname", where, required=False) or fields.get("hostname", "")
    namespace, workload = _falco_workload(fields, hostname)
    iocs = [f"{k}={fields[k]}" for k in IOC_FIELDS if fields.get(k)]
    tags = event.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise PayloadError(f"{where}.tags: expected a list of strings")
    # Falco's output is not guaranteed to be non-empty; an alert is kept with its rule name instead.
    output = _text(event, "output", where, required=False) or rule
    uuid = _text(event, "uuid", where, required=False)
    return Alert("falco", rule, priority, at, namespace=namespace, workload=workload,
                 summary=f"Falco: {output}"[:MAX_TEXT], iocs=iocs,
                 labels={"source": _text(event, "source", where, required=False)[:64], "hostname": hostname[:256],
                         "tags": ",".join(tags)[:MAX_TEXT]},
                 ref={"uuid": uuid[:64]} if uuid else {}, occurrence=uuid[:64])


def _falco_workload(fields: dict[str, str], hostname: str) -> tuple[str, str]:
    """(namespace, namespace/top-level owner): syscall events name the Pod, k8s_audit events the target."""
    namespace = fields.get("k8s.ns.name") or fields.get("ka.target.namespace", "")
    owner = next((fields[k] for k in ("k8smeta.deployment.name", "k8smeta.statefulset.name",
                                      "k8smeta.daemonset.name", "k8smeta.job.name") if fields.get(k)), "")
    pod = fields.get("k8s.pod.name", "")
    target, resource = fields.get("ka.target.name", ""), fields.get("ka.target.resource", "")
    if not pod and resource == "pods":
        pod, target = target, ""
    name = owner or (owner_from_pod_name(pod) if pod else "") or (f"{resource}/{target}" if target else "")
    if name:
        return namespace, f"{namespace or 'cluster'}/{name}"  # cluster-scoped audit targets have no namespace
    return namespace, f"host/{hostname}" if hostname else ""


def parse_alertmanager(payload: Any) -> list[Alert]:
    """Alertmanager's webhook body (version "4"): one Alert per entry in `alerts`."""
    if not isinstance(payload, dict):
        raise PayloadError("body: expected a JSON object (an Alertmanager webhook message)")
    if payload.get("version") != "4":
        raise PayloadError(f"version: expected \"4\" (Alertmanager webhook format), got {payload.get('version')!r}")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or len(alerts) > MAX_ALERTS:
        raise PayloadError(f"alerts: expected a list of at most {MAX_ALERTS} alerts")
    truncated = payload.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise PayloadError("truncatedAlerts: expected a non-negative integer")
    group_key = _text(payload, "groupKey", "body", required=False)
    common = _str_map(payload.get("commonLabels"), "commonLabels")
    # Alerts Alertmanager dropped (webhook_config max_alerts) never reach us; each alert says so.
    group = {"group_key": group_key, **({"truncated_alerts": truncated} if truncated else {})}
    return [_am_alert(a, f"alerts[{i}]", common, group) for i, a in enumerate(alerts)]


def _am_alert(alert: Any, where: str, common: dict[str, str], group: dict[str, Any]) -> Alert:
    if not isinstance(alert, dict):
        raise PayloadError(f"{where}: expected an object")
    labels = {**common, **_str_map(alert.get("labels"), f"{where}.labels")}
    annotations = _str_map(alert.get("annotations"), f"{where}.annotations")
    status = alert.get("status", "firing")
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}.status: expected firing or resolved")
    if not labels.get("alertname"):
        raise PayloadError(f"{where}.labels.alertname: missing")
    ends_at = _optional_time(alert, "endsAt", where)
    starts_at = _optional_time(alert, "startsAt", where)
    at = starts_at or utcnow()
    fingerprint = _text(alert, "fingerprint", where, required=False)[:64]
    # The fingerprint hashes the label set; the same labels firing again later get a new startsAt.
    occurrence = f"{fingerprint}@{starts_at.isoformat()}" if fingerprint and starts_at else ""
    namespace = labels.get("namespace", "")
    name = next((labels[k] for k in ("deployment", "statefulset", "daemonset", "job_name", "cronjob")
                 if labels.get(k)), "") or (owner_from_pod_name(labels["pod"]) if labels.get("pod") else "")
    workload = f"{namespace}/{name}" if name else (f"instance/{labels['instance']}" if labels.get("instance")
                                                   else "")
    summary = annotations.get("summary") or annotations.get("description") or labels["alertname"]
    # The severity label is free text; unknown values rank as notice (kept, not paged), see priority_rank.
    priority = canonical_priority(labels.get("severity", "warning")) or "notice"
    return Alert("alertmanager", labels["alertname"], priority, at, status=status, namespace=namespace,
                 workload=workload, summary=f"Alertmanager: {summary}"[:MAX_TEXT], labels=labels,
                 ref={"fingerprint": fingerprint, "ends_at": ends_at.isoformat() if ends_at else None, **group},
                 occurrence=occurrence)
