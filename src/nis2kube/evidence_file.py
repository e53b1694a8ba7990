"""The `--evidence` file: what the team attests that no cluster object can show.

A pen-test date, the incident runbook, the on-call rotation, the CSIRT contact, log retention and etcd
backups live outside Kubernetes. One small YAML file states them; the checks judge presence and age. The
file is hostile input like any other: it is size-bounded, read with Kubernetes' YAML rules, and every
problem names the file and the field. It is parsed once per scan (through `ScanContext.input`).

    apiVersion: nis2kube.io/v1alpha1
    kind: Evidence
    penetration_test: {date: 2026-05-10, report: "https://...", by: "Example GmbH"}
    incident_runbook: {location: "https://...", reviewed: 2026-09-01}
    on_call: {rotation: "pagerduty:ot-oncall", reviewed: 2026-10-01}
    csirt_contact: {name: "CERT-Bund / BSI", portal: "https://...", email: "...", reviewed: 2026-10-01}
    log_retention: {days: 400, system: "OpenSearch ILM", attested_by: "j.doe", date: 2026-11-01}
    etcd_backup: {schedule: "0 */6 * * *", retention_days: 35, offsite: true, last_restore_test: 2026-08-01}
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml

from nis2kube.checks.registry import CheckContext, InputError, read_input_text
from nis2kube.inventory.yamlload import load_document

API_VERSION = "nis2kube.io/v1alpha1"
KIND = "Evidence"
MAX_BYTES = 1024 * 1024  # an attestation file is a few hundred bytes; anything near this is not one

# field kinds: "text" (non-empty string), "date" (YYYY-MM-DD), "days" (int >= 0), "bool"
SCHEMA: dict[str, dict[str, str]] = {
    "penetration_test": {"date": "date", "report": "text", "by": "text", "scope": "text"},
    "incident_runbook": {"location": "text", "reviewed": "date", "owner": "text"},
    "on_call": {"rotation": "text", "reviewed": "date"},
    "csirt_contact": {"name": "text", "portal": "text", "email": "text", "phone": "text", "reviewed": "date"},
    "log_retention": {"days": "days", "system": "text", "attested_by": "text", "date": "date"},
    "etcd_backup": {
        "schedule": "text", "retention_days": "days", "offsite": "bool", "encrypted": "bool",
        "last_restore_test": "date", "attested_by": "text",
    },
}  # fmt: skip
REQUIRED: dict[str, tuple[str, ...]] = {
    "penetration_test": ("date",),
    "incident_runbook": ("location",),
    "on_call": ("rotation",),
    "csirt_contact": ("name",),
    "log_retention": ("days",),
    "etcd_backup": ("schedule",),
}
COMMON_FIELDS = {"notes": "text"}  # free text allowed in every section

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def evidence(ctx: CheckContext) -> dict[str, dict[str, Any]] | None:
    """The parsed evidence file (section -> fields, dates as `datetime.date`), or None when not given.

    Raises InputError naming the file and the field when the file cannot be used."""
    return ctx.input("evidence", load_evidence)


def today(ctx: CheckContext) -> dt.date:
    """The date ages are measured against: `inputs["as_of"]` when set (reproducible reports, tests), else
    today in UTC."""
    as_of = ctx.inputs.get("as_of")
    if isinstance(as_of, dt.datetime):
        return as_of.date()
    if isinstance(as_of, dt.date):
        return as_of
    return dt.datetime.now(dt.UTC).date()


def load_evidence(path: str) -> dict[str, dict[str, Any]]:
    """Read and validate one evidence file."""
    return parse_evidence(read_input_text(path, "--evidence", MAX_BYTES, "an evidence file"), path)


def parse_evidence(text: str, path: str = "<evidence>") -> dict[str, dict[str, Any]]:
    """Validate evidence YAML text; `path` only names the file in errors."""
    where = f"--evidence {path}"
    try:
        doc = load_document(text)
    except (yaml.YAMLError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
            mark = exc.problem_mark
            detail = exc.problem + (f" (line {mark.line + 1})" if mark is not None else "")
        if "expected a single document" in str(exc):
            detail = "more than one YAML document; the evidence file is one document"
        raise InputError(f"{where}: invalid YAML: {detail}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: the top level must be a mapping (apiVersion, kind, sections)")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise InputError(f"{where}: expected apiVersion: {API_VERSION} and kind: {KIND}, "
                         f"got {doc.get('apiVersion')!r} / {doc.get('kind')!r}")
    out: dict[str, dict[str, Any]] = {}
    for section, body in doc.items():
        if section in ("apiVersion", "kind"):
            continue
        if section not in SCHEMA:
            raise InputError(f"{where}: unknown section {section!r} (known: {', '.join(SCHEMA)})")
        if body is None:
            continue  # an empty section is the same as an absent one: nothing is attested
        if not isinstance(body, dict):
            raise InputError(f"{where}: {section} must be a mapping of fields")
        out[section] = _section(section, body, where)
    return out


def _section(section: str, body: dict, where: str) -> dict[str, Any]:
    fields = {**SCHEMA[section], **COMMON_FIELDS}
    parsed: dict[str, Any] = {}
    for key, value in body.items():
        kind = fields.get(key)
        if kind is None:
            raise InputError(f"{where}: {section}.{key}: unknown field (known: {', '.join(fields)})")
        if value is None:
            continue
        parsed[key] = _value(kind, value, f"{where}: {section}.{key}")
    missing = [key for key in REQUIRED[section] if key not in parsed]
    if missing:
        raise InputError(f"{where}: {section}: missing required field {missing[0]!r}")
    return parsed


def _value(kind: str, value: object, where: str) -> Any:
    if kind == "text":
        if isinstance(value, (dict, list)) or str(value).strip() == "":
            raise InputError(f"{where}: must be a non-empty text value")
        return str(value).strip()
    if kind == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{where}: must be true or false, got {value!r}")
        return value
    if kind == "days":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{where}: must be a whole number of days >= 0, got {value!r}")
        return value
    return _date(value, where)


def _date(value: object, where: str) -> dt.date:
    """Kubernetes' YAML rules keep timestamps as strings; accept exactly YYYY-MM-DD."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not _DATE.match(text):
        raise InputError(f"{where}: must be a date YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a calendar date") from None
