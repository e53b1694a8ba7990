"""JUnit XML for CI dashboards: one test suite per check, one test case per finding.

Failures are <failure>, not-assessed and waived verdicts are <skipped> with the reason, passes are plain
test cases (they are evidence too). Text from the input is stripped of characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

from nis2kube.engine import Result
from nis2kube.findings import Finding, Status

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def _case_name(f: Finding) -> str:
    name = f.resource.display if f.resource else "cluster"
    return name + (f" [{f.container}]" if f.container else "")


def render_junit(result: Result) -> str:
    by_check: dict[str, list[Finding]] = defaultdict(list)
    for f in result.findings:
        by_check[f.check].append(f)
    root = ET.Element("testsuites", name="nis2kube", tests=str(len(result.findings)),
                      failures=str(sum(1 for f in result.findings if f.status is Status.FAIL)),
                      time=f"{result.duration_s:.3f}")  # fmt: skip
    for check_id, spec in result.checks.items():
        findings = by_check.get(check_id, [])
        suite = ET.SubElement(
            root, "testsuite", name=check_id, tests=str(len(findings)),
            failures=str(sum(1 for f in findings if f.status is Status.FAIL)),
            skipped=str(sum(1 for f in findings if f.status in (Status.NOT_ASSESSED, Status.WAIVED))),
            errors="0", timestamp=result.generated_at.strftime("%Y-%m-%dT%H:%M:%S"),
        )  # fmt: skip
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="title", value=_clean(spec.title))
        ET.SubElement(props, "property", name="measures", value=",".join(spec.measures))
        for f in findings:
            case = ET.SubElement(suite, "testcase", classname=check_id, name=_clean(_case_name(f)))
            if f.status is Status.FAIL:
                failure = ET.SubElement(case, "failure", message=_clean(f.message), type=f.severity.value)
                failure.text = _clean(f"{f.message}\nFix: {f.remediation}\nNIS2: {', '.join(f.measures)}")
            elif f.status is Status.NOT_ASSESSED:
                ET.SubElement(case, "skipped", message=_clean(f"not assessed: {f.message}"))
            elif f.status is Status.WAIVED:
                reason = f.waiver["justification"] if f.waiver else ""
                ET.SubElement(case, "skipped", message=_clean(f"waived: {reason}"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
