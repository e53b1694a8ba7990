"""Report drafts: exactly the Art. 23(4) content fields per report kind, pre-filled from the record.

Which fields a kind has is law, so it lives here. Everything a country changes - labels, language, the
recipient, extra national fields, the Markdown layout - is data in `templates/<profile>/` (a
`profile.yaml` and a `report.md.j2`). A new country is a new folder, shipped or under
`incidents.templates_dir`; no code changes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

import orjson
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from nis2kube.incidents.clocks import deadlines
from nis2kube.incidents.model import Incident, ReportKind, utcnow
from nis2kube.incidents.profile import EntityProfile

# Art. 23(4)(a)-(e); the progress report's content is not enumerated by the law beyond a status update.
KIND_FIELDS: dict[ReportKind, tuple[str, ...]] = {
    ReportKind.EARLY_WARNING: ("suspected_malicious", "cross_border_impact"),
    ReportKind.NOTIFICATION: ("early_warning_update", "initial_assessment", "severity", "impact",
                              "indicators_of_compromise"),
    ReportKind.INTERMEDIATE: ("status_update",),
    ReportKind.FINAL: ("detailed_description", "severity", "impact", "threat_type_or_root_cause",
                       "mitigation_applied", "mitigation_ongoing", "cross_border_impact"),
    ReportKind.PROGRESS: ("status_update",),
}
OUTPUTS = ("md", "json", "pdf")
_TEMPLATE_ROOT = "templates"


class ReportError(ValueError):
    """A profile or template cannot be used; names the profile and the problem."""


@dataclass
class DraftField:
    key: str
    label: str
    value: str | list[str]
    missing: bool
    note: str = ""


@dataclass
class Draft:
    kind: ReportKind
    profile: dict[str, Any]
    incident: Incident
    fields: list[DraftField]
    due_at: datetime | None
    generated_at: datetime
    tz: str
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [f.key for f in self.fields if f.missing]

    def local(self, dt: datetime | None) -> str:
        from zoneinfo import ZoneInfo

        return "" if dt is None else dt.astimezone(ZoneInfo(self.tz)).strftime("%Y-%m-%d %H:%M %Z (UTC%z)")

    def to_dict(self) -> dict[str, Any]:
        inc = self.incident
        return {
            "schema": "nis2kube.incident-report/v1",
            "profile": self.profile["id"], "language": self.profile.get("language"),
            "kind": str(self.kind), "title": self.profile["kinds"][str(self.kind)]["title"],
            "legal_basis": self.profile["kinds"][str(self.kind)]["basis"],
            "recipient": self.profile.get("recipient", ""),
            "incident": {"id": inc.id, "title": inc.title, "entity": self.context.get("entity", ""),
                         "detected_at": _iso(inc.detected_at), "aware_at": _iso(inc.aware_at),
                         "handled_at": _iso(inc.handled_at)},
            "due_at": _iso(self.due_at), "time_zone": self.tz, "generated_at": _iso(self.generated_at),
            "fields": {f.key: {"label": f.label, "value": f.value, "missing": f.missing, "note": f.note}
                       for f in self.fields},
            "missing": self.missing,
            "context": self.context,
        }


def _iso(dt: datetime | None) -> str | None:
    from nis2kube.incidents.model import iso

    return iso(dt)


def _profile_dirs(profile: EntityProfile) -> list[str]:
    dirs = [profile.templates_dir] if profile.templates_dir else []
    dirs.append(str(resources.files("nis2kube.incidents").joinpath(_TEMPLATE_ROOT)))
    return dirs


def available_profiles(profile: EntityProfile) -> list[str]:
    names = set()
    for base in _profile_dirs(profile):
        if os.path.isdir(base):
            names.update(n for n in os.listdir(base) if os.path.isfile(os.path.join(base, n, "profile.yaml")))
    return sorted(names)


def load_profile(profile: EntityProfile, name: str | None = None) -> tuple[dict[str, Any], str]:
    """The profile data and the folder it came from (a user folder overrides a shipped one)."""
    name = name or profile.report_profile
    for base in _profile_dirs(profile):
        folder = os.path.join(base, name)
        path = os.path.join(folder, "profile.yaml")
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    data = yaml.safe_load(fh)
            except (OSError, yaml.YAMLError) as exc:
                raise ReportError(f"{path}: cannot read the report profile: {exc}") from None
            _check_profile(data, path)
            data["id"] = name
            return data, folder
    raise ReportError(f"unknown report profile {name!r}; available: {', '.join(available_profiles(profile))}")


def _check_profile(data: Any, path: str) -> None:
    if not isinstance(data, dict):
        raise ReportError(f"{path}: the top level must be a mapping")
    for key in ("labels", "kinds", "fields", "values"):
        if not isinstance(data.get(key), dict):
            raise ReportError(f"{path}: `{key}` must be a mapping")
    for kind, keys in KIND_FIELDS.items():
        if not isinstance(data["kinds"].get(str(kind)), dict):
            raise ReportError(f"{path}: kinds.{kind} is missing")
        for key in keys:
            if key not in data["fields"]:
                raise ReportError(f"{path}: fields.{key} (a label) is missing")


def _tristate(value: str, profile: dict[str, Any]) -> tuple[str, bool]:
    return str(profile["values"].get(value, value)), value == "unknown"


def _field_value(key: str, inc: Incident, profile: dict[str, Any]) -> tuple[str | list[str], bool]:
    if key in ("suspected_malicious", "cross_border_impact"):
        return _tristate(inc.suspected_malicious if key == "suspected_malicious" else inc.cross_border, profile)
    if key == "early_warning_update":
        mal, mal_missing = _tristate(inc.suspected_malicious, profile)
        cross, cross_missing = _tristate(inc.cross_border, profile)
        return ([f"{profile['fields']['suspected_malicious']}: {mal}",
                 f"{profile['fields']['cross_border_impact']}: {cross}"], mal_missing or cross_missing)
    simple = {"initial_assessment": inc.assessment, "severity": inc.severity, "impact": inc.impact,
              "status_update": inc.status_update, "detailed_description": inc.description,
              "threat_type_or_root_cause": inc.root_cause}
    if key == "severity" and inc.severity:
        return str(profile["values"].get(inc.severity, inc.severity)), False
    if key in simple:
        return simple[key], not simple[key].strip()
    lists = {"indicators_of_compromise": inc.iocs, "mitigation_applied": inc.mitigations_applied,
             "mitigation_ongoing": inc.mitigations_ongoing}
    return list(lists[key]), not lists[key]


def draft(inc: Incident, kind: ReportKind, entity: EntityProfile, profile_name: str | None = None,
          now: datetime | None = None) -> Draft:
    """Build the draft; a field with nothing in the record is kept and flagged missing, never dropped."""
    profile, _ = load_profile(entity, profile_name)
    fields = []
    notes = profile.get("notes", {})
    for key in KIND_FIELDS[kind]:
        value, missing = _field_value(key, inc, profile)
        fields.append(DraftField(key, profile["fields"][key], value, missing, str(notes.get(key, ""))))
    for extra in profile.get("extra_fields", {}).get(str(kind), []):
        value = inc.extra.get(extra["key"], "")
        fields.append(DraftField(extra["key"], extra["label"], value, not value and extra.get("required", True),
                                 extra.get("note", "")))
    due = _due(inc, kind, entity)
    context = {
        "entity": entity.entity_name,
        "services": inc.services, "namespaces": inc.namespaces, "workloads": inc.workloads,
        "timeline": inc.timeline, "evidence": inc.evidence,
        "reports": [{"kind": str(r.kind), "submitted_at": _iso(r.submitted_at), "channel": r.channel,
                     "reference": r.reference, "content_sha256": r.content_sha256} for r in inc.reports],
    }
    return Draft(kind, profile, inc, fields, due, now or utcnow(), entity.tz_name, context)


def _due(inc: Incident, kind: ReportKind, entity: EntityProfile) -> datetime | None:
    """When this report is due; a progress report replaces the final report at its date (Art. 23(4)(e))."""
    items = {d.kind: d.due_at for d in deadlines(inc, entity.timezone, entity.trust_service_provider)}
    if kind == ReportKind.PROGRESS and kind not in items:
        return items.get(ReportKind.FINAL)
    return items.get(kind)


def render(d: Draft, output: str, entity: EntityProfile) -> bytes:
    """The draft as Markdown (the profile's template), JSON or PDF."""
    if output == "json":
        return orjson.dumps(d.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
    if output == "md":
        return render_markdown(d, entity).encode("utf-8")
    if output == "pdf":
        from nis2kube.incidents.pdf import render_pdf

        return render_pdf(d)
    raise ReportError(f"unknown output {output!r}; choose from {', '.join(OUTPUTS)}")


def render_markdown(d: Draft, entity: EntityProfile) -> str:
    _, folder = load_profile(entity, d.profile["id"])
    # Autoescape: drafts are often pasted into web portals or rendered to HTML; record text is untrusted.
    env = Environment(loader=FileSystemLoader(folder), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    try:
        template = env.get_template("report.md.j2")
        return template.render(d=d, r=d.to_dict(), p=d.profile, local=d.local)
    except TemplateError as exc:
        raise ReportError(f"{folder}/report.md.j2: {exc}") from None


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
