"""SARIF 2.1.0: one rule per check, one result per failing, waived (suppressed) or not-assessed finding.

File inputs give each result a physical location (file and line of the object; the Helm template for
Helm-rendered stdin); every result also carries the Kubernetes object as a logical location, so live
scans are addressable too.
"""

from __future__ import annotations

import hashlib
import os
from urllib.parse import quote

import orjson

from nis2kube.engine import Result
from nis2kube.findings import Finding, Severity, Status

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/nis2kube/nis2kube"
_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note",
          Severity.INFO: "note"}  # fmt: skip
# GitHub code scanning ranks security results by this property (CVSS-like, 0-10).
_SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0",
                      Severity.INFO: "0.0"}  # fmt: skip


def _uri(path: str) -> str:
    """A relative URI reference when the file is under the working directory, else the absolute path."""
    rel = os.path.relpath(path) if os.path.isabs(path) else path
    if rel.startswith(".."):
        rel = os.path.abspath(path)
    return quote(rel.replace(os.sep, "/"), safe="/:")


def _locations(f: Finding) -> list[dict]:
    ref = f.resource
    if ref is None:
        return []
    name = ref.display + (f"/{f.container}" if f.container else "")
    location: dict = {"logicalLocations": [{"fullyQualifiedName": name, "kind": "resource"}]}
    loc = ref.location
    if loc is not None:
        if loc.file == "<stdin>" and loc.helm_source:
            location["physicalLocation"] = {"artifactLocation": {"uri": _uri(loc.helm_source)}}
        elif loc.file != "<stdin>":
            physical: dict = {"artifactLocation": {"uri": _uri(loc.file)}}
            if loc.line:
                physical["region"] = {"startLine": loc.line}
            location["physicalLocation"] = physical
    return [location]


def _result(f: Finding, rule_index: int) -> dict:
    result: dict = {
        "ruleId": f.check,
        "ruleIndex": rule_index,
        "message": {"text": f.message + (f" Fix: {f.remediation}" if f.remediation else "")},
        "locations": _locations(f),
        "partialFingerprints": {
            "nis2kubeFinding/v1": hashlib.sha256(
                "|".join([f.check, f.resource.display if f.resource else "", f.container or ""]).encode()
            ).hexdigest()
        },
        "properties": {"severity": f.severity.value, "measures": list(f.measures), "status": f.status.value},
    }
    if f.status is Status.NOT_ASSESSED:
        result["kind"] = "review"
        result["level"] = "none"
    else:
        result["kind"] = "fail"
        result["level"] = _LEVEL[f.severity]
    if f.status is Status.WAIVED and f.waiver:
        result["suppressions"] = [{
            "kind": "external",
            "state": "accepted",
            "justification": f"{f.waiver['justification']} (owner {f.waiver['owner']}, expires {f.waiver['expires']})",
        }]  # fmt: skip
    return result


def sarif_dict(result: Result) -> dict:
    rules, index = [], {}
    for spec in result.checks.values():
        index[spec.id] = len(rules)
        rules.append({
            "id": spec.id,
            "name": "".join(part.capitalize() for part in spec.id.replace("-", ".").split(".")),
            "shortDescription": {"text": spec.title},
            "fullDescription": {"text": spec.description or spec.title},
            "help": {"text": f"Fix: {spec.remediation}\nNIS2 measures: {', '.join(spec.measures)}"},
            "defaultConfiguration": {"level": _LEVEL[spec.severity]},
            "properties": {
                "tags": ["security", "nis2", *spec.measures],
                "security-severity": _SECURITY_SEVERITY[spec.severity],
            },
        })  # fmt: skip
    results = [
        _result(f, index[f.check]) for f in result.findings
        if f.status is not Status.PASS and f.check in index
    ]  # fmt: skip
    notifications = [
        {
            "level": "error" if p.level == "error" else "warning",
            "message": {"text": str(p)},
            **({"locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(p.file)},
                                                    **({"region": {"startLine": p.line}} if p.line else {})}}]}
               if p.file != "<stdin>" else {}),
        }
        for p in result.problems
    ]  # fmt: skip
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "nis2kube", "version": result.tool_version,
                                "semanticVersion": result.tool_version, "informationUri": INFORMATION_URI,
                                "rules": rules}},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "results": results,
            "properties": {"score": result.score, "generatedAt": result.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }],
    }  # fmt: skip


def render_sarif(result: Result) -> str:
    return orjson.dumps(sarif_dict(result), option=orjson.OPT_INDENT_2).decode()
