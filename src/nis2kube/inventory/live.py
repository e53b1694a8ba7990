"""Build an Inventory from a running cluster: discovery, paginated concurrent lists, metadata-only Secrets.

Read-only by construction (the transport only sends GET) and least-privilege by design: a kind the
credentials may not list is recorded in `inv.unlisted` with the RBAC rule that would allow it, and the
rest of the scan goes on. A kind the server does not serve at all (an absent CRD: the tool is not
installed) is evidence, kept in `inv.served_kinds`, not an error.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson

from nis2kube.heap import gc_paused
from nis2kube.inventory.files import Problem
from nis2kube.inventory.inventory import Inventory, SourceInfo
from nis2kube.inventory.kinds import group_of
from nis2kube.inventory.live_http import ClusterTarget, LiveError, Response, Transport, connect
from nis2kube.inventory.live_kinds import CONFIGMAPS_WITH_DATA, LIVE_KINDS, WHOLE_GROUPS, LiveKind
from nis2kube.inventory.workloads import POD_TEMPLATE_PATHS

__all__ = ["ClusterTarget", "LiveError", "LiveOptions", "from_cluster", "snapshot_document"]

METADATA_ONLY_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# kubectl apply copies the whole object, Secret data included, into this annotation: never keep it.
SENSITIVE_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
MAX_LIST_RESTARTS = 3
MAX_PAGES = 100_000

Progress = Callable[[str, int, int], None]  # (kind just finished, kinds done, kinds total)


@dataclass
class LiveOptions:
    namespace: str | None = None  # None: all namespaces
    no_secrets: bool = False
    concurrency: int = 8
    page_size: int = 500
    progress: Progress | None = None


@dataclass(frozen=True)
class _Served:
    """One listable resource as discovery describes it."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def base_path(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            return f"{root}/namespaces/{namespace}/{self.resource}"
        return f"{root}/{self.resource}"


@dataclass
class _Listed:
    items: list[dict] = field(default_factory=list)
    unlisted: str | None = None
    problems: list[Problem] = field(default_factory=list)


def from_cluster(target: ClusterTarget, options: LiveOptions | None = None) -> Inventory:
    """Connect, discover and list; raises LiveError only when nothing at all can be read."""
    options = options or LiveOptions()
    transport = connect(target)
    captured = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    version = _server_version(transport)
    inv = Inventory(SourceInfo("live", [transport.host], cluster=transport.cluster, server_version=version,
                               captured_at=captured))
    served, problems = _discover(transport, options.concurrency)
    inv.problems.extend(problems)
    inv.served_kinds = {(s.group, s.kind) for s in served}

    wanted = _plan(served, options.no_secrets)
    if options.no_secrets:
        inv.unlisted[("", "Secret")] = "not listed: --no-secrets mode (Secrets are not read at all)"

    done = 0

    def run(job: tuple[_Served, bool]) -> tuple[_Served, _Listed]:
        try:
            return job[0], _list_kind(transport, job[0], job[1], options)
        except LiveError as exc:  # this kind stays unread; the others are still worth a scan
            return job[0], _Listed(unlisted=f"listing {job[0].resource} failed: {exc}")

    with gc_paused(), ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        results = []
        for served_kind, listed in pool.map(run, wanted):
            done += 1
            results.append((served_kind, listed))
            if options.progress:
                options.progress(served_kind.kind, done, len(wanted))
        _fill_configmap_data(transport, pool, results)
        for served_kind, listed in results:
            inv.problems.extend(listed.problems)
            if listed.unlisted is not None:
                inv.unlisted[(served_kind.group, served_kind.kind)] = listed.unlisted
                continue
            for obj in listed.items:
                inv.add(obj)
    return inv


def _server_version(transport: Transport) -> str | None:
    resp = transport.get("/version")
    if resp.status == 401:
        raise LiveError(f"{transport.host}: authentication refused (401); check the credentials of the context")
    if resp.status != 200:
        return None
    try:
        return str(orjson.loads(resp.body).get("gitVersion") or "") or None
    except (orjson.JSONDecodeError, AttributeError):
        return None


# ---- discovery ----------------------------------------------------------------------------------------
def _discover(transport: Transport, concurrency: int) -> tuple[list[_Served], list[Problem]]:
    """Every listable resource of each group's preferred version (legacy discovery documents)."""
    problems: list[Problem] = []
    core = _get_json(transport, "/api")
    if core is None:
        raise LiveError(f"{transport.host}: /api did not answer with an APIVersions document; is this an API server?")
    docs: list[tuple[str, str, str]] = [("", v, f"/api/{v}") for v in core.get("versions") or [] if v == "v1"]
    groups = _get_json(transport, "/apis") or {}
    for group in groups.get("groups") or []:
        name = group.get("name")
        version = (group.get("preferredVersion") or {}).get("version") or \
            next((v.get("version") for v in group.get("versions") or []), None)
        if name and version:
            docs.append((name, version, f"/apis/{name}/{version}"))

    def fetch(doc: tuple[str, str, str]) -> tuple[str, str, str, dict | None]:
        try:
            return (*doc, _get_json(transport, doc[2]))
        except LiveError:
            return (*doc, None)

    served: list[_Served] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for group, version, path, body in pool.map(fetch, docs):
            if body is None:
                # An aggregated API that is down (e.g. metrics.k8s.io) must not stop the scan.
                problems.append(Problem(transport.host, f"discovery of {path} failed; its kinds are treated as "
                                                        "not served", level="warning"))
                continue
            for res in body.get("resources") or []:
                name = res.get("name") or ""
                if "/" in name or "list" not in (res.get("verbs") or []) or not res.get("kind"):
                    continue
                served.append(_Served(group, version, name, res["kind"], bool(res.get("namespaced"))))
    return served, problems


def _get_json(transport: Transport, path: str) -> dict | None:
    resp = transport.get(path)
    if resp.status == 401:
        raise LiveError(f"{transport.host}: authentication refused (401) at {path}")
    if resp.status != 200:
        return None
    try:
        body = orjson.loads(resp.body)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _plan(served: list[_Served], no_secrets: bool) -> list[tuple[_Served, bool]]:
    """The served resources to list, each with whether to list it as metadata only; stable order."""
    wanted: dict[tuple[str, str], LiveKind] = {(k.group, k.kind): k for k in LIVE_KINDS}
    out: list[tuple[_Served, bool]] = []
    seen: set[tuple[str, str]] = set()
    for s in served:
        key = (s.group, s.kind)
        if key in seen:
            continue
        spec = wanted.get(key)
        if spec is not None and spec.resource == s.resource:
            if no_secrets and spec.resource == "secrets" and not s.group:
                continue
            out.append((s, spec.metadata_only))
            seen.add(key)
        elif s.group in WHOLE_GROUPS:
            out.append((s, False))
            seen.add(key)
    return sorted(out, key=lambda job: (job[0].group, job[0].kind))


# ---- lists --------------------------------------------------------------------------------------------
def _list_kind(transport: Transport, served: _Served, metadata_only: bool, options: LiveOptions) -> _Listed:
    if options.namespace and served.kind == "Namespace" and not served.group:
        return _get_one(transport, served, f"/api/{served.version}/namespaces/{options.namespace}")
    accept = METADATA_ONLY_ACCEPT if metadata_only else "application/json"
    path = served.base_path(options.namespace)
    for _restart in range(MAX_LIST_RESTARTS + 1):
        listed, expired = _paginate(transport, served, path, accept, metadata_only, options.page_size)
        if not expired:
            break
    else:
        return _Listed(unlisted=f"listing {served.resource} kept failing with 410 Gone (continue token expired "
                                f"{MAX_LIST_RESTARTS + 1} times); the cluster changes faster than it can be paged")
    return listed


def _paginate(transport: Transport, served: _Served, path: str, accept: str, metadata_only: bool,
              page_size: int) -> tuple[_Listed, bool]:
    """One complete paginated list; (result, True) when the continue token expired and it must restart."""
    listed = _Listed()
    token = ""
    for _page in range(MAX_PAGES):
        params = {"limit": str(page_size)}
        if token:
            params["continue"] = token
        resp = transport.get(path, params, accept)
        if resp.status == 410 and token:
            return listed, True
        if resp.status != 200:
            return _Listed(unlisted=_refusal(resp, served)), False
        try:
            body = orjson.loads(resp.body)
        except orjson.JSONDecodeError as exc:
            return _Listed(unlisted=f"the API server sent invalid JSON for {served.resource}: {exc.msg}"), False
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            return _Listed(unlisted=f"the API server's answer for {served.resource} is not a list"), False
        if metadata_only and body.get("kind") != "PartialObjectMetadataList":
            # Never accept contents we asked not to receive.
            return _Listed(unlisted=f"the API server did not return {served.resource} as metadata only; "
                                    "refusing to read their contents"), False
        for item in body["items"]:
            if isinstance(item, dict) and isinstance(item.get("metadata"), dict):
                listed.items.append(_as_object(item, served, metadata_only))
        token = (body.get("metadata") or {}).get("continue") or ""
        if not token:
            return listed, False
    listed.problems.append(Problem(transport.host, f"{served.resource}: stopped after {MAX_PAGES} pages",
                                   level="warning"))
    return listed, False


def _as_object(item: dict, served: _Served, metadata_only: bool) -> dict:
    """API list items omit kind/apiVersion (and metadata-only items carry meta.k8s.io's): restore the kind's."""
    if metadata_only:
        meta = item["metadata"]
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for key in SENSITIVE_ANNOTATIONS:
                annotations.pop(key, None)
        return {"apiVersion": served.api_version, "kind": served.kind, "metadata": meta}
    item["apiVersion"] = served.api_version
    item["kind"] = served.kind
    return item


def _get_one(transport: Transport, served: _Served, path: str) -> _Listed:
    resp = transport.get(path)
    if resp.status == 404:
        return _Listed()
    if resp.status != 200:
        return _Listed(unlisted=_refusal(resp, served, verb="get"))
    try:
        obj = orjson.loads(resp.body)
    except orjson.JSONDecodeError as exc:
        return _Listed(unlisted=f"the API server sent invalid JSON for {path}: {exc.msg}")
    return _Listed(items=[_as_object(obj, served, False)] if isinstance(obj, dict) else [])


def mounted_configmaps(objects: Iterable[dict]) -> set[tuple[str, str]]:
    """(namespace, name) of ConfigMaps that Pods or pod templates mount as volumes (directly or projected)."""
    out: set[tuple[str, str]] = set()
    for obj in objects:
        path = POD_TEMPLATE_PATHS.get((group_of(str(obj.get("apiVersion", ""))), obj.get("kind")))
        spec: object = obj
        for key in (*path, "spec") if path is not None else ():
            spec = spec.get(key) if isinstance(spec, dict) else None
        volumes = spec.get("volumes") if isinstance(spec, dict) else None
        namespace = (obj.get("metadata") or {}).get("namespace") or "default"
        for volume in volumes if isinstance(volumes, list) else []:
            if not isinstance(volume, dict):
                continue
            sources = [volume] + [src for src in (volume.get("projected") or {}).get("sources") or []
                                  if isinstance(src, dict)]
            for source in sources:
                name = (source.get("configMap") or {}).get("name") if isinstance(source.get("configMap"), dict) \
                    else None
                if isinstance(name, str) and name:
                    out.add((namespace, name))
    return out


def _fill_configmap_data(transport: Transport, pool: ThreadPoolExecutor,
                         results: list[tuple[_Served, _Listed]]) -> None:
    """Read in full only the ConfigMaps checks need: the ones Pods mount as files (Falco rules, Prometheus
    rule files, agent configs) and CONFIGMAPS_WITH_DATA. Everything else stays metadata only."""
    found = next(((s, listed) for s, listed in results if s.kind == "ConfigMap" and not s.group
                  and listed.unlisted is None), None)
    if found is None:
        return
    served, listed = found
    wanted = mounted_configmaps(o for _, other in results for o in other.items) | set(CONFIGMAPS_WITH_DATA)
    index = {(o["metadata"].get("namespace"), o["metadata"].get("name")): i for i, o in enumerate(listed.items)}
    keys = sorted(key for key in wanted if key in index)

    def fetch(key: tuple[str, str]) -> _Listed:
        try:
            return _get_one(transport, served, f"/api/{served.version}/namespaces/{key[0]}/configmaps/{key[1]}")
        except LiveError as exc:
            return _Listed(unlisted=str(exc))

    for (ns, name), one in zip(keys, pool.map(fetch, keys), strict=True):
        if one.items:
            listed.items[index[(ns, name)]] = one.items[0]
        elif one.unlisted:
            listed.problems.append(Problem(transport.host, f"ConfigMap {ns}/{name}: contents not read: "
                                                           f"{one.unlisted}", level="warning"))


def _refusal(resp: Response, served: _Served, verb: str = "list") -> str:
    """A reason a check can print: for 403 the missing permission and the ClusterRole rule that grants it."""
    message = ""
    try:
        status = orjson.loads(resp.body)
        message = str(status.get("message") or "") if isinstance(status, dict) else ""
    except orjson.JSONDecodeError:
        pass
    if resp.status == 403:
        return (f"missing permission to {verb} {served.resource}"
                f"{'.' + served.group if served.group else ''} (403 Forbidden); add to the ClusterRole: "
                f"{{apiGroups: [\"{served.group}\"], resources: [\"{served.resource}\"], verbs: [\"{verb}\"]}}")
    return f"the API server refused to {verb} {served.resource} (HTTP {resp.status}{': ' + message if message else ''})"


# ---- snapshot -----------------------------------------------------------------------------------------
SNAPSHOT_KEY = "nis2kube.io/snapshot"
MAX_HEADER_BYTES = 4 * 1024 * 1024  # served kinds and unlisted reasons: kilobytes in practice


def snapshot_document(inv: Inventory) -> dict:
    """The inventory as a `List` that `nis2kube scan` reads offline; provenance and gaps travel with it."""
    header = {
        "cluster": inv.source.cluster,
        "server": inv.source.locations[0] if inv.source.locations else None,
        "serverVersion": inv.source.server_version,
        "capturedAt": inv.source.captured_at,
        "secrets": "metadata only" if ("", "Secret") not in inv.unlisted else "not listed",
        "servedKinds": sorted(f"{g}/{k}" if g else k for g, k in inv.served_kinds or ()),
        "unlisted": [{"group": g, "kind": k, "reason": r} for (g, k), r in sorted(inv.unlisted.items())],
    }
    items = [obj for kind in inv.kinds() for obj in inv.objects(kind[1], kind[0])]
    return {"apiVersion": "v1", "kind": "List", SNAPSHOT_KEY: header, "metadata": {}, "items": items}


def restore_snapshot(inv: Inventory, paths: list[str]) -> None:
    """An offline scan of a snapshot gets back the live facts its objects cannot carry.

    Cluster, version and capture time become the report's provenance; served kinds and unlisted kinds
    make checks reach the same verdicts as the live scan did. Only the header at the top of a file that
    starts like a snapshot is parsed (the objects were read by the file loader already)."""
    for path in paths:
        header = _snapshot_header(path)
        if header is None:
            continue
        inv.source.cluster = inv.source.cluster or header.get("cluster")
        inv.source.server_version = inv.source.server_version or header.get("serverVersion")
        inv.source.captured_at = inv.source.captured_at or header.get("capturedAt")
        served = {(group_of(s) if "/" in s else "", s.rsplit("/", 1)[-1])
                  for s in header.get("servedKinds") or [] if isinstance(s, str)}
        inv.served_kinds = (inv.served_kinds or set()) | served
        for entry in header.get("unlisted") or []:
            if isinstance(entry, dict) and isinstance(entry.get("kind"), str):
                inv.unlisted[(str(entry.get("group") or ""), entry["kind"])] = str(entry.get("reason") or "")


def _snapshot_header(path: str) -> dict | None:
    """The `nis2kube.io/snapshot` object near the top of a file, parsed on its own; None if there is none."""
    import json

    marker = f'"{SNAPSHOT_KEY}"'
    if path == "-" or not os.path.isfile(path):
        return None  # stdin is consumed already; FIFOs and devices would block or never end
    try:
        with open(path, "rb") as fh:
            head = fh.read(MAX_HEADER_BYTES)
    except OSError:
        return None  # the file loader has already reported what is wrong with it
    start = head.find(marker.encode(), 0, 256)
    if start < 0:
        return None
    text = head.decode("utf-8", errors="ignore")
    start = text.find(marker) + len(marker)
    colon = text.find(":", start)
    if colon < 0 or text[start:colon].strip():
        return None
    begin = colon + 1
    while begin < len(text) and text[begin] in " \t\r\n":
        begin += 1
    try:
        header, _ = json.JSONDecoder().raw_decode(text, begin)
    except ValueError:
        return None
    return header if isinstance(header, dict) else None
