"""The intake service: Falco and Alertmanager webhooks in, incidents and Prometheus metrics out.

Order of checks on a webhook: size limit, then authentication (HMAC needs the raw body), then JSON and
schema validation, then the store. Nothing is stored unless all pass. Clients get short JSON errors,
never stack traces.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from nis2kube.incidents.clocks import deadlines, next_deadline
from nis2kube.incidents.intake import PayloadError, parse_alertmanager, parse_falco
from nis2kube.incidents.model import Incident, iso, utcnow
from nis2kube.incidents.profile import EntityProfile
from nis2kube.store import NotFound, Store

log = logging.getLogger("nis2kube.server")
SIGNATURE_HEADER = "x-nis2kube-signature"
DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    token: str | None = None
    hmac_secret: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY

    def __post_init__(self) -> None:
        if not self.token and not self.hmac_secret:
            raise ValueError("the intake service needs a bearer token or an HMAC secret (see docs/incidents.md)")


class _Reject(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.message, self.headers = status, message, headers


def _authorised(settings: ServerSettings, headers, body: bytes) -> bool:
    auth = headers.get("authorization", "")
    if settings.token and auth.startswith("Bearer ") and hmac.compare_digest(
            auth[7:].strip().encode(), settings.token.encode()):
        return True
    signature = headers.get(SIGNATURE_HEADER, "")
    if settings.hmac_secret and signature.startswith("sha256="):
        expected = hmac.new(settings.hmac_secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature[7:].strip().lower().encode(), expected.encode())
    return False


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _Reject(413, f"payload larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Reject(413, f"payload larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _deadline_view(inc: Incident, entity: EntityProfile, now) -> dict[str, Any]:
    items = deadlines(inc, entity.timezone, entity.trust_service_provider)
    nxt = next_deadline(items, now)
    return {
        "deadlines": [{"report": str(d.kind), "due_at": iso(d.due_at), "basis": d.basis, "met_at": iso(d.met_at),
                       "state": d.state(now), "seconds_left": d.seconds_left(now)} for d in items],
        "next_deadline": None if nxt is None else {"report": str(nxt.kind), "due_at": iso(nxt.due_at),
                                                   "seconds_left": nxt.seconds_left(now)},
    }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def create_app(store: Store, settings: ServerSettings, entity: EntityProfile | None = None) -> FastAPI:
    entity = entity or EntityProfile()
    app = FastAPI(title="nis2kube intake", docs_url=None, redoc_url=None, openapi_url=None)
    counters: Counter[tuple[str, str]] = Counter()
    counter_lock = threading.Lock()

    def count(source: str, outcome: str, n: int = 1) -> None:
        with counter_lock:
            counters[(source, outcome)] += n

    @app.exception_handler(_Reject)
    async def _on_reject(_request: Request, exc: _Reject) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _on_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse({"error": "internal error; see the server log"}, status_code=500)

    async def _authorise(request: Request, body: bytes) -> None:
        if not _authorised(settings, request.headers, body):
            raise _Reject(401, "missing or invalid credentials", {"WWW-Authenticate": "Bearer"})

    async def _webhook(request: Request, source: str, parse) -> JSONResponse:
        try:
            body = await _read_body(request, settings.max_body_bytes)
            await _authorise(request, body)
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise _Reject(400, f"body is not valid JSON: {exc}") from None
            try:
                parsed = parse(payload)
            except PayloadError as exc:
                raise _Reject(422, str(exc)) from None
        except _Reject as exc:
            count(source, f"rejected_{exc.status}")
            raise
        # one request, one transaction: a database error stores none of its alerts, and the sender's retry
        # of the whole request cannot leave duplicates of a partial first attempt
        results = await run_in_threadpool(store.ingest_batch, parsed, entity.min_priority,
                                          entity.dedup_window_minutes)
        count(source, "accepted", len(parsed))
        return JSONResponse({"accepted": len(results), "results": [
            {"alert_id": r.alert_id, "incident_id": r.incident_id, "opened": r.opened} for r in results]})

    @app.post("/webhooks/falco")
    async def falco(request: Request) -> JSONResponse:
        return await _webhook(request, "falco", parse_falco)

    @app.post("/webhooks/alertmanager")
    async def alertmanager(request: Request) -> JSONResponse:
        return await _webhook(request, "alertmanager", parse_alertmanager)

    @app.get("/incidents")
    async def list_incidents(request: Request, all: bool = False) -> Response:
        await _authorise(request, b"")
        items = await run_in_threadpool(store.list, all)
        now = utcnow()
        return Response(orjson.dumps({"incidents": [
            {**inc.to_dict(), **_deadline_view(inc, entity, now)} for inc in items]}),
            media_type="application/json")

    @app.get("/incidents/{incident_id}")
    async def get_incident(request: Request, incident_id: str) -> Response:
        await _authorise(request, b"")
        try:
            inc = await run_in_threadpool(store.get, incident_id)
        except NotFound:
            raise _Reject(404, f"no incident {incident_id!r}") from None
        return Response(orjson.dumps({**inc.to_dict(), **_deadline_view(inc, entity, utcnow())}),
                        media_type="application/json")

    @app.get("/metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        await _authorise(request, b"")
        items = await run_in_threadpool(store.list_reportable)
        now = utcnow()
        lines = ["# HELP nis2kube_incidents_open Incidents not closed.", "# TYPE nis2kube_incidents_open gauge",
                 f"nis2kube_incidents_open {sum(1 for i in items if i.is_open)}",
                 "# HELP nis2kube_incident_next_deadline_seconds Seconds until the next Art. 23 report is due "
                 "(negative: overdue).",
                 "# TYPE nis2kube_incident_next_deadline_seconds gauge"]
        overdue = 0
        for inc in items:
            items_dl = deadlines(inc, entity.timezone, entity.trust_service_provider)
            overdue += any(d.state(now) == "overdue" for d in items_dl)
            nxt = next_deadline(items_dl, now)
            if nxt is not None:
                lines.append(f'nis2kube_incident_next_deadline_seconds{{incident="{_label(inc.id)}",'
                             f'report="{nxt.kind}"}} {nxt.seconds_left(now):.0f}')
        lines += ["# HELP nis2kube_incidents_overdue Incidents with at least one overdue report.",
                  "# TYPE nis2kube_incidents_overdue gauge", f"nis2kube_incidents_overdue {overdue}",
                  "# HELP nis2kube_webhook_events_total Webhook alerts by source and outcome.",
                  "# TYPE nis2kube_webhook_events_total counter"]
        with counter_lock:
            lines += [f'nis2kube_webhook_events_total{{source="{s}",outcome="{o}"}} {n}'
                      for (s, o), n in sorted(counters.items())]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
