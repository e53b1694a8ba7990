"""The Store: every change to an incident is an appended event; the current state is their fold.

Durability: a write is acknowledged only after its transaction commits. SQLite runs in WAL mode with
synchronous=FULL (a commit is fsynced before it returns) and `BEGIN IMMEDIATE`, so concurrent writers queue
on the database lock instead of failing on lock upgrades. PostgreSQL serialises writers per incident with
`SELECT ... FOR UPDATE` and per dedup key with transaction advisory locks. Each event carries a SHA-256
chained to the previous event of the incident, so `verify()` detects any edit of the history.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, exists, false, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from nis2kube.incidents.model import Event, Incident, IncidentError, fold, iso, utcnow
from nis2kube.store.schema import alerts, evidence_blobs, incident_events, incidents

GENESIS = "0" * 64
ENV_DB = "NIS2KUBE_DB"


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which and why (never a password)."""


class NotFound(LookupError):
    pass


def default_url() -> str:
    """$NIS2KUBE_DB, else a SQLite file under $XDG_DATA_HOME/nis2kube (~/.local/share/nis2kube)."""
    if os.environ.get(ENV_DB):
        return os.environ[ENV_DB]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return "sqlite:///" + os.path.join(base, "nis2kube", "nis2kube.db")


def normalise_url(url: str) -> str:
    """Accept plain paths and postgresql:// URLs; pick the psycopg 3 driver for PostgreSQL."""
    if "://" not in url:
        return "sqlite:///" + os.path.abspath(url)
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _canonical(data: dict[str, Any]) -> str:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def event_hash(prev: str, incident_id: str, seq: int, type_: str, actor: str, at: datetime, data: str) -> str:
    body = "\n".join((prev, incident_id, str(seq), type_, actor, iso(at) or "", data))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class IngestResult:
    alert_id: int
    incident_id: str | None
    opened: bool


class Store:
    def __init__(self, url: str | None = None, migrate: bool = True) -> None:
        self.url = normalise_url(url or default_url())
        self.is_sqlite = self.url.startswith("sqlite")
        # One writer at a time inside this process: SQLite has one write lock anyway, and queueing here is
        # cheaper than spinning on SQLITE_BUSY.
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self.engine = self._create_engine()
        if migrate:
            self.migrate()

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            path = self.url.split("///", 1)[1] if "///" in self.url else ""
            if path and path != ":memory:":
                try:
                    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the directory for {path}: {exc.strerror}") from None
            engine = create_engine(self.url, connect_args={"timeout": 30, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn, _record) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        try:
            # No pre-ping: it costs a round trip per request; a dropped connection is invalidated on first use.
            return create_engine(self.url, pool_size=10, max_overflow=10, pool_recycle=3600)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot use database URL: {type(exc).__name__}: {exc}") from None

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when it is already there)."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("nis2kube.store").joinpath("migrations")))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        try:
            with self._locked(), self.engine.begin() as conn:
                if MigrationContext.configure(conn).get_current_revision() == head:
                    return
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreError(f"cannot open the database {self.safe_url}: {exc.orig}") from None

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def _locked(self):
        return self._write_lock if self._write_lock is not None else _NullLock()

    # -- writes ----------------------------------------------------------------------------------------------
    def create(self, actor: str, data: dict[str, Any], at: datetime | None = None) -> Incident:
        """Open a new incident; the id is INC-<date>-<random> so concurrent writers never collide."""
        at = at or utcnow()
        for _ in range(5):
            incident_id = f"INC-{at:%Y%m%d}-{secrets.token_hex(3)}"
            try:
                with self._locked(), self.engine.begin() as conn:
                    return self._append(conn, Incident(id=incident_id), GENESIS, "opened", actor, data, at)[0]
            except IntegrityError:
                continue
        raise StoreError("could not allocate a unique incident id")

    def append(self, incident_id: str, type_: str, actor: str, data: dict[str, Any],
               at: datetime | None = None) -> Incident:
        """Append one event and return the new state; raises IncidentError when not allowed."""
        with self._locked(), self.engine.begin() as conn:
            current, head = self._load(conn, incident_id, for_update=True)
            return self._append(conn, current, head, type_, actor, data, at or utcnow())[0]

    def add_evidence(self, incident_id: str, actor: str, name: str, content: bytes | None, sha256: str, size: int,
                     description: str | None = None) -> Incident:
        """Record an evidence file. With `content`, its bytes are kept (once per SHA-256) in the same transaction
        as the event, so the record never names evidence the database does not hold."""
        if content is not None and hashlib.sha256(content).hexdigest() != sha256:
            raise StoreError(f"evidence {name}: content does not match its SHA-256")
        data = {"name": name, "sha256": sha256, "size": size, "stored": content is not None}
        if description:
            data["description"] = description
        with self._locked(), self.engine.begin() as conn:
            current, head = self._load(conn, incident_id, for_update=True)
            if content is not None and conn.execute(
                    select(evidence_blobs.c.sha256).where(evidence_blobs.c.sha256 == sha256)).first() is None:
                conn.execute(evidence_blobs.insert().values(sha256=sha256, size=len(content), content=content,
                                                            stored_at=utcnow()))
            return self._append(conn, current, head, "evidence", actor, data, utcnow())[0]

    def evidence_content(self, sha256: str) -> bytes:
        """The stored bytes of an evidence file, checked against their SHA-256 before they are handed out."""
        with self.engine.connect() as conn:
            row = conn.execute(select(evidence_blobs.c.content).where(evidence_blobs.c.sha256 == sha256)).first()
        if row is None:
            raise NotFound(f"no stored evidence with sha256 {sha256}")
        content = bytes(row.content)
        if hashlib.sha256(content).hexdigest() != sha256:
            raise StoreError(f"stored evidence {sha256} is corrupted: its content no longer has that SHA-256")
        return content

    def _locked_select(self, query):
        """Row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the database write lock."""
        return query if self.is_sqlite else query.with_for_update()

    def _load(self, conn: Connection, incident_id: str, for_update: bool = False) -> tuple[Incident, str]:
        """The current state and the head of its hash chain."""
        query = select(incidents.c.state, incidents.c.last_hash).where(incidents.c.id == incident_id)
        row = conn.execute(self._locked_select(query) if for_update else query).first()
        if row is None:
            raise NotFound(f"no incident {incident_id!r}")
        return Incident.from_dict(orjson.loads(row.state)), row.last_hash

    def _append(self, conn: Connection, current: Incident, prev: str, type_: str, actor: str,
                data: dict[str, Any], at: datetime) -> tuple[Incident, str]:
        data_text = _canonical(data)
        seq = current.version + 1
        new = current.apply(Event(current.id, seq, type_, actor, at, orjson.loads(data_text)))
        digest = event_hash(prev, current.id, seq, type_, actor, at, data_text)
        conn.execute(incident_events.insert().values(
            incident_id=current.id, seq=seq, type=type_, actor=actor, at=at, data=data_text, prev_hash=prev,
            hash=digest))
        values = {"status": str(new.status), "is_open": new.is_open, "dedup_key": new.dedup_key,
                  "last_alert_at": new.last_alert_at, "version": new.version, "last_hash": digest,
                  "state": orjson.dumps(new.to_dict()).decode(), "updated_at": at}
        if current.version:
            # the version guard makes a lost update impossible even if a lock was skipped by mistake
            done = conn.execute(incidents.update().where(
                incidents.c.id == current.id, incidents.c.version == current.version).values(**values))
            if done.rowcount != 1:
                raise StoreError(f"incident {current.id} changed concurrently; retry")
        else:
            conn.execute(incidents.insert().values(id=current.id, **values))
        return new, digest

    def ingest(self, alert, min_priority: str, window_minutes: int, actor: str | None = None) -> IngestResult:
        """Store one alert; see `ingest_batch`."""
        return self.ingest_batch([alert], min_priority, window_minutes, actor)[0]

    def ingest_batch(self, batch: list, min_priority: str, window_minutes: int,
                     actor: str | None = None) -> list[IngestResult]:
        """Store the alerts of one webhook request in one transaction: all or none, so a failed request that the
        sender retries leaves no partial copy. At/above `min_priority` an alert opens or updates a detected
        incident (deduplicated); a re-send of an alert already stored goes to the incident its copies went to."""
        if not batch:
            return []
        now = utcnow()
        since = now - timedelta(minutes=window_minutes)
        with self._locked(), self.engine.begin() as conn:
            self._lock_dedup_keys(conn, {a.dedup_key for a in batch
                                         if a.occurrence_key or a.at_or_above(min_priority)})
            return [self._ingest_one(conn, a, min_priority, since, now, actor or f"webhook:{a.source}")
                    for a in batch]

    def _lock_dedup_keys(self, conn: Connection, keys: set[str]) -> None:
        """PostgreSQL: a transaction advisory lock per dedup key (the same lock ids as
        `pg_advisory_xact_lock(hashtext(key))`), so concurrent requests cannot both open an incident for one key.
        Taken in one global order, by lock id, so requests sharing keys queue instead of deadlocking; the sorted
        subquery is not flattened, so the locks are taken in its order, in one round trip."""
        if self.is_sqlite or not keys:
            return
        conn.execute(text("SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtext(k) AS h "
                          "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered"), {"keys": sorted(keys)})

    def _ingest_one(self, conn: Connection, alert, min_priority: str, since: datetime, now: datetime,
                    actor: str) -> IngestResult:
        key = alert.occurrence_key
        resolved = alert.status == "resolved"
        first_id, incident_id, ended = self._copies(conn, key, resolved) if key else (None, None, False)
        opened = False
        if incident_id:
            # The same alert again: no new incident and no second "alert" event (a re-send is not new evidence);
            # a closed incident keeps it too, as that occurrence was handled there.
            if resolved and not ended:
                self._record_end(conn, incident_id, alert, actor, now)
        elif alert.at_or_above(min_priority):  # new, or no copy went to an incident (e.g. min_priority was higher)
            incident_id, opened = self._open_or_update(conn, alert, since, now, actor)
        alert_id = conn.execute(alerts.insert().values(
            received_at=now, source=alert.source, rule=alert.rule[:512], priority=alert.priority,
            workload=alert.workload[:512], incident_id=incident_id, record=_canonical(alert.record()),
            status=alert.status, occurrence_key=key, repeat_of=first_id)).inserted_primary_key[0]
        return IngestResult(int(alert_id), incident_id, opened)

    def _open_or_update(self, conn: Connection, alert, since: datetime, now: datetime,
                        actor: str) -> tuple[str, bool]:
        """(incident id, opened): the open incident with the alert's dedup key seen since `since`, else a new one."""
        row = conn.execute(self._locked_select(
            select(incidents.c.id, incidents.c.state, incidents.c.last_hash).where(
                incidents.c.is_open.is_(True), incidents.c.dedup_key == alert.dedup_key,
                incidents.c.last_alert_at >= since).order_by(incidents.c.last_alert_at.desc()).limit(1))
        ).first()
        link = {"at": iso(now), "summary": alert.summary, "rule": alert.rule, "priority": alert.priority,
                "namespaces": [alert.namespace] if alert.namespace else [],
                "workloads": [alert.workload] if alert.workload else [], "iocs": alert.iocs}
        if row is not None:
            self._append(conn, Incident.from_dict(orjson.loads(row.state)), row.last_hash, "alert", actor, link, now)
            return row.id, False
        incident_id = f"INC-{now:%Y%m%d}-{secrets.token_hex(3)}"
        severity = "critical" if alert.priority in ("critical", "alert", "emergency") else "high"
        state, head = self._append(conn, Incident(id=incident_id), GENESIS, "opened", actor, {
            "title": f"{alert.rule} on {alert.workload or 'unknown workload'}"[:500],
            "detected_at": iso(alert.at), "source": alert.source, "dedup_key": alert.dedup_key,
            "severity": severity}, now)
        self._append(conn, state, head, "alert", actor, link, now)
        return incident_id, True

    @staticmethod
    def _copies(conn: Connection, key: str, resolved: bool) -> tuple[int | None, str | None, bool]:
        """(id of the first stored copy, the incident the copies went to, whether a resolved copy went to an
        incident already), in one query. The first two come from the newest copy alone (one index probe, however
        many re-sends): once a copy went to an incident every later copy is linked to it, and each copy names the
        first in `repeat_of`. The third is asked only for a "resolved" alert (Alertmanager may send it again):
        one more probe of the same index, in the same round trip, which a firing re-send does not pay."""
        ended = exists().where(alerts.c.occurrence_key == key, alerts.c.status == "resolved",
                               alerts.c.incident_id.is_not(None)).correlate(None) if resolved else false()
        row = conn.execute(select(alerts.c.id, alerts.c.incident_id, alerts.c.repeat_of, ended.label("ended")).where(
            alerts.c.occurrence_key == key).order_by(alerts.c.id.desc()).limit(1)).first()
        return (None, None, False) if row is None else (row.repeat_of or row.id, row.incident_id, bool(row.ended))

    def _record_end(self, conn: Connection, incident_id: str, alert, actor: str, now: datetime) -> None:
        """A timeline entry at the sender's end time (endsAt); timeline entries are allowed on closed incidents."""
        current, head = self._load(conn, incident_id, for_update=True)
        self._append(conn, current, head, "timeline", actor, {
            "at": alert.ref.get("ends_at") or iso(now),
            "text": f"alert resolved at the source: {alert.rule} on {alert.workload or 'unknown workload'}"}, now)

    # -- reads -----------------------------------------------------------------------------------------------
    def get(self, incident_id: str) -> Incident:
        with self.engine.connect() as conn:
            return self._load(conn, incident_id)[0]

    def list(self, include_closed: bool = False) -> list[Incident]:
        query = select(incidents.c.state).order_by(incidents.c.id)
        if not include_closed:
            query = query.where(incidents.c.is_open.is_(True))
        with self.engine.connect() as conn:
            return [Incident.from_dict(orjson.loads(r.state)) for r in conn.execute(query)]

    def list_reportable(self) -> list[Incident]:
        """Open incidents plus closed significant ones whose final report is still due."""
        from nis2kube.incidents.model import ReportKind

        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(select(incidents.c.state).order_by(incidents.c.id)):
                inc = Incident.from_dict(orjson.loads(row.state))
                if inc.is_open or (inc.significant and inc.submitted(ReportKind.FINAL) is None):
                    out.append(inc)
        return out

    def events(self, incident_id: str) -> list[Event]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(incident_events).where(incident_events.c.incident_id == incident_id)
                                .order_by(incident_events.c.seq)).all()
        if not rows:
            raise NotFound(f"no incident {incident_id!r}")
        return [Event(r.incident_id, r.seq, r.type, r.actor, r.at, orjson.loads(r.data), r.hash) for r in rows]

    def replay(self, incident_id: str) -> Incident:
        return fold(incident_id, self.events(incident_id))

    def alert_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM alerts")).scalar_one())

    def verify(self) -> list[str]:
        """Consistency problems: broken hash chains, seq gaps, projections that differ from the fold, evidence
        content that is missing or no longer matches its hash."""
        problems: list[str] = []
        with self.engine.connect() as conn:
            rows = conn.execute(select(incident_events).order_by(incident_events.c.incident_id,
                                                                 incident_events.c.seq)).all()
            projections = {r.id: (r.state, r.last_hash) for r in conn.execute(
                select(incidents.c.id, incidents.c.state, incidents.c.last_hash))}
            blobs = conn.execute(select(evidence_blobs.c.sha256, evidence_blobs.c.content)).all()
        by_incident: dict[str, list] = {}
        for r in rows:
            by_incident.setdefault(r.incident_id, []).append(r)
        for incident_id, evs in by_incident.items():
            prev = GENESIS
            state = Incident(id=incident_id)
            for expected_seq, r in enumerate(evs, 1):
                if r.seq != expected_seq:
                    problems.append(f"{incident_id}: event seq {r.seq}, expected {expected_seq}")
                    break
                if r.prev_hash != prev or r.hash != event_hash(prev, incident_id, r.seq, r.type, r.actor, r.at,
                                                               r.data):
                    problems.append(f"{incident_id}: hash chain broken at event {r.seq}")
                    break
                prev = r.hash
                try:
                    state = state.apply(Event(incident_id, r.seq, r.type, r.actor, r.at, orjson.loads(r.data)))
                except IncidentError as exc:
                    problems.append(f"{incident_id}: event {r.seq} does not apply: {exc}")
                    break
            stored = projections.pop(incident_id, None)
            if stored is None:
                problems.append(f"{incident_id}: events without a projection row")
            elif orjson.loads(stored[0]) != orjson.loads(orjson.dumps(state.to_dict())) or stored[1] != prev:
                problems.append(f"{incident_id}: projection differs from the replayed events")
        problems.extend(f"{i}: projection row without events" for i in projections)
        held = {blob.sha256 for blob in blobs}
        problems.extend(f"evidence {blob.sha256}: stored content does not match its SHA-256" for blob in blobs
                        if hashlib.sha256(bytes(blob.content)).hexdigest() != blob.sha256)
        for r in rows:
            if r.type == "evidence" and (d := orjson.loads(r.data)).get("stored") and d.get("sha256") not in held:
                problems.append(f"{r.incident_id}: event {r.seq} names stored evidence {d.get('sha256')} "
                                "that the database does not hold")
        return problems


class _NullLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
