"""`nis2kube incident`: the NIS2 Art. 23 workflow from the terminal (record, triage, clocks, reports)."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import typer

from nis2kube.cli.common import err_console, fail_usage, write_raw

EPILOG = """
**Examples**

* `nis2kube incident open "Ransomware on line-3 HMI gateway" --namespace ot-line3 --severity high`
* `nis2kube incident triage INC-20261122-3f9a2c --malicious-access yes --decide significant --rationale "PLC access"`
* `nis2kube incident list` - open incidents with the time left to each Art. 23 deadline
* `nis2kube incident report INC-20261122-3f9a2c --kind early-warning -o pdf --out ew.pdf --profile de`
* `nis2kube incident submit INC-20261122-3f9a2c --kind early-warning --channel "BSI portal" --reference M-4711`
"""

app = typer.Typer(help="NIS2 Art. 23 incidents: clocks, triage, report drafts, submissions.", epilog=EPILOG,
                  no_args_is_help=True, rich_markup_mode="markdown")
timeline_app = typer.Typer(help="The incident's timeline.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence attachments, stored with their SHA-256.", no_args_is_help=True)
app.add_typer(timeline_app, name="timeline")
app.add_typer(evidence_app, name="evidence")

REPORT_KINDS = ("early-warning", "notification", "intermediate", "final", "progress")
MAX_EVIDENCE_BYTES = 64 * 1024 * 1024  # larger files stay in the evidence store; --hash-only records them

Db = Annotated[str | None, typer.Option("--db", envvar="NIS2KUBE_DB", help=(
    "Database URL: sqlite:///path.db or postgresql://user@host/db. Default: "
    "$XDG_DATA_HOME/nis2kube/nis2kube.db."))]
ConfigOpt = Annotated[str | None, typer.Option("--config", help="Config file (default: ./nis2kube.yaml).")]
Actor = Annotated[str | None, typer.Option("--actor", envvar="NIS2KUBE_ACTOR",
                                           help="Who makes the change (default: the login name).")]
IncidentId = Annotated[str, typer.Argument(help="Incident id, e.g. INC-20261122-3f9a2c.")]
Tri = Annotated[str | None, typer.Option(help="yes, no or unknown.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="incident")


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn expected problems into one clear line and exit code 2."""
    from nis2kube.config import ConfigError
    from nis2kube.incidents.model import IncidentError
    from nis2kube.incidents.reports import ReportError
    from nis2kube.store import NotFound, StoreError

    try:
        yield
    except (IncidentError, NotFound, StoreError, ReportError, ConfigError, OSError) as exc:
        message = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename else str(exc)
        raise fail_usage(message.strip("'\"")) from None


def _ctx(db: str | None, config: str | None):
    from nis2kube.config import find_config, load_config
    from nis2kube.incidents.profile import profile_from_config
    from nis2kube.store import Store

    entity = profile_from_config(load_config(find_config(config)))
    return Store(db), entity


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _bool(value: str | None, name: str) -> bool | None:
    if value is None or value == "unknown":
        return None
    if value in ("yes", "no"):
        return value == "yes"
    raise fail_usage(f"--{name.replace('_', '-')} must be yes, no or unknown")


def _local(dt: datetime | None, tz) -> str:
    return "-" if dt is None else dt.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _fields(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, [], "", {})}


@app.command("open")
def open_(
    title: Annotated[str, typer.Argument(help="Short title of the incident.")],
    severity: Annotated[str | None, typer.Option(help="low, medium, high or critical.")] = None,
    detected_at: Annotated[str | None, typer.Option(help="ISO 8601 with offset; default now.")] = None,
    aware_at: Annotated[str | None, typer.Option(
        help="When the entity became aware (starts the Art. 23 clocks); default: the significance decision.")] = None,
    service: Annotated[list[str] | None, typer.Option(help="Affected service (repeatable).")] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", "-n", help="Affected namespace.")] = None,
    workload: Annotated[list[str] | None, typer.Option(help="Affected workload, e.g. ot/Deployment/scada.")] = None,
    description: Annotated[str | None, typer.Option(help="What happened.")] = None,
    malicious: Tri = None, cross_border: Tri = None,
    db: Db = None, config: ConfigOpt = None, actor: Actor = None,
) -> None:
    """Record a new incident (status: detected)."""
    with _errors():
        store, _ = _ctx(db, config)
        inc = store.create(_actor(actor), _fields(
            title=title, severity=severity, detected_at=detected_at, aware_at=aware_at, services=service,
            namespaces=namespace, workloads=workload, description=description, suspected_malicious=malicious,
            cross_border=cross_border))
    typer.echo(inc.id)


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", "-A", help="Include closed incidents.")] = False,
    output: Annotated[str, typer.Option("-o", "--output", help="table or json.")] = "table",
    db: Db = None, config: ConfigOpt = None,
) -> None:
    """Open incidents with the time left to each deadline (red under 4 h, overdue marked)."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    from nis2kube.incidents.clocks import deadlines, format_left
    from nis2kube.incidents.model import iso, utcnow

    with _errors():
        store, entity = _ctx(db, config)
        items = store.list(include_closed=True) if all_ else store.list_reportable()
    now = utcnow()
    if output == "json":
        typer.echo(orjson.dumps([{**i.to_dict(), "deadlines": [
            {"report": str(d.kind), "due_at": iso(d.due_at), "state": d.state(now),
             "seconds_left": d.seconds_left(now)} for d in deadlines(i, entity.timezone,
                                                                     entity.trust_service_provider)]}
            for i in items], option=orjson.OPT_INDENT_2).decode())
        return
    if output != "table":
        raise fail_usage("--output must be table or json")
    table = Table(title=f"Incidents (times in {entity.tz_name})", show_lines=False)
    table.add_column("ID", no_wrap=True)
    for col in ("Title", "Status", "Aware", "Deadlines"):
        table.add_column(col, overflow="fold")
    for inc in items:
        cells = []
        for d in deadlines(inc, entity.timezone, entity.trust_service_provider):
            state = d.state(now)
            if state in ("met", "late"):
                cells.append(f"[green]{d.kind}: {state}[/]" if state == "met" else f"[yellow]{d.kind}: late[/]")
            elif d.due_at is None:
                cells.append(f"{d.kind}: pending ({d.basis})")
            else:
                left = d.seconds_left(now) or 0.0
                style = "bold red" if left < 0 else ("red" if left < 4 * 3600 else "")
                text = f"{d.kind}: {format_left(left)} ({_local(d.due_at, entity.timezone)})"
                cells.append(f"[{style}]{text}[/]" if style else text)
        table.add_row(inc.id, inc.title, str(inc.status), _local(inc.aware_at, entity.timezone),
                      "\n".join(cells) or "-")
    Console(highlight=False).print(table if items else "No open incidents.")


@app.command("show")
def show(
    incident_id: IncidentId,
    output: Annotated[str, typer.Option("-o", "--output", help="text or json.")] = "text",
    events: Annotated[bool, typer.Option("--events", help="Also print the audit trail (every event).")] = False,
    db: Db = None, config: ConfigOpt = None,
) -> None:
    """One incident: its record, deadlines and (with --events) the audit trail."""
    import orjson

    from nis2kube.incidents.clocks import deadlines
    from nis2kube.incidents.model import iso, utcnow

    with _errors():
        store, entity = _ctx(db, config)
        inc = store.get(incident_id)
        trail = store.events(incident_id) if events else []
    now = utcnow()
    dls = deadlines(inc, entity.timezone, entity.trust_service_provider)
    if output == "json":
        data = inc.to_dict()
        data["deadlines"] = [{"report": str(d.kind), "due_at": iso(d.due_at), "state": d.state(now)} for d in dls]
        if events:
            data["events"] = [{"seq": e.seq, "type": e.type, "actor": e.actor, "at": iso(e.at), "data": e.data,
                               "hash": e.hash} for e in trail]
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    tz = entity.timezone
    lines = [f"{inc.id}  {inc.title}", f"  status: {inc.status}   severity: {inc.severity or '-'}",
             f"  detected: {_local(inc.detected_at, tz)}   aware: {_local(inc.aware_at, tz)}"
             f"   handled: {_local(inc.handled_at, tz)}",
             f"  suspected malicious: {inc.suspected_malicious}   cross-border: {inc.cross_border}"]
    for name in ("services", "namespaces", "workloads", "iocs", "mitigations_applied", "mitigations_ongoing"):
        if getattr(inc, name):
            lines.append(f"  {name.replace('_', ' ')}: {', '.join(getattr(inc, name))}")
    if inc.triage:
        lines.append(f"  triage: {inc.triage.get('decision') or 'no decision'} by {inc.triage.get('by')} "
                     f"(recommended: {inc.triage.get('recommendation', {}).get('recommendation')})")
    lines += [f"  deadline {d.kind}: {_local(d.due_at, tz) if d.due_at else d.basis} [{d.state(now)}]"
              for d in dls]
    lines += [f"  report {r.kind}: {_local(r.submitted_at, tz)} via {r.channel} ref {r.reference} "
              f"sha256 {r.content_sha256}" for r in inc.reports]
    lines += [f"  evidence {e['name']}: sha256 {e['sha256']}" for e in inc.evidence]
    lines += [f"  {e['at']}  {e['text']} ({e['by']})" for e in inc.timeline]
    lines += [f"  #{e.seq} {iso(e.at)} {e.actor} {e.type} {orjson.dumps(e.data).decode()}" for e in trail]
    typer.echo("\n".join(lines))


@app.command("triage")
def triage(
    incident_id: IncidentId,
    severe_disruption: Tri = None, damage_to_others: Tri = None,
    financial_loss: Annotated[float | None, typer.Option(help="Direct financial loss estimate, EUR.")] = None,
    trade_secrets: Tri = None, death: Tri = None, health_damage: Tri = None, malicious_access: Tri = None,
    recurrence_count: Annotated[int | None, typer.Option(
        help="Incidents with the same apparent root cause in the last 6 months, this one included.")] = None,
    recurrence_loss: Annotated[float | None, typer.Option(help="Their combined financial loss, EUR.")] = None,
    decide: Annotated[str | None, typer.Option(help="Record the decision: significant or not-significant.")] = None,
    rationale: Annotated[str | None, typer.Option(help="Why (kept even for 'not significant').")] = None,
    aware_at: Annotated[str | None, typer.Option(help="When the entity became aware (default: now, on "
                                                      "a significant decision).")] = None,
    db: Db = None, config: ConfigOpt = None, actor: Actor = None,
) -> None:
    """Answer the Art. 23(3) / IR 2024/2690 questions, get a recommendation, record the decision."""
    from nis2kube.incidents.triage import QUESTIONS, TriageAnswers, recommend

    if decide not in (None, "significant", "not-significant"):
        raise fail_usage("--decide must be significant or not-significant")
    with _errors():
        store, entity = _ctx(db, config)
        inc = store.get(incident_id)
        previous = (inc.triage or {}).get("answers", {})
        given = {"severe_disruption": _bool(severe_disruption, "severe_disruption"),
                 "damage_to_others": _bool(damage_to_others, "damage_to_others"),
                 "financial_loss_eur": financial_loss, "trade_secrets": _bool(trade_secrets, "trade_secrets"),
                 "death": _bool(death, "death"), "health_damage": _bool(health_damage, "health_damage"),
                 "malicious_access": _bool(malicious_access, "malicious_access"),
                 "recurrence_count": recurrence_count, "recurrence_loss_eur": recurrence_loss}
        answers = TriageAnswers(**{k: given[k] if given[k] is not None else previous.get(k) for k in given})
        rec = recommend(answers, entity.annual_turnover_eur)
        store.append(incident_id, "triaged", _actor(actor), _fields(
            answers=answers.to_dict(), recommendation=rec.to_dict(), decision=decide, rationale=rationale,
            aware_at=aware_at))
        inc = store.get(incident_id)
    typer.echo(f"recommendation: {rec.label}")
    for reason in rec.reasons:
        typer.echo(f"  - {reason}")
    if rec.unanswered:
        typer.echo("unanswered:")
        for name in dict.fromkeys(rec.unanswered):
            typer.echo(f"  --{name.replace('_eur', '').replace('_', '-')}: {QUESTIONS[name][1]}")
    typer.echo(f"status: {inc.status}" + (f" (aware since {_local(inc.aware_at, entity.timezone)})"
                                          if inc.aware_at else ""))


@app.command("update")
def update(
    incident_id: IncidentId,
    title: Annotated[str | None, typer.Option()] = None,
    severity: Annotated[str | None, typer.Option(help="low, medium, high or critical.")] = None,
    description: Annotated[str | None, typer.Option(help="Detailed description (final report).")] = None,
    assessment: Annotated[str | None, typer.Option(help="Initial assessment (notification).")] = None,
    impact: Annotated[str | None, typer.Option()] = None,
    root_cause: Annotated[str | None, typer.Option(help="Type of threat or root cause.")] = None,
    status_update: Annotated[str | None, typer.Option(help="Status for intermediate/progress reports.")] = None,
    malicious: Tri = None, cross_border: Tri = None,
    aware_at: Annotated[str | None, typer.Option(help="Correct the awareness time (ISO 8601 with offset).")] = None,
    service: Annotated[list[str] | None, typer.Option(help="Add an affected service.")] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", "-n", help="Add a namespace.")] = None,
    workload: Annotated[list[str] | None, typer.Option(help="Add a workload.")] = None,
    ioc: Annotated[list[str] | None, typer.Option(help="Add an indicator of compromise.")] = None,
    mitigation_applied: Annotated[list[str] | None, typer.Option(help="Add an applied measure.")] = None,
    mitigation_ongoing: Annotated[list[str] | None, typer.Option(help="Add an ongoing measure.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Profile field key=value (e.g. "
                                                                 "registration_number=...).")] = None,
    db: Db = None, config: ConfigOpt = None, actor: Actor = None,
) -> None:
    """Change the record; each call is one audited event."""
    extra = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise fail_usage(f"--set expects key=value, got {item!r}")
        extra[key.strip()] = value
    data = _fields(title=title, severity=severity, description=description, assessment=assessment, impact=impact,
                   root_cause=root_cause, status_update=status_update, suspected_malicious=malicious,
                   cross_border=cross_border, aware_at=aware_at, services=service, namespaces=namespace,
                   workloads=workload, iocs=ioc, mitigations_applied=mitigation_applied,
                   mitigations_ongoing=mitigation_ongoing, extra=extra)
    if not data:
        raise fail_usage("nothing to update; see --help for the fields")
    with _errors():
        store, _ = _ctx(db, config)
        inc = store.append(incident_id, "updated", _actor(actor), data)
    typer.echo(f"{inc.id} updated (event #{inc.version})")


@timeline_app.command("add")
def timeline_add(
    incident_id: IncidentId, text: Annotated[str, typer.Argument(help="What happened.")],
    at: Annotated[str | None, typer.Option(help="When (ISO 8601 with offset); default now.")] = None,
    db: Db = None, config: ConfigOpt = None, actor: Actor = None,
) -> None:
    """Add a timeline entry."""
    with _errors():
        store, _ = _ctx(db, config)
        inc = store.append(incident_id, "timeline", _actor(actor), _fields(text=text, at=at))
    typer.echo(f"{inc.id}: timeline entry added (event #{inc.version})")


@evidence_app.command("add")
def evidence_add(
    incident_id: IncidentId, path: Annotated[str, typer.Argument(help="The evidence file.")],
    description: Annotated[str | None, typer.Option(help="What it shows.")] = None,
    hash_only: Annotated[bool, typer.Option(
        "--hash-only", help="Record only name, size and SHA-256 (the file stays where you keep it, e.g. a pcap "
        f"over {MAX_EVIDENCE_BYTES >> 20} MiB or personal data).")] = False,
    db: Db = None, config: ConfigOpt = None, actor: Actor = None,
) -> None:
    """Attach an evidence file: its bytes are kept in the incident database with their SHA-256."""
    with _errors():
        digest, size, chunks = hashlib.sha256(), 0, []
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
                if not hash_only:
                    if size > MAX_EVIDENCE_BYTES:
                        raise fail_usage(f"{path}: over {MAX_EVIDENCE_BYTES >> 20} MiB; keep it in your evidence "
                                         "store and record it with --hash-only")
                    chunks.append(chunk)
        store, _ = _ctx(db, config)
        inc = store.add_evidence(incident_id, _actor(actor), os.path.basename(path),
                                 None if hash_only else b"".join(chunks), digest.hexdigest(), size, description)
    kept = "recorded (hash only)" if hash_only else "stored"
    typer.echo(f"{inc.id}: evidence {os.path.basename(path)} {kept}, sha256 {digest.hexdigest()}")


@evidence_app.command("get")
def evidence_get(
    incident_id: IncidentId,
    ref: Annotated[str, typer.Argument(help="The evidence's SHA-256 (or a unique prefix) or its file name.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Write it to this file ('-' = stdout).")],
    db: Db = None, config: ConfigOpt = None,
) -> None:
    """Write a stored evidence file back out, checked against its SHA-256."""
    with _errors():
        store, _ = _ctx(db, config)
        inc = store.get(incident_id)
        matches = [e for e in inc.evidence if e["name"] == ref or e["sha256"].startswith(ref.lower())]
        if len({e["sha256"] for e in matches}) != 1:
            listed = ", ".join(f"{e['name']} ({e['sha256'][:12]})" for e in inc.evidence) or "none"
            raise fail_usage(f"{ref!r} names {'no' if not matches else 'more than one'} evidence of {inc.id}; "
                             f"its evidence: {listed}")
        item = matches[-1]
        if not item.get("stored"):
            raise fail_usage(f"{item['name']} was recorded by hash only; its bytes are not in the database")
        content = store.evidence_content(item["sha256"])
        write_raw(content, out)
    if out != "-":
        typer.echo(f"{inc.id}: wrote {item['name']} ({len(content):,} bytes, sha256 verified) to {out}")


def _kind(kind: str):
    from nis2kube.incidents.model import ReportKind

    if kind not in REPORT_KINDS:
        raise fail_usage(f"--kind must be one of {', '.join(REPORT_KINDS)}")
    return ReportKind(kind)


@app.command("report")
def report(
    incident_id: IncidentId,
    kind: Annotated[str, typer.Option(help="early-warning, notification, intermediate, final or progress.")],
    output: Annotated[str, typer.Option("-o", "--output", help="md, json or pdf.")] = "md",
    out: Annotated[str | None, typer.Option("--out", help="Write to this file (required for pdf on a "
                                                          "terminal).")] = None,
    profile: Annotated[str | None, typer.Option(help="Report profile (country/language), e.g. eu or de; "
                                                     "default incidents.profile from the config.")] = None,
    db: Db = None, config: ConfigOpt = None,
) -> None:
    """Draft a report with exactly the Art. 23(4) fields, pre-filled; missing fields are flagged."""
    from nis2kube.incidents.reports import OUTPUTS, draft, render

    report_kind = _kind(kind)
    if output not in OUTPUTS:
        raise fail_usage(f"--output must be one of {', '.join(OUTPUTS)}")
    with _errors():
        store, entity = _ctx(db, config)
        d = draft(store.get(incident_id), report_kind, entity, profile)
        content = render(d, output, entity)
        if out and out != "-":
            with open(out, "wb") as fh:
                fh.write(content)
        elif output == "pdf" and sys.stdout.isatty():
            raise fail_usage("a PDF needs --out FILE (or redirect stdout)")
        else:
            sys.stdout.buffer.write(content)
            sys.stdout.flush()
    if d.missing:
        err_console.print(f"[yellow]missing:[/] {', '.join(d.missing)}", markup=True, soft_wrap=True)


@app.command("submit")
def submit(
    incident_id: IncidentId,
    kind: Annotated[str, typer.Option(help="early-warning, notification, intermediate, final or progress.")],
    channel: Annotated[str, typer.Option(help="How it was sent, e.g. 'BSI portal'.")],
    reference: Annotated[str, typer.Option(help="The recipient's reference / ticket number.")] = "",
    file: Annotated[str | None, typer.Option(help="The exact file sent; its SHA-256 is frozen. Default: the "
                                                  "JSON draft as of now.")] = None,
    submitted_at: Annotated[str | None, typer.Option(help="When it was sent (ISO 8601); default now.")] = None,
    profile: Annotated[str | None, typer.Option(help="Report profile for the default content.")] = None,
    db: Db = None, config: ConfigOpt = None, actor: Actor = None,
) -> None:
    """Record that a report was sent (time, channel, reference) and freeze its content hash."""
    import orjson

    from nis2kube.incidents.reports import content_hash, draft, render

    report_kind = _kind(kind)
    with _errors():
        store, entity = _ctx(db, config)
        data: dict[str, Any] = {"kind": str(report_kind), "channel": channel, "reference": reference}
        if submitted_at:
            data["submitted_at"] = submitted_at
        if file:
            with open(file, "rb") as fh:
                data["content_sha256"] = content_hash(fh.read())
            data["file"] = os.path.basename(file)
        else:
            content = render(draft(store.get(incident_id), report_kind, entity, profile), "json", entity)
            data["content_sha256"] = content_hash(content)
            data["content"] = orjson.loads(content)["fields"]
        inc = store.append(incident_id, "report-submitted", _actor(actor), data)
    typer.echo(f"{inc.id}: {kind} recorded, sha256 {data['content_sha256']}; status {inc.status}")


@app.command("close")
def close(
    incident_id: IncidentId,
    reason: Annotated[str | None, typer.Option(help="Why / how it was resolved.")] = None,
    handled_at: Annotated[str | None, typer.Option(help="When handling ended (ISO 8601); default now.")] = None,
    db: Db = None, config: ConfigOpt = None, actor: Actor = None,
) -> None:
    """Close (handled). A significant incident stays listed until its final report is submitted."""
    from nis2kube.incidents.model import ReportKind

    with _errors():
        store, _ = _ctx(db, config)
        inc = store.append(incident_id, "closed", _actor(actor), _fields(reason=reason, handled_at=handled_at))
    typer.echo(f"{inc.id} closed")
    if inc.significant and inc.submitted(ReportKind.FINAL) is None:
        err_console.print("[yellow]note:[/] the final report is still due; `nis2kube incident list` shows when",
                          markup=True)
