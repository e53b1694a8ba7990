"""The incident record, derived by folding its append-only events.

The store keeps only events; `Incident.apply` is the single place that turns an event into state, so the
audit trail and the current state can never disagree. `apply` also enforces the Art. 23 state machine:
an invalid transition raises before the event is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class IncidentError(ValueError):
    """An event that the incident's current state does not allow; the message says why."""


class Status(StrEnum):
    DETECTED = "detected"
    TRIAGED = "triaged"
    SIGNIFICANT = "significant"
    NOT_SIGNIFICANT = "not-significant"
    EARLY_WARNING_SENT = "early-warning-sent"
    NOTIFICATION_SENT = "notification-sent"
    PROGRESS_SENT = "progress-sent"
    FINAL_SENT = "final-sent"
    CLOSED = "closed"


class ReportKind(StrEnum):
    EARLY_WARNING = "early-warning"
    NOTIFICATION = "notification"
    INTERMEDIATE = "intermediate"
    FINAL = "final"
    PROGRESS = "progress"


# The status a submitted report moves the incident to (intermediate reports do not change the stage).
_REPORT_STATUS = {
    ReportKind.EARLY_WARNING: Status.EARLY_WARNING_SENT,
    ReportKind.NOTIFICATION: Status.NOTIFICATION_SENT,
    ReportKind.PROGRESS: Status.PROGRESS_SENT,
    ReportKind.FINAL: Status.FINAL_SENT,
}
_STAGE_ORDER = [Status.SIGNIFICANT, Status.EARLY_WARNING_SENT, Status.NOTIFICATION_SENT, Status.PROGRESS_SENT,
                Status.FINAL_SENT]

TRISTATE = ("yes", "no", "unknown")
SEVERITIES = ("low", "medium", "high", "critical")
# Fields `update` may set as text; list fields are appended to.
TEXT_FIELDS = ("title", "severity", "description", "assessment", "impact", "root_cause", "status_update",
               "suspected_malicious", "cross_border")
MAX_ALERT_IOCS = 100  # indicators taken over from alerts; people can add more with `update --ioc`
LIST_FIELDS = ("services", "namespaces", "workloads", "iocs", "mitigations_applied", "mitigations_ongoing")


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | datetime) -> datetime:
    """ISO 8601 with an offset (or 'Z'); a naive time is rejected because its zone would be a guess."""
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise IncidentError(f"not an ISO 8601 time: {value!r}") from None
    if dt.tzinfo is None:
        raise IncidentError(f"time {value!s} has no UTC offset; write e.g. 2026-03-01T09:00:00+01:00 or ...Z")
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 has no UTC instant in Python's range
        raise IncidentError(f"time {value!s} is out of range") from None


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """One append-only change: what happened to which incident, who did it, when."""

    incident_id: str
    seq: int  # 1-based position in this incident's log
    type: str
    actor: str
    at: datetime
    data: dict[str, Any]
    hash: str = ""


@dataclass
class SubmittedReport:
    kind: ReportKind
    submitted_at: datetime
    by: str
    channel: str
    reference: str
    content_sha256: str


@dataclass
class Incident:
    id: str
    title: str = ""
    status: Status = Status.DETECTED
    detected_at: datetime | None = None
    aware_at: datetime | None = None
    handled_at: datetime | None = None
    severity: str = ""
    source: str = "manual"
    dedup_key: str | None = None
    last_alert_at: datetime | None = None
    alert_count: int = 0
    suspected_malicious: str = "unknown"
    cross_border: str = "unknown"
    description: str = ""
    assessment: str = ""
    impact: str = ""
    root_cause: str = ""
    status_update: str = ""
    services: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    workloads: list[str] = field(default_factory=list)
    iocs: list[str] = field(default_factory=list)
    mitigations_applied: list[str] = field(default_factory=list)
    mitigations_ongoing: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    reports: list[SubmittedReport] = field(default_factory=list)
    triage: dict[str, Any] | None = None
    version: int = 0

    # -- derived views -------------------------------------------------------------------------------------
    @property
    def significant(self) -> bool:
        return self.status in _STAGE_ORDER or (self.status == Status.CLOSED and self.aware_at is not None
                                                and self._decision == "significant")

    @property
    def _decision(self) -> str | None:
        return (self.triage or {}).get("decision")

    @property
    def is_open(self) -> bool:
        return self.status != Status.CLOSED

    def submitted(self, kind: ReportKind) -> SubmittedReport | None:
        """The first submission of that kind (the one the deadline is measured against)."""
        return next((r for r in self.reports if r.kind == kind), None)

    # -- the fold --------------------------------------------------------------------------------------------
    def apply(self, event: Event) -> Incident:
        """Return the state after `event`; raises IncidentError when the transition is not allowed."""
        handler = getattr(self, "_on_" + event.type.replace("-", "_"), None)
        if handler is None:
            raise IncidentError(f"unknown event type {event.type!r}")
        if event.type != "opened" and self.version == 0:
            raise IncidentError(f"incident {self.id} does not exist")
        if self.status == Status.CLOSED and event.type not in ("report-submitted", "timeline", "evidence"):
            raise IncidentError(f"incident {self.id} is closed")
        new = dataclasses.replace(
            self, services=list(self.services), namespaces=list(self.namespaces), workloads=list(self.workloads),
            iocs=list(self.iocs), mitigations_applied=list(self.mitigations_applied),
            mitigations_ongoing=list(self.mitigations_ongoing), extra=dict(self.extra),
            timeline=list(self.timeline), evidence=list(self.evidence), reports=list(self.reports))
        handler.__func__(new, event)
        new.version = event.seq
        return new

    def _on_opened(self, event: Event) -> None:
        if self.version:
            raise IncidentError(f"incident {self.id} already exists")
        d = event.data
        if not str(d.get("title", "")).strip():
            raise IncidentError("an incident needs a title")
        self.title = d["title"]
        self.detected_at = parse_time(d.get("detected_at") or event.at)
        self.source = d.get("source", "manual")
        self.dedup_key = d.get("dedup_key")
        self._set_fields({k: v for k, v in d.items() if k in TEXT_FIELDS or k in LIST_FIELDS})
        if d.get("aware_at"):
            self.aware_at = parse_time(d["aware_at"])

    def _on_updated(self, event: Event) -> None:
        d = dict(event.data)
        if "aware_at" in d:
            self.aware_at = parse_time(d.pop("aware_at"))
        for key, value in d.pop("extra", {}).items():
            self.extra[str(key)] = str(value)
        self._set_fields(d)

    def _set_fields(self, d: dict[str, Any]) -> None:
        for key, value in d.items():
            if key in LIST_FIELDS:
                values = value if isinstance(value, list) else [value]
                getattr(self, key).extend(str(v) for v in values if str(v) not in getattr(self, key))
            elif key in TEXT_FIELDS:
                value = str(value)
                if key in ("suspected_malicious", "cross_border") and value not in TRISTATE:
                    raise IncidentError(f"{key} must be one of {', '.join(TRISTATE)}, not {value!r}")
                if key == "severity" and value and value not in SEVERITIES:
                    raise IncidentError(f"severity must be one of {', '.join(SEVERITIES)}, not {value!r}")
                setattr(self, key, value)
            else:
                raise IncidentError(f"unknown incident field {key!r}")

    def _on_triaged(self, event: Event) -> None:
        decision = event.data.get("decision")
        if self.status not in (Status.DETECTED, Status.TRIAGED, Status.NOT_SIGNIFICANT):
            raise IncidentError(f"incident {self.id} is already {self.status}; triage happens before reporting")
        self.triage = dict(event.data, by=event.actor, at=iso(event.at))
        if decision is None:
            self.status = Status.TRIAGED
            return
        if decision not in ("significant", "not-significant"):
            raise IncidentError(f"decision must be significant or not-significant, not {decision!r}")
        self.status = Status(decision)
        if decision == "significant" and self.aware_at is None:
            # Art. 23 clocks start at awareness; without a person's entry the decision time is that moment.
            self.aware_at = parse_time(event.data.get("aware_at") or event.at)
        elif event.data.get("aware_at"):
            self.aware_at = parse_time(event.data["aware_at"])

    def _on_timeline(self, event: Event) -> None:
        text = str(event.data.get("text", "")).strip()
        if not text:
            raise IncidentError("a timeline entry needs text")
        at = parse_time(event.data.get("at") or event.at)
        self.timeline.append({"at": iso(at), "text": text, "by": event.actor})
        self.timeline.sort(key=lambda e: parse_time(e["at"]))

    def _on_evidence(self, event: Event) -> None:
        d = event.data
        if not d.get("sha256") or len(d["sha256"]) != 64:
            raise IncidentError("evidence needs its SHA-256")
        self.evidence.append({"name": d.get("name", ""), "sha256": d["sha256"], "size": d.get("size"),
                              "description": d.get("description", ""), "added_at": iso(event.at),
                              "by": event.actor, **({"stored": True} if d.get("stored") else {})})

    def _on_alert(self, event: Event) -> None:
        # A noisy rule can send thousands of alerts into one incident: the record keeps a count, the first
        # alert in the timeline and a bounded set of indicators; every alert itself stays in the alerts table.
        d = event.data
        self.alert_count += 1
        self.last_alert_at = parse_time(d.get("at") or event.at)
        room = max(0, MAX_ALERT_IOCS - len(self.iocs))
        self._set_fields({"namespaces": d.get("namespaces", []), "workloads": d.get("workloads", []),
                          "iocs": [i for i in d.get("iocs", []) if i not in self.iocs][:room]})
        if d.get("summary") and self.alert_count == 1:
            self.timeline.append({"at": iso(self.last_alert_at), "text": d["summary"], "by": event.actor})

    def _on_report_submitted(self, event: Event) -> None:
        d = event.data
        try:
            kind = ReportKind(d.get("kind"))
        except ValueError:
            raise IncidentError(f"unknown report kind {d.get('kind')!r}") from None
        if not self.significant:
            raise IncidentError(f"incident {self.id} is {self.status}; reports are for significant incidents "
                                "(triage it with --decide significant first)")
        if kind == ReportKind.FINAL and self.submitted(ReportKind.NOTIFICATION) is None:
            raise IncidentError("the final report follows the incident notification; submit that first")
        sha = d.get("content_sha256")
        if not isinstance(sha, str) or len(sha) != 64:
            raise IncidentError("a submitted report needs the SHA-256 of what was sent (content_sha256)")
        self.reports.append(SubmittedReport(kind, parse_time(d.get("submitted_at") or event.at), event.actor,
                                            str(d.get("channel", "")), str(d.get("reference", "")), sha))
        target = _REPORT_STATUS.get(kind)
        if self.status != Status.CLOSED and target and _STAGE_ORDER.index(target) > _STAGE_ORDER.index(
                self.status if self.status in _STAGE_ORDER else Status.SIGNIFICANT):
            self.status = target

    def _on_closed(self, event: Event) -> None:
        self.handled_at = parse_time(event.data.get("handled_at") or event.at)
        if event.data.get("reason"):
            self.timeline.append({"at": iso(self.handled_at), "text": "closed: " + event.data["reason"],
                                  "by": event.actor})
        self.status = Status.CLOSED

    # -- (de)serialisation of the projection ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = iso(value)
            elif f.name == "reports":
                value = [dict(dataclasses.asdict(r), kind=str(r.kind), submitted_at=iso(r.submitted_at))
                         for r in value]
            elif isinstance(value, StrEnum):
                value = str(value)
            out[f.name] = value
        out["significant"] = self.significant
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        kwargs = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        for name in ("detected_at", "aware_at", "handled_at", "last_alert_at"):
            if kwargs.get(name):
                kwargs[name] = parse_time(kwargs[name])
        kwargs["status"] = Status(kwargs.get("status", "detected"))
        kwargs["reports"] = [SubmittedReport(ReportKind(r["kind"]), parse_time(r["submitted_at"]), r["by"],
                                             r["channel"], r["reference"], r["content_sha256"])
                             for r in kwargs.get("reports", [])]
        return cls(**kwargs)


def fold(incident_id: str, events: list[Event]) -> Incident:
    """Replay a complete event log (in seq order) into the current state."""
    state = Incident(id=incident_id)
    for event in events:
        state = state.apply(event)
    return state
