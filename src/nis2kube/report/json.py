"""The JSON report: a contract other tools and our conformance runners read (schema_version 1).

Fields may be added; none may be renamed or removed without bumping SCHEMA_VERSION.
"""

from __future__ import annotations

import orjson

from nis2kube.engine import Result
from nis2kube.findings import Finding, ResourceRef

SCHEMA_VERSION = 1


def _resource_dicts(ref: ResourceRef) -> tuple[dict, dict | None]:
    location = None
    if loc := ref.location:
        location = {"file": loc.file, "document": loc.document, "line": loc.line}
        if loc.item is not None:
            location["item"] = loc.item
        if loc.helm_source:
            location["helm_source"] = loc.helm_source
    return ref.to_dict(), location


def finding_dict(f: Finding, cache: dict[int, tuple[dict, dict | None]]) -> dict:
    """One finding; `cache` (keyed by the ResourceRef's identity) shares the resource and location dicts between
    the many findings of one object, which matters at hundreds of thousands of findings."""
    resource = location = None
    if ref := f.resource:
        if (hit := cache.get(id(ref))) is None:
            hit = cache[id(ref)] = _resource_dicts(ref)
        resource, location = hit
    out = {
        "check": f.check,
        "status": f.status,  # StrEnums: orjson writes their values, without 700k property lookups
        "severity": f.severity,
        "resource": resource,
        "container": f.container,
        "message": f.message,
        "measures": f.measures,
        "remediation": f.remediation,
        "system": f.system,
    }
    if location is not None:
        out["location"] = location
    if f.evidence:
        out["evidence"] = f.evidence
    if f.waiver:
        out["waiver"] = f.waiver
    return out


def report_dict(result: Result) -> dict:
    cache: dict[int, tuple[dict, dict | None]] = {}
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "nis2kube", "version": result.tool_version},
        "generated_at": result.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": result.inventory.source.to_dict(),
        "summary": {
            "checks": len(result.checks),
            "objects": len(result.inventory),
            "findings": result.counts(),
            "system_findings": result.counts(system=True),
            "score": result.score,
            "fail_on": result.fail_on.value,
            "blocking": len(result.blocking()),
        },
        "measures": result.measures(),
        "findings": [finding_dict(f, cache) for f in result.findings],
        "waivers": result.waiver_audit,
        "problems": [
            {"file": p.file, "document": p.document, "line": p.line, "level": p.level, "message": p.message}
            for p in result.problems
        ],
    }


def render_json(result: Result) -> bytes:
    """UTF-8 bytes: a report can be hundreds of megabytes, and decoding only to encode again costs seconds."""
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
    return orjson.dumps(report_dict(result), option=options)
