"""Art. 23(4) deadlines, computed from the record (never stored, so a corrected time moves them).

Hour deadlines (24 h, 72 h) are elapsed time, so they are added in UTC: a daylight-saving change inside
the window moves the local wall-clock time of the deadline, not its instant. "One month" is a calendar
month in the entity's time zone (the law does not say 30 days): same local day and time next month,
clamped to the month's last day (31 Jan -> 28/29 Feb, 31 Mar -> 30 Apr), resolved to the later instant
when the local time falls in a DST gap and to the first occurrence when it is ambiguous. Keeping the time
of day is deliberate: it is never later than the end-of-day reading of month periods (Regulation (EEC,
Euratom) No 1182/71 Art. 3(2)(c), which also clamps to the month's last day), so a report on time here is
on time under either reading. Weekend and holiday extensions (its Art. 3(4)) are national and not applied.

The final report runs from the actual submission of the notification (Art. 23(4)(d) "after the
submission"), so there is no final deadline before the notification is submitted, and a late notification
moves it. A deadline that passes stays in the list as overdue until its report is recorded (then "late").
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from nis2kube.incidents.model import UTC, Incident, ReportKind, SubmittedReport

EARLY_WARNING_HOURS = 24
NOTIFICATION_HOURS = 72
TSP_NOTIFICATION_HOURS = 24  # Art. 23(4)(b) derogation for trust service providers


@dataclass(frozen=True)
class Deadline:
    kind: ReportKind
    due_at: datetime | None  # None: the due date is not known yet (e.g. final report after handling)
    basis: str  # what the clock runs from, in words for the user
    met_at: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.met_at is not None:
            return "met" if self.due_at is None or self.met_at <= self.due_at else "late"
        if self.due_at is None:
            return "pending"
        return "overdue" if now > self.due_at else "open"

    def seconds_left(self, now: datetime) -> float | None:
        return None if self.due_at is None else (self.due_at - now).total_seconds()


def add_calendar_months(instant: datetime, months: int, tz: ZoneInfo) -> datetime:
    """`instant` plus calendar months, counted on the wall clock of `tz`; returns UTC."""
    local = instant.astimezone(tz)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    wall = local.replace(year=year, month=month, day=day, tzinfo=None)
    # PEP 495 fold=0: an ambiguous wall time is its first occurrence; a wall time inside a DST gap is read
    # with the offset before the change, which lands just past the gap (02:30 -> 03:30 summer time).
    candidate = wall.replace(tzinfo=tz, fold=0)
    return candidate.astimezone(UTC)


def deadlines(incident: Incident, tz: ZoneInfo, trust_service_provider: bool = False) -> list[Deadline]:
    """Every reporting deadline that applies now; empty until the incident is decided significant."""
    if not incident.significant or incident.aware_at is None:
        return []
    aware = incident.aware_at
    ew = incident.submitted(ReportKind.EARLY_WARNING)
    notif = incident.submitted(ReportKind.NOTIFICATION)
    hours = TSP_NOTIFICATION_HOURS if trust_service_provider else NOTIFICATION_HOURS
    out = [
        Deadline(ReportKind.EARLY_WARNING, aware + timedelta(hours=EARLY_WARNING_HOURS),
                 "24 h after becoming aware", ew.submitted_at if ew else None),
        Deadline(ReportKind.NOTIFICATION, aware + timedelta(hours=hours),
                 f"{hours} h after becoming aware", notif.submitted_at if notif else None),
    ]
    if notif is None:
        return out
    final = incident.submitted(ReportKind.FINAL)
    progress = incident.submitted(ReportKind.PROGRESS)
    first_due = add_calendar_months(notif.submitted_at, 1, tz)
    if not _progress_regime(incident, first_due, progress, final):
        basis = "one month after the notification"
        if incident.handled_at is None:
            basis += " (a progress report instead while the incident is still ongoing)"
        out.append(Deadline(ReportKind.FINAL, first_due, basis, final.submitted_at if final else None))
    else:
        out.append(Deadline(ReportKind.PROGRESS, first_due, "one month after the notification (incident ongoing)",
                            progress.submitted_at if progress else None))
        due = add_calendar_months(incident.handled_at, 1, tz) if incident.handled_at else None
        out.append(Deadline(ReportKind.FINAL, due, "one month after the incident was handled",
                            final.submitted_at if final else None))
    return out


def _progress_regime(incident: Incident, first_due: datetime, progress: SubmittedReport | None,
                     final: SubmittedReport | None) -> bool:
    """Art. 23(4)(e) applies: a progress report was sent, or the incident was still ongoing when the final
    report was due and no final report had been sent by then (so a progress report was owed at that time)."""
    if progress is not None:
        return True
    handled = incident.handled_at
    return handled is not None and handled > first_due and (final is None or final.submitted_at > first_due)


def next_deadline(items: list[Deadline], now: datetime) -> Deadline | None:
    """The earliest deadline not yet met (overdue ones included), or None."""
    pending = [d for d in items if d.met_at is None and d.due_at is not None]
    return min(pending, key=lambda d: d.due_at, default=None)  # type: ignore[arg-type,return-value]


def format_left(seconds: float) -> str:
    """'3h 05m left' / 'overdue 2d 01h'; minutes resolution is what people act on."""
    sign = seconds < 0
    minutes = int(abs(seconds) // 60)
    days, rem = divmod(minutes, 1440)
    hours, mins = divmod(rem, 60)
    text = f"{days}d {hours:02d}h" if days else f"{hours}h {mins:02d}m"
    return f"overdue {text}" if sign else f"{text} left"
