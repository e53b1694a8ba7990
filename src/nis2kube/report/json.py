"""The JSON report: a contract other tools and our conformance runners read (schema_version 1).

Fields may be added; none may be renamed or removed without bumping SCHEMA_VERSION.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson

from nis2kube.engine import Result
from nis2kube.findings import Finding, ResourceRef

SCHEMA_VERSION = 1


OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
_FINDING_INDENT = b"\n      "  # a finding's fields sit three levels deep: report > findings list > finding


def _block(value: object) -> bytes:
    """A value as orjson writes it at a finding field's depth (nested lines indented to match)."""
    return orjson.dumps(value, option=OPTIONS).replace(b"\n", _FINDING_INDENT)


def _location(ref: ResourceRef) -> bytes:
    loc = ref.location
    if loc is None:
        return b""
    fields = {"file": loc.file, "document": loc.document, "line": loc.line}
    if loc.item is not None:
        fields["item"] = loc.item
    if loc.helm_source:
        fields["helm_source"] = loc.helm_source
    return b',\n      "location": ' + _block(fields)


_CONTAINER = b',\n      "container": '
_NO_CONTAINER_MESSAGE = b',\n      "container": null,\n      "message": '
_MESSAGE = b',\n      "message": '
_END = b"\n    }"


def _encoder() -> Callable[[list[Finding]], bytes]:
    """A function that writes a batch of findings, each field by field in the schema's order, as one
    orjson.dumps of the whole report would. What repeats is encoded once: a check's prefix (id, status,
    severity) and suffix (measures, remediation, system), each object's resource and location. Only the
    message, container, evidence and waiver are encoded per finding, and consecutive findings of one check
    reuse the prefix and suffix without a lookup: a 350k-finding report is written three times faster than
    through dicts."""
    heads: dict[tuple, bytes] = {}
    tails: dict[tuple, bytes] = {}
    refs: dict[int, tuple[bytes, bytes]] = {}
    dumps = orjson.dumps

    def encode(batch: list[Finding]) -> bytes:
        out: list[bytes] = []
        append = out.append
        head_key = tail_key = None
        head = tail = b""
        for f in batch:
            if (key := (f.check, f.status, f.severity)) != head_key:
                head_key = key
                if (head := heads.get(key)) is None:
                    head = heads[key] = (
                        b'\n    {\n      "check": ' + dumps(f.check) + b',\n      "status": ' + dumps(f.status)
                        + b',\n      "severity": ' + dumps(f.severity) + b',\n      "resource": '
                    )
            if (key := (f.measures, f.remediation, f.system)) != tail_key:
                tail_key = key
                if (tail := tails.get(key)) is None:
                    tail = tails[key] = (
                        b',\n      "measures": ' + _block(f.measures) + b',\n      "remediation": '
                        + dumps(f.remediation) + b',\n      "system": ' + (b"true" if f.system else b"false")
                    )
            if (ref := f.resource) is None:
                resource, location = b"null", b""
            elif (hit := refs.get(id(ref))) is None:
                resource, location = refs[id(ref)] = (_block(ref.to_dict()), _location(ref))
            else:
                resource, location = hit
            if f.evidence or f.waiver:
                parts = [head, resource, _CONTAINER, b"null" if f.container is None else dumps(f.container), _MESSAGE,
                         dumps(f.message), tail, location]
                if f.evidence:
                    parts += (b',\n      "evidence": ', _block(f.evidence))
                if f.waiver:
                    parts += (b',\n      "waiver": ', _block(f.waiver))
                parts.append(_END)
                append(b"".join(parts))
            elif f.container is None:
                append(b"".join((head, resource, _NO_CONTAINER_MESSAGE, dumps(f.message), tail, location, _END)))
            else:
                append(b"".join((head, resource, _CONTAINER, dumps(f.container), _MESSAGE, dumps(f.message), tail,
                                 location, _END)))
        return b",".join(out)

    return encode


_MARK = "nis2kube:findings"
# The top-level key at its indentation: a string value cannot contain these bytes (orjson escapes quotes and
# newlines inside strings), so the split point is unambiguous whatever the input's names and paths hold.
_SLOT = b'\n  "findings": "' + _MARK.encode() + b'"'
# Small enough that a batch (its findings' bytes, then their join) fits below glibc's heap trim threshold:
# 4,096 findings (7 MB a batch) made the heap grow and shrink at every batch, 30k page faults at 100k
# objects and a fifth of the encoding time; 512 reuse the same memory.
BATCH = 512


def _frame(result: Result) -> dict:
    """The report without its findings: a marker holds their place, and iter_json writes them there."""
    summary = result.summary()
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "nis2kube", "version": result.tool_version},
        "generated_at": result.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": result.inventory.source.to_dict(),
        "summary": {
            "checks": len(result.checks),
            "objects": len(result.inventory),
            "findings": summary["findings"],
            "system_findings": summary["system_findings"],
            "score": summary["score"],
            "fail_on": result.fail_on.value,
            "blocking": summary["blocking"],
        },
        "measures": summary["measures"],
        "findings": _MARK,
        "waivers": result.waiver_audit,
        "problems": [
            {"file": p.file, "document": p.document, "line": p.line, "level": p.level, "message": p.message}
            for p in result.problems
        ],
    }


def iter_json(result: Result) -> Iterator[bytes]:
    """The report as UTF-8 chunks, byte for byte what orjson.dumps(..., OPT_INDENT_2) of the whole would give.

    A 100k-object scan has some 350k findings (a 300 MB report): writing them in batches never holds the whole
    report in memory, and growing one 300 MB buffer took more time than encoding it."""
    head, tail = orjson.dumps(_frame(result), option=OPTIONS).split(_SLOT, 1)
    findings = result.findings
    if not findings:
        yield head + b'\n  "findings": []' + tail + b"\n"
        return
    yield head + b'\n  "findings": ['
    encode = _encoder()
    for start in range(0, len(findings), BATCH):
        chunk = encode(findings[start:start + BATCH])
        yield chunk if start == 0 else b"," + chunk
    yield b"\n  ]" + tail + b"\n"


def render_json(result: Result) -> bytes:
    """UTF-8 bytes: a report can be hundreds of megabytes, and decoding only to encode again costs seconds."""
    return b"".join(iter_json(result))
