"""The JSON report: a contract other tools and our conformance runners read (schema_version 1).

Fields may be added; none may be renamed or removed without bumping SCHEMA_VERSION.
"""

from __future__ import annotations

import orjson

from nis2kube.engine import Result
from nis2kube.findings import Finding

SCHEMA_VERSION = 1


def finding_dict(f: Finding) -> dict:
    out = {
        "check": f.check,
        "status": f.status.value,
        "severity": f.severity.value,
        "resource": f.resource.to_dict() if f.resource else None,
        "container": f.container,
        "message": f.message,
        "measures": list(f.measures),
        "remediation": f.remediation,
        "system": f.system,
    }
    if f.resource and f.resource.location:
        loc = f.resource.location
        out["location"] = {"file": loc.file, "document": loc.document, "line": loc.line}
        if loc.item is not None:
            out["location"]["item"] = loc.item
        if loc.helm_source:
            out["location"]["helm_source"] = loc.helm_source
    if f.evidence:
        out["evidence"] = f.evidence
    if f.waiver:
        out["waiver"] = f.waiver
    return out


def report_dict(result: Result) -> dict:
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
        "findings": [finding_dict(f) for f in result.findings],
        "waivers": result.waiver_audit,
        "problems": [
            {"file": p.file, "document": p.document, "line": p.line, "level": p.level, "message": p.message}
            for p in result.problems
        ],
    }


def render_json(result: Result) -> str:
    return orjson.dumps(report_dict(result), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
