"""Read Kubernetes objects from files, directories and stdin: multi-document YAML, JSON, `List` dumps, Helm output.

Every input is hostile until read: sizes are bounded, binary files and symlink loops are skipped, each
YAML document is parsed on its own so one bad document never hides the others, and every problem names
the file, the document and the line.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from nis2kube.findings import Location
from nis2kube.inventory.yamlload import load_document

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# Our own settings files live beside manifests; a directory scan does not read them as objects.
NOT_MANIFESTS = frozenset(
    {"nis2kube.yaml", "nis2kube.yml", ".nis2kube.yaml", "kustomization.yaml", "kustomization.yml"}
)
_SNIFF_BYTES = 8192

_DOC_MARK = re.compile(r"^(---|\.\.\.)(?=[ \t\r\n]|\Z)", re.M)
_HELM_SOURCE = re.compile(r"^# Source: (.+?)\s*$", re.M)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in the input that could not be used; `level` is `error` or `warning`."""

    file: str
    message: str
    document: int | None = None  # 1-based
    line: int | None = None
    level: str = "error"

    def __str__(self) -> str:
        where = self.file
        if self.document is not None:
            where += f": document {self.document}"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    objects: list[tuple[dict, Location]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of the bytes read


def load_paths(paths: Iterable[str], *, max_document_bytes: int = MAX_DOCUMENT_BYTES) -> LoadResult:
    """Read every path ('-' is stdin); directories recursively, their .yaml/.yml/.json files only."""
    result = LoadResult()
    for path in paths:
        if path == "-":
            _load_bytes(sys.stdin.buffer.read(max_document_bytes + 1), "<stdin>", result, max_document_bytes)
            continue
        if not os.path.lexists(path):
            result.problems.append(Problem(path, "no such file or directory"))
            continue
        if os.path.isdir(path):
            for file in _walk(path, result):
                _load_file(file, result, max_document_bytes)
        else:
            _load_file(path, result, max_document_bytes)
    return result


def _walk(root: str, result: LoadResult) -> Iterator[str]:
    """Manifest files below root in a stable order; follows links but never the same directory twice."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=lambda e: _walk_error(e, result)):
        try:
            st = os.stat(dirpath)
        except OSError as exc:
            result.problems.append(Problem(dirpath, f"cannot read directory: {exc.strerror}"))
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            result.problems.append(
                Problem(dirpath, "directory reached twice (symlink loop?); skipped", level="warning")
            )
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(MANIFEST_SUFFIXES) and not name.startswith(".") and name not in NOT_MANIFESTS:
                yield os.path.join(dirpath, name)


def _walk_error(exc: OSError, result: LoadResult) -> None:
    result.problems.append(Problem(exc.filename or "?", f"cannot read directory: {exc.strerror}"))


def _load_file(path: str, result: LoadResult, limit: int) -> None:
    try:
        if not os.path.isfile(path):
            result.problems.append(Problem(path, "not a regular file; skipped", level="warning"))
            return
        size = os.path.getsize(path)
        if size > limit:
            result.problems.append(Problem(path, f"file is {size:,} bytes, over the {limit:,}-byte limit; skipped"))
            return
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        result.problems.append(Problem(path, f"cannot read: {exc.strerror or exc}"))
        return
    _load_bytes(data, path, result, limit)


def _load_bytes(data: bytes, name: str, result: LoadResult, limit: int) -> None:
    if len(data) > limit:
        result.problems.append(Problem(name, f"input is over the {limit:,}-byte limit; skipped"))
        return
    result.files[name] = hashlib.sha256(data).hexdigest()
    if b"\x00" in data[:_SNIFF_BYTES] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        result.problems.append(Problem(name, "binary file, not YAML or JSON; skipped", level="warning"))
        return
    if _load_json_bytes(data, name, result):
        return
    text = _decode(data, name, result)
    if text is None:
        return
    if _json_like(text.lstrip()[:2], name):
        _load_json(data if not data.startswith(b"\xef\xbb\xbf") else data[3:], text, name, result)
    else:
        _load_yaml(text, name, result, limit)


def _load_json_bytes(data: bytes, name: str, result: LoadResult) -> bool:
    """Read JSON straight from the bytes when it parses (orjson checks the UTF-8 itself); False sends anything
    else down the text path, which reports encoding errors and falls back to YAML. Decoding an 80 MB dump first
    cost a copy of it in memory and 0.04 s."""
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if not _json_like(body[:_SNIFF_BYTES].lstrip()[:2].decode("latin-1"), name):
        return False  # (more leading whitespace than that, rare, is left to the text path's own test)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    _accept_json(doc, name, result)
    return True


def load_text(text: str, name: str = "<text>") -> LoadResult:
    """Read YAML or JSON text as if it were a file called `name` (tests, stdin-like callers)."""
    result = LoadResult()
    _load_bytes(text.encode(), name, result, MAX_DOCUMENT_BYTES)
    return result


def _json_like(start: str, name: str) -> bool:
    """Is a document starting with `start` (its first two characters after whitespace) read as JSON: it opens
    with { or [, and the file is .json or stdin or it opens like JSON text rather than a YAML flow mapping."""
    return start.startswith(("{", "[")) and (
        name.endswith(".json") or name == "<stdin>" or start.startswith(("{\n", '{"', "[")))


def _decode(data: bytes, name: str, result: LoadResult) -> str | None:
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        result.problems.append(Problem(name, "not valid UTF-8 text; skipped", line=line))
        return None


def _load_json(data: bytes, text: str, name: str, result: LoadResult) -> None:
    try:
        doc = orjson.loads(data if data.lstrip()[:1] in (b"{", b"[") else text)
    except orjson.JSONDecodeError as exc:
        if name.endswith(".json"):
            result.problems.append(Problem(name, f"invalid JSON: {exc.msg}", document=1, line=exc.lineno))
            return
        _load_yaml(text, name, result, MAX_DOCUMENT_BYTES)  # a YAML flow document can start with `{` too
        return
    _accept_json(doc, name, result)


def _accept_json(doc: object, name: str, result: LoadResult) -> None:
    if isinstance(doc, list):
        for index, item in enumerate(doc, start=1):
            _accept(item, Location(name, index, None), name, result)
    else:
        _accept(doc, Location(name, 1, 1), name, result)


def split_documents(text: str) -> Iterator[tuple[int, str]]:
    """(line of the document's first line, text) for each `---`-separated part, separators excluded.

    A `---` or `...` at column 0 ends a document even inside a block scalar (YAML forbids it there), so
    splitting on them is exact and lets every document be parsed, and fail, on its own.
    """
    pos, line = 0, 1
    for mark in _DOC_MARK.finditer(text):
        segment = text[pos : mark.start()]
        yield line, segment
        line += segment.count("\n")
        if mark.group(1) == "---":
            pos = mark.end()  # `--- {a: 1}` keeps its content in the next document
        else:
            newline = text.find("\n", mark.end())
            pos = len(text) if newline < 0 else newline + 1
            line += 1 if newline >= 0 else 0
    yield line, text[pos:]


def _document_head(segment: str) -> tuple[int, str] | None:
    """(0-based line of the first content, the comment lines before it); None for a document with no content."""
    pos, index = 0, 0
    while pos <= len(segment):
        end = segment.find("\n", pos)
        end = len(segment) if end < 0 else end
        stripped = segment[pos:end].strip()
        if stripped and not stripped.startswith(("#", "%")):
            return index, segment[:pos]
        pos, index = end + 1, index + 1
    return None


def _load_yaml(text: str, name: str, result: LoadResult, limit: int) -> None:
    document = 0
    for start_line, segment in split_documents(text):
        found = _document_head(segment)
        if found is None:
            continue
        offset, head = found
        document += 1
        line = start_line + offset
        if len(segment) > limit:
            result.problems.append(Problem(name, "document is over the size limit; skipped", document, line))
            continue
        source = _HELM_SOURCE.search(head)
        location = Location(name, document, line, source.group(1) if source else None)
        try:
            doc = load_document(segment)
        except RecursionError:
            result.problems.append(Problem(name, "document is nested too deeply; skipped", document, line))
            continue
        except Exception as exc:
            mark = getattr(exc, "problem_mark", None)
            err_line = start_line + mark.line if mark is not None else line
            what = getattr(exc, "problem", None) or str(exc)
            result.problems.append(Problem(name, f"invalid YAML: {what}", document, err_line))
            continue
        if doc is not None:
            _accept(doc, location, name, result)


def _accept(doc: object, location: Location, name: str, result: LoadResult) -> None:
    """Keep Kubernetes objects, expand Lists, warn about anything else."""
    if not isinstance(doc, dict):
        result.problems.append(
            Problem(name, f"not a Kubernetes object (a {type(doc).__name__}); skipped", location.document,
                    location.line, level="warning")
        )
        return
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if isinstance(api_version, str) and api_version.startswith("nis2kube.io/"):
        return  # flows.yaml, evidence files: nis2kube's own inputs, not cluster objects
    items = doc.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        item_kind = kind[: -len("List")] if kind != "List" else None
        for index, item in enumerate(items, start=1):
            if isinstance(item, dict) and item_kind and "kind" not in item:
                # Raw API lists (PodList, ...) leave kind and apiVersion off their items.
                item["kind"] = item_kind
                item.setdefault("apiVersion", api_version)
            _accept_object(item, location, name, result, index)
        return
    _accept_object(doc, location, name, result, None)


def _accept_object(doc: object, location: Location, name: str, result: LoadResult, item: int | None) -> None:
    what = f"item {item}" if item is not None else "document"
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str) or not isinstance(doc.get("apiVersion"), str) \
            or not doc["kind"] or not doc["apiVersion"]:
        result.problems.append(
            Problem(name, f"{what} has no apiVersion/kind, not a Kubernetes object; skipped", location.document,
                    location.line, level="warning")
        )
        return
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name") or meta.get("generateName"), str):
        result.problems.append(
            Problem(name, f"{what} ({doc['kind']}) has no metadata.name; skipped", location.document, location.line,
                    level="warning")
        )
        return
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        result.problems.append(
            Problem(name, f"{what} ({doc['kind']}) metadata.namespace is not a string ({namespace!r}; quote it); "
                    "skipped", location.document, location.line)
        )
        return
    if "name" not in meta:
        meta["name"] = meta["generateName"]
    result.objects.append((doc, Location(location.file, location.document, location.line, location.helm_source, item)
                           if item is not None else location))
