"""A loopback HTTP server that answers like the Kubernetes API server, for the live-scan tests and benchmark.

It serves legacy discovery (/version, /api, /api/v1, /apis, /apis/<group>/<version>), list responses with
`limit`/`continue` pagination, single-object GETs, PartialObjectMetadataList when asked for it, and Status
bodies for errors. Faults are injected per resource: 403, N times 429 (or 503) before success, 410 Gone
on the first continue token, slow first responses. Every request is logged so tests can assert what the
scanner sent (verbs, paths, Accept headers) - and what it never sent.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson

from nis2kube.inventory.kinds import group_of, is_namespaced
from nis2kube.inventory.live_kinds import LIVE_KINDS

TOKEN = "test-token-1"
PLURALS = {(k.group, k.kind): k.resource for k in LIVE_KINDS}


def plural(group: str, kind: str) -> str:
    if (group, kind) in PLURALS:
        return PLURALS[(group, kind)]
    low = kind.lower()
    if low.endswith("y"):
        return low[:-1] + "ies"
    return low + ("es" if low.endswith(("s", "x")) else "s")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    accept: str
    authorization: str


@dataclass
class Faults:
    forbidden: set[str] = field(default_factory=set)  # resources answering 403
    throttle: dict[str, int] = field(default_factory=dict)  # resource -> number of 429s before success
    unavailable: dict[str, int] = field(default_factory=dict)  # resource -> number of 503s before success
    expire_once: set[str] = field(default_factory=set)  # resources whose first continue token is "expired"
    slow: dict[str, float] = field(default_factory=dict)  # resource -> seconds the first response takes
    broken_discovery: set[str] = field(default_factory=set)  # group-version paths answering 503 forever
    ignore_metadata_accept: bool = False  # play an old server that sends full objects anyway


@dataclass
class _Resource:
    group: str
    version: str
    name: str
    kind: str
    namespaced: bool
    items: list[dict] = field(default_factory=list)


class FakeApiServer:
    """Start with `with FakeApiServer(objects) as api:`; `api.url`, `api.requests`, `api.serving_s`."""

    def __init__(self, objects: list[dict], faults: Faults | None = None, *, extra_kinds: tuple = (),
                 git_version: str = "v1.31.2") -> None:
        self.faults = faults or Faults()
        self.git_version = git_version
        self.requests: list[Request] = []
        self.serving_s = 0.0  # time spent answering, excluding injected delays
        self._lock = threading.Lock()
        self._counts: dict[str, int] = defaultdict(int)
        self._epoch = 1
        self._local = threading.local()  # per-request injected delay, excluded from serving_s
        self.resources: dict[tuple[str, str, str], _Resource] = {}
        for obj in objects:
            self._resource_for(obj["apiVersion"], obj["kind"]).items.append(obj)
        for api_version, kind in extra_kinds:  # served kinds with no objects (an installed, unused CRD)
            self._resource_for(api_version, kind)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _resource_for(self, api_version: str, kind: str) -> _Resource:
        group = group_of(api_version)
        version = api_version.rsplit("/", 1)[-1]
        name = plural(group, kind)
        key = (group, version, name)
        if key not in self.resources:
            self.resources[key] = _Resource(group, version, name, kind, is_namespaced(group, kind))
        return self.resources[key]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(self, path: str, *, context: str = "plant-1", token: str = TOKEN) -> str:
        """Write a kubeconfig pointing at this server; returns the path."""
        import yaml

        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "auditor", "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "auditor"}}],
        }  # fmt: skip
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(doc, fh)
        return path

    # ---- answering ------------------------------------------------------------------------------------
    def answer(self, req: Request) -> tuple[int, dict, bytes]:
        if req.method != "GET":
            return _status(405, "MethodNotAllowed", f"{req.method} is not allowed here")
        scheme, _, credential = req.authorization.partition(" ")
        if scheme.lower() != "bearer" or credential != TOKEN:
            return _status(401, "Unauthorized", "Unauthorized")
        parts = [p for p in req.path.split("/") if p]
        if req.path == "/version":
            return 200, {}, orjson.dumps({"major": "1", "minor": "31", "gitVersion": self.git_version})
        if req.path == "/api":
            return 200, {}, orjson.dumps({"kind": "APIVersions", "versions": ["v1"]})
        if req.path == "/apis":
            return 200, {}, orjson.dumps(self._group_list())
        if parts[0] == "api" and len(parts) == 2:
            return self._resource_list("", parts[1])
        if parts[0] == "apis" and len(parts) == 3:
            if req.path in self.faults.broken_discovery:
                return _status(503, "ServiceUnavailable", "the server is currently unable to handle the request")
            return self._resource_list(parts[1], parts[2])
        group, version, rest = ("", parts[1], parts[2:]) if parts[0] == "api" else (parts[1], parts[2], parts[3:])
        namespace = None
        if len(rest) >= 2 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
            if not rest:  # GET one Namespace
                rest = ["namespaces", namespace]
                namespace = None
        resource = self.resources.get((group, version, rest[0])) if rest else None
        if resource is None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        fault = self._fault(resource.name)
        if fault is not None:
            return fault
        if len(rest) == 2:
            return self._get_one(resource, namespace, rest[1], req)
        return self._list(resource, namespace, req)

    def _fault(self, name: str) -> tuple[int, dict, bytes] | None:
        with self._lock:
            self._counts[name] += 1
            seen = self._counts[name]
        if name in self.faults.forbidden:
            return _status(403, "Forbidden", f'{name} is forbidden: User "auditor" cannot list resource "{name}"')
        if seen <= self.faults.throttle.get(name, 0):
            return 429, {"Retry-After": "0"}, _status(429, "TooManyRequests", "too many requests")[2]
        if seen <= self.faults.unavailable.get(name, 0):
            return _status(503, "ServiceUnavailable", "etcd leader changed")
        if seen == 1 and name in self.faults.slow:
            self._local.delay = self.faults.slow[name]
            time.sleep(self.faults.slow[name])
        return None

    def _group_list(self) -> dict:
        groups: dict[str, list[str]] = defaultdict(list)
        for group, version, _ in self.resources:
            if group and version not in groups[group]:
                groups[group].append(version)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
             "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
            for g, vs in sorted(groups.items())]}  # fmt: skip

    def _resource_list(self, group: str, version: str) -> tuple[int, dict, bytes]:
        resources = [r for (g, v, _), r in sorted(self.resources.items()) if g == group and v == version]
        if not resources:
            return _status(404, "NotFound", "the server could not find the requested resource")
        gv = f"{group}/{version}" if group else version
        body = {"kind": "APIResourceList", "groupVersion": gv, "resources": [
            {"name": r.name, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind,
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]} for r in resources]}
        for r in resources:  # subresources are in discovery too and must be skipped by the scanner
            body["resources"].append({"name": f"{r.name}/status", "namespaced": r.namespaced, "kind": r.kind,
                                      "verbs": ["get", "patch", "update"]})
        return 200, {}, orjson.dumps(body)

    def _list(self, resource: _Resource, namespace: str | None, req: Request) -> tuple[int, dict, bytes]:
        items = [o for o in resource.items if namespace is None or o["metadata"].get("namespace") == namespace]
        limit = int(req.query.get("limit") or 0) or len(items) or 1
        offset = 0
        token = req.query.get("continue")
        if token:
            state = orjson.loads(base64.urlsafe_b64decode(token))
            key = f"expired:{resource.name}"
            with self._lock:
                expire = resource.name in self.faults.expire_once and not self._counts.get(key)
                self._counts[key] = 1
            if expire:
                return _status(410, "Expired", "The provided continue parameter is too old to display a consistent "
                                               "list result.")
            offset = state["offset"]
        page = items[offset:offset + limit]
        more = offset + limit < len(items)
        meta = {"resourceVersion": str(1000 + self._epoch)}
        if more:
            meta["continue"] = base64.urlsafe_b64encode(
                orjson.dumps({"offset": offset + limit, "rv": self._epoch})).decode()
            meta["remainingItemCount"] = len(items) - offset - limit
        if "as=PartialObjectMetadataList" in req.accept and not self.faults.ignore_metadata_accept:
            body = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                    "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                               "metadata": o["metadata"]} for o in page]}
        else:
            gv = f"{resource.group}/{resource.version}" if resource.group else resource.version
            # Real list items carry no kind/apiVersion; the list does.
            body = {"kind": f"{resource.kind}List", "apiVersion": gv, "metadata": meta,
                    "items": [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]}
        return 200, {}, orjson.dumps(body)

    def _get_one(self, resource: _Resource, namespace: str | None, name: str, req: Request
                 ) -> tuple[int, dict, bytes]:
        for obj in resource.items:
            meta = obj["metadata"]
            if meta.get("name") == name and (namespace is None or meta.get("namespace") == namespace):
                return 200, {}, orjson.dumps(obj)
        return _status(404, "NotFound", f'{resource.name} "{name}" not found')


def _status(code: int, reason: str, message: str) -> tuple[int, dict, bytes]:
    return code, {}, orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                   "message": message, "reason": reason, "code": code})


def _handler(api: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            started = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            req = Request(self.command, split.path, query, self.headers.get("Accept", ""),
                          self.headers.get("Authorization", ""))
            with api._lock:
                api.requests.append(req)
            api._local.delay = 0.0
            code, headers, body = api.answer(req)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
            elapsed = time.perf_counter() - started - api._local.delay
            with api._lock:
                api.serving_s += elapsed

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
