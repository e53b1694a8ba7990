"""Vulnerability scan results from Trivy, mapped to the images that run.

Two sources say the same thing in two shapes: Trivy's JSON report (`trivy image -f json`, SchemaVersion 2)
given with `--trivy-report`, and Trivy Operator's VulnerabilityReport objects found among the scanned
objects. Both become `ScanReport`s indexed by image, so a container is matched to the scan of the exact
image it runs: by digest when both sides know it, else by registry/repository:tag with Docker's defaulting
(`nginx` is `docker.io/library/nginx:latest`; Docker Hub under any of its host names is `docker.io`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import orjson

from nis2kube.checks.registry import InputError
from nis2kube.findings import ResourceRef
from nis2kube.images import ImageRef, canonical_image
from nis2kube.inventory import Inventory
from nis2kube.inventory.workloads import report_owner

T = TypeVar("T")

MAX_REPORT_BYTES = 256 * 1024 * 1024  # a Trivy report of a large image with descriptions is tens of MiB
SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
TRIVY_GROUP = "aquasecurity.github.io"
# Trivy Operator labels naming the scanned workload and container.
LABEL_KIND = "trivy-operator.resource.kind"
LABEL_NAME = "trivy-operator.resource.name"
LABEL_NAMESPACE = "trivy-operator.resource.namespace"
LABEL_CONTAINER = "trivy-operator.container.name"


def _d(value: object) -> dict:
    """Hostile input: a field of the wrong type reads as absent."""
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list:
    return value if isinstance(value, list) else []



@dataclass(frozen=True, slots=True)
class Vulnerability:
    id: str
    package: str
    installed: str
    fixed: str  # "" when no fixed version exists
    severity: str  # one of SEVERITIES

    @property
    def fixable(self) -> bool:
        return bool(self.fixed)


@dataclass(frozen=True)
class ScanReport:
    """One image's scan: which image, when, what was found, and where the report came from."""

    source: str  # file path, or Kind/namespace/name of the report object
    images: tuple[ImageRef, ...]
    scanned_at: dt.datetime | None
    vulnerabilities: tuple[Vulnerability, ...] = ()
    ref: ResourceRef | None = None  # the report object, for operator reports
    # (kind, namespace, name, container) the operator scanned, from its labels
    workload: tuple[str, str, str, str] | None = None

    def at_or_above(self, threshold: str, *, fixable_only: bool = True) -> list[Vulnerability]:
        floor = SEVERITY_RANK[threshold]
        return [v for v in self.vulnerabilities
                if SEVERITY_RANK.get(v.severity, 0) >= floor and (v.fixable or not fixable_only)]


@dataclass
class ImageIndex(Generic[T]):
    """Items (scan reports, SBOMs) keyed by the image they describe."""

    by_digest: dict[str, list[T]] = field(default_factory=dict)
    by_tag: dict[tuple[str, str], list[T]] = field(default_factory=dict)

    def add(self, image: ImageRef, item: T) -> None:
        """Callers add an item under every one of its images, which `find` relies on (see _other_digest)."""
        if image.digest:
            _append_once(self.by_digest.setdefault(image.digest, []), item)
        if (tag := _match_tag(image)) is not None:
            _append_once(self.by_tag.setdefault((image.name, tag), []), item)

    def find(self, image: ImageRef) -> tuple[list[T], str]:
        """Items for the image a container runs, and how they matched ("digest", "tag" or "")."""
        if image.digest and image.digest in self.by_digest:
            return self.by_digest[image.digest], "digest"
        if (tag := _match_tag(image)) is not None:
            found = [i for i in self.by_tag.get((image.name, tag), ()) if not _other_digest(i, image)]
            if found:
                return found, "tag"
        return [], ""

    def __bool__(self) -> bool:
        return bool(self.by_digest or self.by_tag)


def _match_tag(image: ImageRef) -> str | None:
    """The tag an image is matched by: its own, else `latest` unless it names a digest instead. An invalid
    digest names no image, so it neither matches by digest nor stands for `latest`."""
    if image.tag:
        return image.tag
    return "latest" if image.digest is None and image.invalid_digest is None else None


def _other_digest(item: object, image: ImageRef) -> bool:
    """The item names digests of this repository and the pinned image is none of them: the tag moved on.
    Only `find` asks, once the pinned digest is known to no item (every item's images were add()ed), so any
    digest of the repository is another one."""
    return bool(image.digest) and any(i.digest and i.name == image.name for i in getattr(item, "images", ()))


def _append_once(items: list, item: object) -> None:
    if not any(existing is item for existing in items):
        items.append(item)


# ---- Trivy JSON ---------------------------------------------------------------------------------------


def load_trivy_reports(paths: Iterable[str]) -> list[ScanReport]:
    """Every `--trivy-report` file; InputError names the file and what is wrong."""
    out: list[ScanReport] = []
    for path in paths:
        out.extend(parse_trivy_json(_read_json(path, "--trivy-report"), path))
    return out


def _read_json(path: str, option: str) -> object:
    try:
        size = os.path.getsize(path)
        if size > MAX_REPORT_BYTES:
            raise InputError(f"{option} {path}: {size} bytes is beyond the {MAX_REPORT_BYTES >> 20} MiB limit")
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{option} {path}: not JSON: {exc}") from None


def parse_trivy_json(doc: object, path: str) -> list[ScanReport]:
    """A `trivy image` report (one image) or a `trivy k8s` report (Resources[], one per workload)."""
    where = f"--trivy-report {path}"
    if not isinstance(doc, dict):
        raise InputError(f"{where}: not a Trivy JSON report (the top level is not an object)")
    if "Resources" in doc and "SchemaVersion" not in doc:
        return _k8s_report(doc, where, path)
    if doc.get("SchemaVersion") != 2:
        raise InputError(f"{where}: not a Trivy JSON report with SchemaVersion 2 (got "
                         f"{doc.get('SchemaVersion')!r}); produce it with `trivy image --format json`")
    results = _l(doc.get("Results"))
    if not isinstance(results, list):
        raise InputError(f"{where}: Results must be a list")
    metadata = doc.get("Metadata") if isinstance(doc.get("Metadata"), dict) else {}
    images = _trivy_images(doc, metadata)
    if not images:
        raise InputError(f"{where}: the report names no container image (ArtifactType "
                         f"{doc.get('ArtifactType')!r}, no Metadata.RepoTags/RepoDigests); scan images by name")
    vulns = tuple(_trivy_vulns(results, where))
    return [ScanReport(path, images, _timestamp(doc.get("CreatedAt")), vulns)]


def _k8s_report(doc: dict, where: str, path: str) -> list[ScanReport]:
    resources = doc.get("Resources")
    if not isinstance(resources, list):
        raise InputError(f"{where}: Resources must be a list")
    out = []
    created = _timestamp(doc.get("CreatedAt"))
    for i, res in enumerate(resources):
        if not isinstance(res, dict):
            raise InputError(f"{where}: Resources[{i}] is not an object")
        metas = res.get("Metadata") if isinstance(res.get("Metadata"), list) else []
        images = tuple(img for meta in metas if isinstance(meta, dict) for img in _trivy_images({}, meta))
        results = _l(res.get("Results"))
        if not images or not isinstance(results, list):
            continue  # misconfiguration-only resources carry no image
        workload = (str(res.get("Kind", "")), str(res.get("Namespace", "")), str(res.get("Name", "")), "")
        vulns = tuple(_trivy_vulns(results, f"{where}: Resources[{i}]"))
        out.append(ScanReport(f"{path}#{workload[0]}/{workload[1]}/{workload[2]}", images, created, vulns,
                              workload=workload))
    return out


def _trivy_images(doc: dict, metadata: dict) -> tuple[ImageRef, ...]:
    names: list[str] = []
    for key in ("RepoDigests", "RepoTags"):
        value = metadata.get(key)
        if isinstance(value, list):
            names.extend(str(v) for v in value if isinstance(v, str) and v)
    if isinstance(metadata.get("Reference"), str):
        names.append(metadata["Reference"])
    artifact = doc.get("ArtifactName")
    is_image_name = (isinstance(artifact, str) and not artifact.endswith((".tar", ".tar.gz", ".tgz"))
                     and not artifact.startswith(("/", ".")))
    if not names and doc.get("ArtifactType") == "container_image" and is_image_name:
        names.append(str(artifact))
    seen: dict[tuple, ImageRef] = {}
    for name in names:
        image = canonical_image(name)
        seen.setdefault((image.name, image.tag, image.digest), image)
    return tuple(seen.values())


def _trivy_vulns(results: list, where: str) -> Iterator[Vulnerability]:
    for i, result in enumerate(results):
        if not isinstance(result, dict):
            raise InputError(f"{where}: Results[{i}] is not an object")
        vulns = _l(result.get("Vulnerabilities"))
        if not isinstance(vulns, list):
            raise InputError(f"{where}: Results[{i}].Vulnerabilities must be a list")
        for v in vulns:
            if not isinstance(v, dict) or not v.get("VulnerabilityID"):
                raise InputError(f"{where}: Results[{i}] has a vulnerability without VulnerabilityID")
            if v.get("Status") == "not_affected":
                continue
            yield Vulnerability(str(v["VulnerabilityID"]), str(v.get("PkgName", "")),
                                str(v.get("InstalledVersion", "")), str(v.get("FixedVersion") or "").strip(),
                                _severity(v.get("Severity")))


# ---- Trivy Operator objects ---------------------------------------------------------------------------


def operator_report(inv: Inventory, obj: dict) -> ScanReport | None:
    """A VulnerabilityReport or SbomReport object as a ScanReport (None when it names no image)."""
    report = obj.get("report")
    if not isinstance(report, dict):
        return None
    image = _operator_image(report)
    if image is None:
        return None
    vulns = []
    for v in _l(report.get("vulnerabilities")):
        if isinstance(v, dict) and v.get("vulnerabilityID"):
            vulns.append(Vulnerability(str(v["vulnerabilityID"]), str(v.get("resource", "")),
                                       str(v.get("installedVersion", "")), str(v.get("fixedVersion") or "").strip(),
                                       _severity(v.get("severity"))))
    meta = _d(obj.get("metadata"))
    labels = _d(meta.get("labels"))
    # a name too long for a label value is hashed into a name-hash label and kept whole in an annotation
    name = labels.get(LABEL_NAME) or _d(meta.get("annotations")).get(LABEL_NAME)
    workload = None
    if labels.get(LABEL_KIND) and name:
        workload = (str(labels[LABEL_KIND]), str(labels.get(LABEL_NAMESPACE) or meta.get("namespace") or ""),
                    str(name), str(labels.get(LABEL_CONTAINER, "")))
    scanned = _timestamp(report.get("updateTimestamp")) or _timestamp(meta.get("creationTimestamp"))
    ref = inv.ref(obj)
    return ScanReport(ref.display, (image,), scanned, tuple(vulns), ref, workload)


def _operator_image(report: dict) -> ImageRef | None:
    artifact = report.get("artifact") if isinstance(report.get("artifact"), dict) else {}
    repository = str(artifact.get("repository") or "").strip()
    if not repository:
        return None
    registry = report.get("registry") if isinstance(report.get("registry"), dict) else {}
    server = str(registry.get("server") or "").strip()
    raw = f"{server}/{repository}" if server else repository
    # The operator records the tag or the digest the workload names; a digest beside a tag is Trivy's
    # Metadata.ImageID, the config digest, which no image reference ever carries.
    if artifact.get("tag"):
        raw += f":{artifact['tag']}"
    elif artifact.get("digest"):
        raw += f"@{artifact['digest']}"
    return canonical_image(raw)


def operator_reports(inv: Inventory, kind: str) -> list[ScanReport]:
    """All operator reports of `kind` (VulnerabilityReport, SbomReport), parsed once per inventory."""

    def build() -> list[ScanReport]:
        found = (operator_report(inv, obj) for obj in inv.objects(kind, TRIVY_GROUP))
        return [r for r in found if r is not None]

    return inv.cached(f"trivy-operator:{kind}", build)


def matcher(inv: Inventory, kind: str, files: tuple[ScanReport, ...] | list[ScanReport] = ()) -> ReportMatcher:
    """The matcher over operator reports of `kind` plus reports from files, built once per inventory and
    file set (every check of a family shares it). The cached value holds `files`, so its id stays unique."""
    _held, built = inv.cached(f"trivy-matcher:{kind}:{id(files)}",
                              lambda: (files, ReportMatcher.build(inv, [*operator_reports(inv, kind), *files])))
    return built


def index(reports: Iterable[ScanReport]) -> ImageIndex[ScanReport]:
    idx: ImageIndex[ScanReport] = ImageIndex()
    for report in reports:
        for image in report.images:
            idx.add(image, report)
    return idx


def _severity(value: object) -> str:
    text = value.upper() if isinstance(value, str) else "UNKNOWN"
    return text if text in SEVERITY_RANK else "UNKNOWN"


def _timestamp(value: object) -> dt.datetime | None:
    """RFC 3339 timestamps (Trivy writes nanoseconds, which Python cannot hold: they are cut to micro)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}" if digits else head + rest
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


# ---- mapping to workloads -----------------------------------------------------------------------------


def top_level_key(inv: Inventory, kind: str, namespace: str, name: str) -> tuple[str, str, str]:
    """The top-level workload (kind, namespace, name) behind an object Trivy Operator labelled.

    The operator labels reports with the ReplicaSet or Job it scanned; findings are reported on the
    Deployment or CronJob, climbing as the workload view does (`report_owner`). Without the intermediate
    object in the inventory, the upstream naming rule (`<deployment>-<pod-template-hash>`,
    `<cronjob>-<scheduled time>`) finds the owner if it exists."""
    obj = inv.get(kind, namespace, name)
    seen = 0
    while obj is not None and seen < 8:
        owner = report_owner(inv, obj)
        if owner is None:
            meta = obj["metadata"]
            return str(obj["kind"]), meta.get("namespace") or "", str(meta.get("name", ""))
        obj, seen = owner, seen + 1
    parent_kind = {"ReplicaSet": "Deployment", "Job": "CronJob"}.get(kind)
    if parent_kind and "-" in name:
        parent = name.rsplit("-", 1)[0]
        if inv.get(parent_kind, namespace, parent) is not None:
            return parent_kind, namespace, parent
    return kind, namespace, name


def by_workload(inv: Inventory, reports: Iterable[ScanReport]) -> dict[tuple[str, str, str, str], list[ScanReport]]:
    """(kind, namespace, name, container) of the top-level workload -> operator reports labelled for it."""
    out: dict[tuple[str, str, str, str], list[ScanReport]] = {}
    for report in reports:
        if report.workload is None:
            continue
        kind, namespace, name, container = report.workload
        top = top_level_key(inv, kind, namespace, name)
        _append_once(out.setdefault((*top, container), []), report)
    return out


@dataclass(frozen=True)
class ReportMatcher:
    """Finds the reports about one container of one workload: by image first, then by operator labels.

    A labelled report counts only while it is about the same repository and tag the container runs now
    (registry aside, for mirrors): an old report of a previous image must not vouch for the new one."""

    images: ImageIndex
    labelled: dict[tuple[str, str, str, str], list]

    @classmethod
    def build(cls, inv: Inventory, reports: list[ScanReport]) -> ReportMatcher:
        return cls(index(reports), by_workload(inv, reports))

    def __bool__(self) -> bool:
        return bool(self.images) or bool(self.labelled)

    def find(self, ref: ResourceRef, container: str, image: ImageRef) -> tuple[list, str]:
        found, how = self.images.find(image)
        found = list(found)
        for report in self.labelled.get((ref.kind, ref.namespace or "", ref.name, container), []):
            if not any(_same_image(image, other) for other in report.images):
                continue
            if not any(r is report for r in found):
                found.append(report)
                how = how or "operator labels"
        return found, how


def _same_image(running: ImageRef, scanned: ImageRef) -> bool:
    if running.digest and scanned.digest:
        return running.digest == scanned.digest
    if running.repository != scanned.repository:
        return False
    if running.digest and running.tag is None:
        return True  # pinned by digest only; the operator may have reported it by tag
    tag = _match_tag(running)
    return tag is not None and tag == _match_tag(scanned)
