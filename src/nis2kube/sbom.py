"""SBOM files (`--sbom`): which format, which image they describe, which components they list.

Accepted: CycloneDX JSON and XML, SPDX 2.x JSON and tag-value, SPDX 3 JSON-LD, syft JSON, and in-toto attestations
(DSSE envelopes or bare statements) whose predicate is a CycloneDX or SPDX document. An SBOM counts for a
running image only when it names that image: by the image reference the generator records (Trivy's
RepoTag/RepoDigest properties, a `pkg:oci` purl, the in-toto subject) or, when the file names none, by
the user saying `--sbom IMAGE=FILE`. Inputs are hostile: size-bounded, and XML with a DTD is refused
(CycloneDX XML never needs one; entity tricks are how XML parsers are attacked).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

import orjson

from nis2kube.checks.registry import InputError
from nis2kube.images import ImageRef, canonical_image

MAX_SBOM_BYTES = 128 * 1024 * 1024
_IMAGE_PROPERTIES = ("aquasecurity:trivy:RepoDigest", "aquasecurity:trivy:RepoTag", "aquasecurity:trivy:Reference",
                     "syft:image:labels", "syft:image:name")
_ATTRIBUTION = re.compile(r"^(RepoDigest|RepoTag|Reference):\s*(\S+)\s*$")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_CDX_NS = re.compile(r"^\{http://cyclonedx\.org/schema/bom/(\d+\.\d+)\}bom$")


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []



@dataclass(frozen=True)
class Sbom:
    path: str
    format: str  # "CycloneDX 1.5 JSON", "SPDX-2.3 tag-value", ...
    images: tuple[ImageRef, ...]  # the images it says it describes (may be empty)
    components: int
    purls: tuple[str, ...]


def load_sboms(values: list[str]) -> list[Sbom]:
    """Every `--sbom` value: `FILE` or `IMAGE=FILE` (the image it describes, when the file does not say)."""
    out = []
    for value in values:
        path, image = value, None
        if "=" in value and not os.path.exists(value):
            image, path = value.split("=", 1)
        sbom = load_sbom(path)
        if image:
            sbom = Sbom(sbom.path, sbom.format, (*sbom.images, canonical_image(image)), sbom.components, sbom.purls)
        out.append(sbom)
    return out


def load_sbom(path: str) -> Sbom:
    try:
        size = os.path.getsize(path)
        if size > MAX_SBOM_BYTES:
            raise InputError(f"--sbom {path}: {size} bytes is beyond the {MAX_SBOM_BYTES >> 20} MiB limit")
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"--sbom {path}: cannot read: {exc.strerror or exc}") from None
    return parse_sbom(data, path)


def parse_sbom(data: bytes, path: str) -> Sbom:
    """Detect the format from the content (never from the file name) and read it."""
    text = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        return _cyclonedx_xml(text, path)
    if text.startswith(b"{"):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            doc = _json_lines(text, path)
        return _json_sbom(doc, path)
    if re.search(rb"^SPDXVersion:\s*SPDX-", text[:4096], re.M):
        return _spdx_tag_value(text.decode("utf-8", "replace"), path)
    raise InputError(f"--sbom {path}: not an SBOM (expected CycloneDX JSON/XML, SPDX JSON/tag-value or an "
                     "in-toto attestation)")


def _json_lines(text: bytes, path: str) -> object:
    """An in-toto .jsonl file holds one envelope per line; the first one is used."""
    first = text.split(b"\n", 1)[0]
    try:
        return orjson.loads(first)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"--sbom {path}: not valid JSON: {exc}") from None


def _json_sbom(doc: object, path: str, subjects: tuple[ImageRef, ...] = (), depth: int = 0) -> Sbom:
    if not isinstance(doc, dict):
        raise InputError(f"--sbom {path}: not an SBOM (the top level is not a JSON object)")
    if "payloadType" in doc and "payload" in doc and depth == 0:  # DSSE envelope
        try:
            statement = orjson.loads(base64.b64decode(str(doc["payload"]), validate=True))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise InputError(f"--sbom {path}: DSSE envelope payload is not base64-encoded JSON") from None
        return _json_sbom(statement, path, subjects, depth + 1)
    if "predicate" in doc and "subject" in doc and depth <= 1:  # in-toto statement
        names = []
        for subject in _l(doc.get("subject")):
            if isinstance(subject, dict) and subject.get("name"):
                digests = subject.get("digest") if isinstance(subject.get("digest"), dict) else {}
                digest = digests.get("sha256")
                names.append(canonical_image(f"{subject['name']}@sha256:{digest}" if digest else str(subject["name"])))
        return _json_sbom(doc["predicate"], path, (*subjects, *names), 2)
    if doc.get("bomFormat") == "CycloneDX":
        return _cyclonedx_json(doc, path, subjects)
    if isinstance(doc.get("spdxVersion"), str):
        return _spdx_json(doc, path, subjects)
    context = doc.get("@context")
    if isinstance(context, str) and "spdx.org/rdf/3" in context:
        return _spdx3_json(doc, path, subjects)
    if isinstance(doc.get("artifacts"), list) and isinstance(doc.get("source"), dict):
        return _syft_json(doc, path, subjects)
    raise InputError(f"--sbom {path}: JSON but not an SBOM (no bomFormat: CycloneDX, spdxVersion, SPDX 3 @context "
                     "or syft artifacts)")


def _cyclonedx_json(doc: dict, path: str, subjects: tuple[ImageRef, ...]) -> Sbom:
    components = _l(doc.get("components"))
    if not isinstance(components, list):
        raise InputError(f"--sbom {path}: CycloneDX components must be a list")
    purls = []
    stack = list(components)
    count = 0
    while stack:
        comp = stack.pop()
        if not isinstance(comp, dict):
            continue
        count += 1
        if isinstance(comp.get("purl"), str):
            purls.append(comp["purl"])
        if isinstance(comp.get("components"), list):
            stack.extend(comp["components"])
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    subject = metadata.get("component") if isinstance(metadata.get("component"), dict) else {}
    names = [str(p.get("value")) for p in _l(subject.get("properties"))
             if isinstance(p, dict) and p.get("name") in _IMAGE_PROPERTIES[:3] and p.get("value")]
    if isinstance(subject.get("purl"), str):
        names.extend(_oci_purl(subject["purl"]))
    if subject.get("type") == "container":
        hashes = [(str(h.get("alg", "")), str(h.get("content", ""))) for h in _l(subject.get("hashes"))
                  if isinstance(h, dict)]
        names.extend(_container_digests(subject.get("name"), subject.get("version"), hashes))
    images = subjects + tuple(canonical_image(n) for n in names)
    return Sbom(path, f"CycloneDX {doc.get('specVersion', '?')} JSON", _unique(images), count, tuple(purls))


def _cyclonedx_xml(text: bytes, path: str) -> Sbom:
    head = text[:65536].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in text.upper():
        raise InputError(f"--sbom {path}: XML with a DTD/entities is refused (CycloneDX XML needs none)")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"--sbom {path}: invalid XML: {exc}") from None
    match = _CDX_NS.match(root.tag)
    if not match:
        raise InputError(f"--sbom {path}: XML but not a CycloneDX BOM (root element {root.tag!r})")
    ns = {"c": root.tag[1:].split("}")[0]}
    purls = tuple(e.text.strip() for e in root.iterfind(".//c:components//c:purl", ns) if e.text)
    count = len(root.findall(".//c:components//c:component", ns))
    names: list[str] = []
    subject = root.find("c:metadata/c:component", ns)
    if subject is not None:
        for prop in subject.iterfind("c:properties/c:property", ns):
            if prop.get("name") in _IMAGE_PROPERTIES[:3] and prop.text:
                names.append(prop.text.strip())
        purl = subject.find("c:purl", ns)
        if purl is not None and purl.text:
            names.extend(_oci_purl(purl.text.strip()))
        if subject.get("type") == "container":
            hashes = [(h.get("alg", ""), h.text or "") for h in subject.iterfind("c:hashes/c:hash", ns)]
            names.extend(_container_digests(subject.findtext("c:name", "", ns), subject.findtext("c:version", "", ns),
                                            hashes))
    images = tuple(canonical_image(n) for n in names)
    return Sbom(path, f"CycloneDX {match.group(1)} XML", _unique(images), count, purls)


def _spdx_json(doc: dict, path: str, subjects: tuple[ImageRef, ...]) -> Sbom:
    packages = _l(doc.get("packages"))
    if not isinstance(packages, list):
        raise InputError(f"--sbom {path}: SPDX packages must be a list")
    purls, names = [], []
    for pkg in packages:
        if not isinstance(pkg, dict):
            continue
        for ref in _l(pkg.get("externalRefs")):
            if isinstance(ref, dict) and ref.get("referenceType") == "purl" and ref.get("referenceLocator"):
                locator = str(ref["referenceLocator"])
                purls.append(locator)
                names.extend(_oci_purl(locator))
        for text in _l(pkg.get("attributionTexts")):
            found = _ATTRIBUTION.match(str(text))
            if found:
                names.append(found.group(2))
        if pkg.get("primaryPackagePurpose") == "CONTAINER":
            sums = [(str(c.get("algorithm", "")), str(c.get("checksumValue", ""))) for c in _l(pkg.get("checksums"))
                    if isinstance(c, dict)]
            names.extend(_container_digests(pkg.get("name"), pkg.get("versionInfo"), sums))
    images = subjects + tuple(canonical_image(n) for n in names)
    return Sbom(path, f"{doc['spdxVersion']} JSON", _unique(images), len(packages), tuple(purls))


def _spdx3_json(doc: dict, path: str, subjects: tuple[ImageRef, ...]) -> Sbom:
    graph = _l(doc.get("@graph"))
    if not isinstance(graph, list):
        raise InputError(f"--sbom {path}: SPDX 3 @graph must be a list")
    packages = [e for e in graph if isinstance(e, dict) and str(e.get("type", "")).endswith("Package")]
    purls = tuple(str(p["software_packageUrl"]) for p in packages if p.get("software_packageUrl"))
    names = [n for purl in purls for n in _oci_purl(purl)]
    images = subjects + tuple(canonical_image(n) for n in names)
    return Sbom(path, "SPDX-3 JSON-LD", _unique(images), len(packages), purls)


def _syft_json(doc: dict, path: str, subjects: tuple[ImageRef, ...]) -> Sbom:
    """Syft's own JSON: the image is source.metadata (newer) or source.target (older schemas)."""
    source = doc["source"]
    target = source.get("metadata") or source.get("target")
    names: list[str] = []
    if source.get("type") == "image" and isinstance(target, dict):
        user_input = str(target.get("userInput") or "")
        for tag in _l(target.get("tags")):
            names.append(str(tag))
        for digest in _l(target.get("repoDigests")):
            names.append(str(digest))
        if user_input:
            names.append(user_input)
            if str(target.get("manifestDigest", "")).startswith("sha256:"):
                names.append(f"{user_input.split('@')[0]}@{target['manifestDigest']}")
    artifacts = doc["artifacts"]
    purls = tuple(str(a["purl"]) for a in artifacts if isinstance(a, dict) and a.get("purl"))
    images = subjects + tuple(canonical_image(n) for n in names)
    return Sbom(path, "syft JSON", _unique(images), len(artifacts), purls)


def _spdx_tag_value(text: str, path: str) -> Sbom:
    version = re.search(r"^SPDXVersion:\s*(\S+)", text, re.M)
    packages = len(re.findall(r"^PackageName:", text, re.M))
    purls = tuple(re.findall(r"^ExternalRef:\s*PACKAGE[-_]MANAGER\s+purl\s+(\S+)", text, re.M))
    names = [m.group(2) for line in re.findall(r"^PackageAttributionText:\s*(.+)$", text, re.M)
             if (m := _ATTRIBUTION.match(re.sub(r"</?text>", "", line).strip()))]
    names.extend(n for purl in purls for n in _oci_purl(purl))
    images = tuple(canonical_image(n) for n in names)
    return Sbom(path, f"{version.group(1) if version else 'SPDX'} tag-value", _unique(images), packages, purls)


def _container_digests(name: object, version: object, hashes: list[tuple[str, str]]) -> list[str]:
    """`name@digest` for the image an SBOM's container component is: syft writes the manifest digest as its
    version (CycloneDX metadata.component, the SPDX CONTAINER package), others a SHA-256 hash or checksum."""
    if not isinstance(name, str) or not name.strip():
        return []
    digests = {f"sha256:{value.lower()}" for alg, value in hashes
               if alg.upper().replace("-", "") == "SHA256" and _SHA256_HEX.fullmatch(value)}
    if isinstance(version, str) and version.startswith("sha256:") and _SHA256_HEX.fullmatch(version[7:]):
        digests.add(version.lower())
    base = name.strip().split("@")[0]
    return [f"{base}@{digest}" for digest in sorted(digests)]


def _oci_purl(purl: str) -> list[str]:
    """`pkg:oci/name@sha256:..?repository_url=reg/path/name&tag=1.0` -> image references."""
    if not purl.startswith("pkg:oci/"):
        return []
    body, _, query = purl[len("pkg:oci/"):].partition("?")
    name, _, version = body.partition("@")
    params = parse_qs(query)
    repo = params.get("repository_url", [unquote(name)])[0]
    version = unquote(version)
    out = []
    if version.startswith("sha256:"):
        out.append(f"{repo}@{version}")
    if params.get("tag"):
        out.append(f"{repo}:{params['tag'][0]}")
    return out


def _unique(images: tuple[ImageRef, ...]) -> tuple[ImageRef, ...]:
    seen: dict[tuple, ImageRef] = {}
    for image in images:
        seen.setdefault((image.name, image.tag, image.digest), image)
    return tuple(seen.values())
