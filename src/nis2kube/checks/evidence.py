"""Organisational evidence no cluster object can show, attested in the `--evidence` file.

NIS2 asks for regular security testing (IR 2024/2690 6.5), incident response with runbooks and people on
call (Art. 21(2)(b), IR 3.5), and the ability to notify the CSIRT within 24 hours (Art. 23). The team
attests each in `--evidence`; these checks judge presence and age, so a report shows a stale pen test or
a runbook nobody has reviewed in two years. Without the file every check here is not assessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from nis2kube.checks.registry import CheckContext, InputError, check
from nis2kube.evidence_file import evidence, today
from nis2kube.findings import Finding, Severity

NO_FILE = "no --evidence file given; attest it there (see docs/checks-platform-b.md)"
DEFAULT_PENTEST_DAYS = 365
DEFAULT_REVIEW_DAYS = 365


def max_days(ctx: CheckContext, key: str, default: int) -> int:
    value = ctx.config.section("evidence").get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"nis2kube.yaml evidence.{key}: {value!r} is not a whole number of days >= 1")
    return value


def judge_date(ctx: CheckContext, what: str, when: dt.date | None, limit: int, detail: str,
               evidence_data: dict) -> Finding:
    """Pass when `when` is at most `limit` days old; a missing or future date fails."""
    on = today(ctx)
    if when is None:
        return ctx.fail(None, f"{what} attested without a date{detail}", evidence=evidence_data)
    age = (on - when).days
    data = {**evidence_data, "date": when.isoformat(), "age_days": age, "max_age_days": limit}
    if age < 0:
        return ctx.fail(None, f"{what} is dated {when.isoformat()}, in the future{detail}", evidence=data)
    if age > limit:
        return ctx.fail(None, f"{what} dates from {when.isoformat()}, {age} days ago (limit {limit}){detail}",
                        evidence=data)
    return ctx.passed(None, f"{what}: {when.isoformat()} ({age} days ago){detail}", evidence=data)


@check(
    id="evidence.penetration-test",
    title="A penetration test of the platform is at most 12 months old",
    severity=Severity.MEDIUM,
    measures=("ir2690.6.5", "art21.2.f", "ir2690.7"),
    remediation="Commission a penetration test covering the cluster and its workloads; record date, report "
    "location and tester under penetration_test in the evidence file.",
)
def penetration_test(ctx: CheckContext) -> Iterator[Finding]:
    """evidence.pentest_max_age_days (365) bounds the age of penetration_test.date."""
    data = evidence(ctx)
    if data is None:
        yield ctx.not_assessed(None, NO_FILE)
        return
    section = data.get("penetration_test")
    if section is None:
        yield ctx.fail(None, "no penetration test attested (penetration_test is missing from the evidence file)")
        return
    limit = max_days(ctx, "pentest_max_age_days", DEFAULT_PENTEST_DAYS)
    by = f" by {section['by']}" if section.get("by") else ""
    report = f", report {section['report']}" if section.get("report") else ""
    yield judge_date(ctx, "last penetration test", section.get("date"), limit, f"{by}{report}",
                     {"section": "penetration_test"})


def _reviewed(ctx: CheckContext, section_name: str, what: str, present: str) -> Iterator[Finding]:
    data = evidence(ctx)
    if data is None:
        yield ctx.not_assessed(None, NO_FILE)
        return
    section = data.get(section_name)
    if section is None:
        yield ctx.fail(None, f"no {what} attested ({section_name} is missing from the evidence file)")
        return
    limit = max_days(ctx, "review_max_age_days", DEFAULT_REVIEW_DAYS)
    yield judge_date(ctx, f"{what} ({present.format(**section)}) last reviewed", section.get("reviewed"), limit, "",
                     {"section": section_name})


@check(
    id="evidence.incident-runbook",
    title="An incident runbook exists and was reviewed within a year",
    severity=Severity.MEDIUM,
    measures=("art21.2.b", "ir2690.3.5", "ir2690.3.6"),
    remediation="Write down how the team handles a cluster incident (triage, containment, evidence, Art. 23 "
    "notification) and record its location and review date under incident_runbook.",
)
def incident_runbook(ctx: CheckContext) -> Iterator[Finding]:
    """incident_runbook.location must be attested; incident_runbook.reviewed within review_max_age_days (365)."""
    yield from _reviewed(ctx, "incident_runbook", "incident runbook", "{location}")


@check(
    id="evidence.on-call",
    title="An on-call rotation is defined and reviewed",
    severity=Severity.MEDIUM,
    measures=("art21.2.b", "ir2690.3.5", "art23"),
    remediation="Define who answers alerts around the clock (the 24-hour early warning depends on it); record the "
    "rotation and its review date under on_call.",
)
def on_call(ctx: CheckContext) -> Iterator[Finding]:
    """An Art. 23 early warning is due within 24 hours: somebody must be reachable at night and on Sundays."""
    yield from _reviewed(ctx, "on_call", "on-call rotation", "{rotation}")


@check(
    id="evidence.csirt-contact",
    title="The CSIRT / competent authority contact is known and current",
    severity=Severity.MEDIUM,
    measures=("art23", "ir2690.3.3"),
    remediation="Record the national CSIRT's reporting channel (portal, email or phone) under csirt_contact and "
    "review it yearly; `nis2kube incident` drafts the reports it receives.",
)
def csirt_contact(ctx: CheckContext) -> Iterator[Finding]:
    """A name without a portal, email or phone does not help at 3 a.m.; the contact is reviewed yearly."""
    data = evidence(ctx)
    section = (data or {}).get("csirt_contact")
    if data is not None and section is not None and not any(section.get(k) for k in ("portal", "email", "phone")):
        yield ctx.fail(None, f"CSIRT contact {section['name']} has no reporting channel (portal, email or phone)",
                       evidence={"section": "csirt_contact"})
        return
    yield from _reviewed(ctx, "csirt_contact", "CSIRT contact", "{name}")
