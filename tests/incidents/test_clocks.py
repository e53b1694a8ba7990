"""Art. 23(4) deadlines: hours are elapsed time, months are calendar months on the entity's wall clock."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from incident_builders import Builder, significant

from nis2kube.incidents.clocks import add_calendar_months, deadlines, format_left, next_deadline
from nis2kube.incidents.model import ReportKind

BERLIN = ZoneInfo("Europe/Berlin")
SHA = "ab" * 32


def t(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def by_kind(items):
    return {str(d.kind): d for d in items}


def test_no_deadlines_before_significance():
    builder = Builder()
    inc = builder.add("opened", {"title": "Falco: shell in scada pod"})
    assert deadlines(inc, BERLIN) == []
    inc = builder.add("triaged", {"decision": "not-significant", "rationale": "test pod"})
    assert deadlines(inc, BERLIN) == []


def test_decision_time_is_awareness_when_not_entered():
    builder = Builder()
    builder.add("opened", {"title": "x"}, at="2026-05-04T07:00:00+00:00")
    inc = builder.add("triaged", {"decision": "significant"}, at="2026-05-04T09:30:00+00:00")
    assert inc.aware_at == t("2026-05-04T09:30:00+00:00")
    dl = by_kind(deadlines(inc, BERLIN))
    assert dl["early-warning"].due_at == t("2026-05-05T09:30:00+00:00")
    assert dl["notification"].due_at == t("2026-05-07T09:30:00+00:00")


def test_24h_across_spring_forward_keeps_the_instant_and_moves_the_wall_clock():
    # 28 March 2026 12:00 CET; clocks go forward on 29 March 02:00 -> 03:00.
    inc = significant("2026-03-28T12:00:00+01:00").add("updated", {"severity": "high"})
    dl = by_kind(deadlines(inc, BERLIN))
    assert dl["early-warning"].due_at == t("2026-03-29T11:00:00+00:00")
    assert dl["early-warning"].due_at - inc.aware_at == timedelta(hours=24)
    assert dl["early-warning"].due_at.astimezone(BERLIN).hour == 13  # 13:00 CEST on the wall clock
    assert dl["notification"].due_at == t("2026-03-31T11:00:00+00:00")


def test_24h_across_fall_back():
    inc = significant("2026-10-24T12:00:00+02:00").add("updated", {"severity": "high"})
    due = by_kind(deadlines(inc, BERLIN))["early-warning"].due_at
    assert due == t("2026-10-25T10:00:00+00:00")
    assert due.astimezone(BERLIN).strftime("%H:%M %Z") == "11:00 CET"


def test_trust_service_provider_notification_is_24h():
    inc = significant("2026-06-10T15:00:00+02:00").add("updated", {"severity": "low"})
    assert by_kind(deadlines(inc, BERLIN, trust_service_provider=True))["notification"].due_at == t(
        "2026-06-11T13:00:00+00:00")
    assert by_kind(deadlines(inc, BERLIN))["notification"].due_at == t("2026-06-13T13:00:00+00:00")


@pytest.mark.parametrize(("start", "expected"), [
    ("2026-01-31T10:00:00+01:00", "2026-02-28T10:00:00+01:00"),  # 31 Jan + 1 month -> last day of Feb
    ("2028-01-31T10:00:00+01:00", "2028-02-29T10:00:00+01:00"),  # leap year
    ("2026-03-31T10:00:00+02:00", "2026-04-30T10:00:00+02:00"),
    ("2026-12-15T10:00:00+01:00", "2027-01-15T10:00:00+01:00"),  # year change
    ("2026-03-15T10:00:00+01:00", "2026-04-15T10:00:00+02:00"),  # same wall time across spring forward
    ("2026-10-10T10:00:00+02:00", "2026-11-10T10:00:00+01:00"),  # and across fall back
    ("2027-02-28T02:30:00+01:00", "2027-03-28T03:30:00+02:00"),  # 02:30 does not exist on 28 Mar 2027
    ("2026-09-25T02:30:00+02:00", "2026-10-25T02:30:00+02:00"),  # 02:30 twice on 25 Oct 2026: first one
])
def test_calendar_month(start, expected):
    assert add_calendar_months(t(start), 1, BERLIN) == t(expected)


def test_final_report_due_one_month_after_the_notification():
    b = significant("2026-01-30T09:00:00+01:00")
    b.add("report-submitted", {"kind": "early-warning", "content_sha256": SHA}, at="2026-01-30T20:00:00+01:00")
    inc = b.add("report-submitted", {"kind": "notification", "content_sha256": SHA},
                at="2026-01-31T10:00:00+01:00")
    dl = by_kind(deadlines(inc, BERLIN))
    assert dl["early-warning"].state(t("2026-02-10T00:00:00+00:00")) == "met"
    assert dl["final"].due_at == t("2026-02-28T09:00:00+00:00")
    assert "progress report instead" in dl["final"].basis
    assert dl["final"].state(t("2026-03-01T00:00:00+00:00")) == "overdue"


def test_progress_report_rebases_final_on_handling():
    b = significant("2026-01-05T09:00:00+01:00")
    b.add("report-submitted", {"kind": "notification", "content_sha256": SHA}, at="2026-01-06T09:00:00+01:00")
    inc = b.add("report-submitted", {"kind": "progress", "content_sha256": SHA}, at="2026-02-05T09:00:00+01:00")
    dl = by_kind(deadlines(inc, BERLIN))
    assert dl["progress"].state(t("2026-02-06T00:00:00+00:00")) == "met"
    assert dl["final"].due_at is None and dl["final"].state(t("2026-09-01T00:00:00+00:00")) == "pending"
    inc = b.add("closed", {"handled_at": "2026-03-31T18:00:00+02:00"}, at="2026-03-31T18:00:00+02:00")
    assert by_kind(deadlines(inc, BERLIN))["final"].due_at == t("2026-04-30T16:00:00+00:00")


def test_late_submission_is_recorded_as_late():
    b = significant("2026-04-01T08:00:00+00:00")
    inc = b.add("report-submitted", {"kind": "early-warning", "content_sha256": SHA}, at="2026-04-02T09:00:00+00:00")
    assert by_kind(deadlines(inc, BERLIN))["early-warning"].state(t("2026-04-03T00:00:00+00:00")) == "late"


def test_next_deadline_and_formatting():
    inc = significant("2026-04-01T08:00:00+00:00").add("updated", {"severity": "high"})
    now = t("2026-04-02T05:00:00+00:00")
    nxt = next_deadline(deadlines(inc, BERLIN), now)
    assert nxt.kind == ReportKind.EARLY_WARNING and nxt.seconds_left(now) == 3 * 3600
    assert format_left(3 * 3600 + 5 * 60) == "3h 05m left"
    assert format_left(-(2 * 86400 + 3600)) == "overdue 2d 01h"


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2032, 12, 31), timezones=st.just(UTC)))
def test_calendar_month_properties(instant):
    due = add_calendar_months(instant, 1, BERLIN)
    before, after = instant.astimezone(BERLIN), due.astimezone(BERLIN)
    assert (after.year * 12 + after.month) - (before.year * 12 + before.month) == 1
    assert after.day == min(before.day, calendar.monthrange(after.year, after.month)[1])
    wall_shift = datetime.combine(after.date(), after.time()) - datetime.combine(after.date(), before.time())
    assert wall_shift in (timedelta(0), timedelta(hours=1))  # +1 h only when the wall time fell into a DST gap
    assert due > instant


def test_ongoing_at_the_final_due_date_owes_a_progress_report_and_the_final_counts_from_handling():
    # Art. 23(4)(e): still ongoing one month after the notification -> progress report then, final report
    # within one month of handling. No progress report was sent, so that one is missed, not the final.
    b = significant("2026-01-05T09:00:00+01:00")
    b.add("report-submitted", {"kind": "notification", "content_sha256": SHA}, at="2026-01-06T09:00:00+01:00")
    b.add("closed", {"handled_at": "2026-03-10T12:00:00+01:00"}, at="2026-03-10T12:00:00+01:00")
    inc = b.add("report-submitted", {"kind": "final", "content_sha256": SHA}, at="2026-04-01T09:00:00+02:00")
    dl = by_kind(deadlines(inc, BERLIN))
    now = t("2026-04-02T00:00:00+00:00")
    assert dl["progress"].due_at == t("2026-02-06T08:00:00+00:00") and dl["progress"].state(now) == "overdue"
    assert dl["final"].due_at == t("2026-04-10T10:00:00+00:00") and dl["final"].state(now) == "met"


def test_a_final_report_sent_on_time_while_ongoing_still_counts_from_the_notification():
    b = significant("2026-01-05T09:00:00+01:00")
    b.add("report-submitted", {"kind": "notification", "content_sha256": SHA}, at="2026-01-06T09:00:00+01:00")
    b.add("report-submitted", {"kind": "final", "content_sha256": SHA}, at="2026-02-05T09:00:00+01:00")
    inc = b.add("closed", {"handled_at": "2026-03-10T12:00:00+01:00"}, at="2026-03-10T12:00:00+01:00")
    assert {k: d.state(t("2026-04-01T00:00:00+00:00")) for k, d in by_kind(deadlines(inc, BERLIN)).items()} == {
        "early-warning": "overdue", "notification": "met", "final": "met"}


def test_corrected_awareness_and_a_late_notification_move_the_deadlines():
    b = significant("2026-06-10T15:00:00+02:00")
    inc = b.add("updated", {"aware_at": "2026-06-09T15:00:00+02:00"}, at="2026-06-10T16:00:00+02:00")
    dl = by_kind(deadlines(inc, BERLIN))
    assert dl["early-warning"].due_at == t("2026-06-10T13:00:00+00:00")
    assert dl["early-warning"].state(t("2026-06-10T14:00:00+00:00")) == "overdue"
    inc = b.add("report-submitted", {"kind": "notification", "content_sha256": SHA, "submitted_at":
                                     "2026-06-14T10:00:00+02:00"}, at="2026-06-14T10:00:00+02:00")
    dl = by_kind(deadlines(inc, BERLIN))
    assert dl["notification"].state(t("2026-06-15T00:00:00+00:00")) == "late"
    assert dl["final"].due_at == t("2026-07-14T08:00:00+00:00")  # from the actual submission, not the 72 h
