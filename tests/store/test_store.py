"""The event store on SQLite and on a real PostgreSQL server: same behaviour on both (parity)."""

from __future__ import annotations

import threading

import pg_fixtures
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from nis2kube.incidents.intake import parse_falco
from nis2kube.incidents.model import IncidentError, Status
from nis2kube.store import NotFound, Store, StoreError

pg_server, pg_url, db_url = pg_fixtures.pg_server, pg_fixtures.pg_url, pg_fixtures.db_url
SHA = "12" * 32


def falco(rule="Terminal shell in container", pod="scada-gw-7d9c5b6f8d-x2k4q", priority="Critical"):
    return parse_falco({"rule": rule, "priority": priority, "output": f"shell in {pod}", "source": "syscall",
                        "time": "2026-11-22T10:00:00.000000001Z", "hostname": "worker-1",
                        "output_fields": {"k8s.ns.name": "ot-line3", "k8s.pod.name": pod, "proc.cmdline": "sh"}})[0]


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    yield s
    s.close()


def test_events_are_the_record(store):
    inc = store.create("alice", {"title": "Exec into historian", "namespaces": ["ot"]})
    store.append(inc.id, "triaged", "bob", {"decision": "significant", "aware_at": "2026-03-28T12:00:00+01:00"})
    store.append(inc.id, "report-submitted", "bob", {"kind": "early-warning", "content_sha256": SHA})
    current = store.get(inc.id)
    assert current.status == Status.EARLY_WARNING_SENT and current.version == 3
    assert current.aware_at.isoformat() == "2026-03-28T11:00:00+00:00"
    assert store.replay(inc.id) == current
    assert [(e.seq, e.type, e.actor) for e in store.events(inc.id)] == [
        (1, "opened", "alice"), (2, "triaged", "bob"), (3, "report-submitted", "bob")]
    assert store.verify() == []


def test_refused_transition_writes_nothing(store):
    inc = store.create("alice", {"title": "x"})
    with pytest.raises(IncidentError):
        store.append(inc.id, "report-submitted", "bob", {"kind": "final", "content_sha256": SHA})
    assert len(store.events(inc.id)) == 1 and store.get(inc.id).version == 1
    with pytest.raises(NotFound):
        store.append("INC-missing", "timeline", "bob", {"text": "x"})


def test_history_cannot_be_edited(store):
    inc = store.create("alice", {"title": "x"})
    store.ingest(falco(priority="Debug"), "error", 60)
    for statement in ("UPDATE incident_events SET actor = 'mallory'", "DELETE FROM incident_events",
                      "DELETE FROM alerts"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
    assert store.events(inc.id)[0].actor == "alice" and store.alert_count() == 1


def test_verify_detects_tampering(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 't.db'}")
    inc = store.create("alice", {"title": "x"})
    store.append(inc.id, "timeline", "alice", {"text": "isolated node"})
    with store.engine.begin() as conn:  # an attacker with file access drops the guard
        conn.execute(text("DROP TRIGGER incident_events_no_update"))
        conn.execute(text("UPDATE incident_events SET data = '{\"text\":\"nothing happened\"}' WHERE seq = 2"))
    assert store.verify()[0] == f"{inc.id}: hash chain broken at event 2"


def test_intake_dedup_threshold_and_window(store):
    first = store.ingest(falco(), "error", 60)
    second = store.ingest(falco(pod="scada-gw-7d9c5b6f8d-b7k2m"), "error", 60)  # same Deployment, other Pod
    assert first.opened and not second.opened and first.incident_id == second.incident_id
    inc = store.get(first.incident_id)
    assert inc.alert_count == 2 and inc.status == Status.DETECTED and inc.workloads == ["ot-line3/scada-gw"]
    assert inc.title == "Terminal shell in container on ot-line3/scada-gw" and inc.severity == "critical"
    other = store.ingest(falco(pod="historian-0"), "error", 60)
    assert other.opened and other.incident_id != first.incident_id
    low = store.ingest(falco(priority="Notice"), "error", 60)
    assert low.incident_id is None and not low.opened
    assert store.alert_count() == 4 and len(store.list()) == 2
    assert store.ingest(falco(), "error", 0).opened  # outside the window: a new incident
    store.append(first.incident_id, "closed", "alice", {})
    assert store.ingest(falco(), "error", 60).incident_id != first.incident_id  # closed ones are not reused
    assert store.verify() == []


def test_concurrent_intake_of_one_rule_opens_one_incident(store):
    results, errors = [], []

    def worker() -> None:
        try:
            for _ in range(10):
                results.append(store.ingest(falco(), "error", 60))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len({r.incident_id for r in results}) == 1 and sum(r.opened for r in results) == 1
    assert store.get(results[0].incident_id).alert_count == 60 and store.verify() == []


def test_concurrent_appends_keep_a_gapless_log(store):
    inc = store.create("alice", {"title": "x"})

    def worker(n: int) -> None:
        for i in range(15):
            store.append(inc.id, "timeline", f"w{n}", {"text": f"step {i}"})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [e.seq for e in store.events(inc.id)] == list(range(1, 62))
    assert len(store.get(inc.id).timeline) == 60 and store.verify() == []


def test_migrations_are_idempotent_and_listing(db_url):
    a = Store(db_url)
    a.create("alice", {"title": "open one"})
    closed = a.create("alice", {"title": "closed one"})
    a.append(closed.id, "closed", "alice", {})
    b = Store(db_url)  # re-open: migration is a no-op, data intact
    assert [i.title for i in b.list()] == ["open one"]
    assert {i.title for i in b.list(include_closed=True)} == {"open one", "closed one"}
    a.close()
    b.close()


def test_evidence_bytes_are_kept_once_checked_and_append_only(store):
    import hashlib

    inc = store.create("alice", {"title": "Exfiltration from historian"})
    pcap = bytes(range(256)) * 4096  # 1 MiB of every byte value: binary-safe on both backends
    digest = hashlib.sha256(pcap).hexdigest()
    store.add_evidence(inc.id, "alice", "historian.pcap", pcap, digest, len(pcap), "capture 11:50-12:40")
    store.add_evidence(inc.id, "bob", "historian-copy.pcap", pcap, digest, len(pcap))  # same bytes: one row
    store.add_evidence(inc.id, "bob", "disk.img", None, "ab" * 32, 10 << 30, "kept in the forensic store")
    evidence = store.get(inc.id).evidence
    assert [(e["name"], e.get("stored", False)) for e in evidence] == [
        ("historian.pcap", True), ("historian-copy.pcap", True), ("disk.img", False)]
    assert store.evidence_content(digest) == pcap
    with pytest.raises(NotFound):
        store.evidence_content("ab" * 32)
    with pytest.raises(StoreError, match="does not match"):
        store.add_evidence(inc.id, "mallory", "fake.pcap", b"other bytes", digest, 11)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM evidence_blobs")).scalar() == 1
    for statement in ("UPDATE evidence_blobs SET size = 0", "DELETE FROM evidence_blobs"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
    assert store.verify() == []


def test_verify_detects_altered_or_missing_evidence(tmp_path):
    import hashlib

    store = Store(f"sqlite:///{tmp_path / 'e.db'}")
    inc = store.create("alice", {"title": "x"})
    content = b"falco events\n"
    digest = hashlib.sha256(content).hexdigest()
    store.add_evidence(inc.id, "alice", "falco.jsonl", content, digest, len(content))
    with store.engine.begin() as conn:  # an attacker with file access drops the guard and edits the bytes
        conn.execute(text("DROP TRIGGER evidence_blobs_no_update"))
        conn.execute(text("UPDATE evidence_blobs SET content = X'00'"))
    assert store.verify() == [f"evidence {digest}: stored content does not match its SHA-256"]
    with pytest.raises(StoreError, match="corrupted"):
        store.evidence_content(digest)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER evidence_blobs_no_delete"))
        conn.execute(text("DELETE FROM evidence_blobs"))
    assert store.verify() == [f"{inc.id}: event 2 names stored evidence {digest} that the database does not hold"]
    store.close()
