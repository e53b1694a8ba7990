"""The Art. 23 state machine as enforced by Incident.apply."""

from __future__ import annotations

import pytest
from incident_builders import Builder, significant

from nis2kube.incidents.model import MAX_ALERT_IOCS, Event, IncidentError, Status, fold

SHA = "ef" * 32


def send(b, kind: str):
    return b.add("report-submitted", {"kind": kind, "content_sha256": SHA})


def test_full_lifecycle():
    b = significant("2026-02-02T07:15:00+01:00")
    assert send(b, "early-warning").status == Status.EARLY_WARNING_SENT
    assert send(b, "intermediate").status == Status.EARLY_WARNING_SENT
    assert send(b, "notification").status == Status.NOTIFICATION_SENT
    assert send(b, "early-warning").status == Status.NOTIFICATION_SENT  # a late one never moves the stage back
    assert send(b, "final").status == Status.FINAL_SENT
    inc = b.add("closed", {"reason": "eradicated"})
    assert inc.status == Status.CLOSED and inc.significant and not inc.is_open
    assert [r.kind for r in inc.reports] == ["early-warning", "intermediate", "notification", "early-warning", "final"]
    assert inc.version == 8


def test_reports_need_a_significant_decision():
    builder = Builder()
    builder.add("opened", {"title": "x"})
    with pytest.raises(IncidentError, match="reports are for significant incidents"):
        builder.add("report-submitted", {"kind": "early-warning", "content_sha256": SHA})
    builder.events.pop()
    inc = builder.add("triaged", {"answers": {}, "recommendation": {"recommendation": "undetermined"}})
    assert inc.status == Status.TRIAGED and inc.aware_at is None


def test_final_report_requires_the_notification():
    b = significant("2026-02-02T07:15:00+01:00")
    with pytest.raises(IncidentError, match="follows the incident notification"):
        b.add("report-submitted", {"kind": "final", "content_sha256": SHA})


def test_not_significant_can_be_escalated_and_aware_at_is_entered_by_a_person():
    builder = Builder()
    builder.add("opened", {"title": "x"}, at="2026-05-01T08:00:00+00:00")
    builder.add("triaged", {"decision": "not-significant"}, at="2026-05-01T09:00:00+00:00")
    inc = builder.add("triaged", {"decision": "significant", "aware_at": "2026-05-02T06:00:00+02:00"},
                      at="2026-05-02T10:00:00+00:00")
    assert inc.status == Status.SIGNIFICANT and inc.aware_at.isoformat() == "2026-05-02T04:00:00+00:00"


def test_triage_after_reporting_started_is_refused():
    b = significant("2026-02-02T07:15:00+01:00")
    b.add("report-submitted", {"kind": "early-warning", "content_sha256": SHA})
    with pytest.raises(IncidentError, match="already early-warning-sent"):
        b.add("triaged", {"decision": "not-significant"})


@pytest.mark.parametrize(("data", "message"), [
    ({"suspected_malicious": "maybe"}, "suspected_malicious must be one of"),
    ({"severity": "urgent"}, "severity must be one of"),
    ({"colour": "red"}, "unknown incident field"),
    ({"aware_at": "2026-01-01T10:00:00"}, "has no UTC offset"),
])
def test_invalid_updates(data, message):
    builder = Builder()
    builder.add("opened", {"title": "x"})
    with pytest.raises(IncidentError, match=message):
        builder.add("updated", data)


def test_closed_incident_refuses_changes_but_accepts_late_reports_and_evidence():
    b = significant("2026-02-02T07:15:00+01:00")
    b.add("report-submitted", {"kind": "notification", "content_sha256": SHA})
    b.add("closed", {})
    with pytest.raises(IncidentError, match="is closed"):
        b.add("updated", {"impact": "x"})
    b.events.pop()
    assert b.add("evidence", {"name": "pcap", "sha256": SHA}).evidence[0]["sha256"] == SHA
    assert b.add("report-submitted", {"kind": "final", "content_sha256": SHA}).status == Status.CLOSED


def test_first_event_must_be_opened():
    builder = Builder()
    with pytest.raises(IncidentError, match="does not exist"):
        builder.add("updated", {"impact": "x"})


def test_round_trip_through_the_projection():
    from nis2kube.incidents.model import Incident

    b = significant("2026-02-02T07:15:00+01:00")
    b.add("timeline", {"text": "isolated node", "at": "2026-02-02T08:00:00+01:00"})
    inc = b.add("report-submitted", {"kind": "early-warning", "content_sha256": SHA})
    assert Incident.from_dict(inc.to_dict()) == inc


def test_a_noisy_rule_keeps_the_record_bounded():
    b = Builder()
    b.add("opened", {"title": "Terminal shell in container on ot/scada-gw"})
    for i in range(300):
        b.events.append(Event(b.id, len(b.events) + 1, "alert", "webhook:falco", b.events[0].at, {
            "summary": f"Falco: shell #{i}", "workloads": ["ot/scada-gw"], "iocs": [f"proc.cmdline=sh -c {i}"]}))
    inc = fold(b.id, b.events)
    assert inc.alert_count == 300 and inc.workloads == ["ot/scada-gw"]
    assert len(inc.timeline) == 1 and inc.timeline[0]["text"] == "Falco: shell #0"
    assert len(inc.iocs) == MAX_ALERT_IOCS and inc.iocs[0] == "proc.cmdline=sh -c 0"


def test_a_report_without_its_content_hash_is_refused():
    b = significant("2026-02-02T07:15:00+01:00")
    with pytest.raises(IncidentError, match="needs the SHA-256"):
        b.add("report-submitted", {"kind": "early-warning"})


def test_out_of_range_times_are_a_clear_error():
    from nis2kube.incidents.model import parse_time

    with pytest.raises(IncidentError, match="out of range"):
        parse_time("0001-01-01T00:00:00+01:00")
