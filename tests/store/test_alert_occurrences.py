"""Re-sent and resolved alerts, and one transaction per webhook request, on real Alertmanager and Falco payloads
(prometheus-msteams and falcosecurity/testing samples, completed with the ids current senders add)."""

from __future__ import annotations

import json
import pathlib
import random
import threading
from importlib import resources

import pg_fixtures
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from conftest import needs_corpora
from nis2kube.incidents.intake import parse_alertmanager, parse_falco
from nis2kube.store import Store
from nis2kube.store.schema import alerts

pg_server, pg_url, db_url = pg_fixtures.pg_server, pg_fixtures.pg_url, pg_fixtures.db_url
CORPORA = pathlib.Path(__file__).resolve().parents[3] / "shared" / "corpora"
AM = CORPORA / "alertmanager-webhook/prometheus-msteams/alert/testdata"
FALCO_JSONL = CORPORA / "falco-events/falcosecurity-testing/single_rule_with_cat_write.json"
ENDS_AT = "2018-03-07T07:10:00.5-05:00"
pytestmark = needs_corpora


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    yield s
    s.close()


def am_body(name: str = "prom_post_request.json", fingerprints: bool = True) -> dict:
    """An upstream webhook body made critical and placed on a Deployment (so it opens incidents), with the
    per-alert fingerprint Alertmanager sends since 0.19 (the samples predate it)."""
    body = json.loads((AM / name).read_text())
    for i, alert in enumerate(body["alerts"]):
        alert["labels"].update(severity="critical", namespace="ot-line3", deployment="historian")
        if fingerprints:
            alert["fingerprint"] = f"{0x1a30ba71cca2921f + i:016x}"
    return body


def resolved(body: dict) -> dict:
    """The same alerts as Alertmanager reports them once they stop firing (send_resolved)."""
    return {**body, "status": "resolved",
            "alerts": [{**a, "status": "resolved", "endsAt": ENDS_AT} for a in body["alerts"]]}


def falco_events(uuids: bool = True) -> list[dict]:
    """Falco's own JSON output lines, with the uuid falcosidekick adds to every event it forwards."""
    lines = [json.loads(line) for line in FALCO_JSONL.read_text().splitlines() if line.strip()]
    return [{**e, "uuid": f"7b4f5b0e-5c8f-4b1e-9d1a-{i:012x}"} if uuids else e for i, e in enumerate(lines)]


def send(store: Store, body: dict, window_minutes: int = 60) -> list:
    return [store.ingest(a, "error", window_minutes) for a in parse_alertmanager(body)]


def alert_rows(store: Store) -> list:
    with store.engine.connect() as conn:
        return conn.execute(select(alerts.c.id, alerts.c.incident_id, alerts.c.status, alerts.c.repeat_of)
                            .order_by(alerts.c.id)).all()


def event_types(store: Store, incident_id: str) -> list[str]:
    return [e.type for e in store.events(incident_id)]


def test_alertmanager_repeat_goes_to_the_first_incident_without_a_new_alert_event(store):
    body = am_body()
    [first] = send(store, body)
    assert first.opened
    # repeat_interval (4 h) later, i.e. outside the dedup window, and again inside it
    [late] = send(store, body, 0)
    [soon] = send(store, body)
    assert (late.incident_id, late.opened) == (soon.incident_id, soon.opened) == (first.incident_id, False)
    assert len(store.list()) == 1 and store.get(first.incident_id).alert_count == 1
    assert event_types(store, first.incident_id) == ["opened", "alert"]
    assert [(r.incident_id, r.repeat_of) for r in alert_rows(store)] == [
        (first.incident_id, None), (first.incident_id, first.alert_id), (first.incident_id, first.alert_id)]
    # the same labels firing again later are a new alert (new startsAt): the window decides as before
    body["alerts"][0]["startsAt"] = "2018-03-07T09:00:00Z"
    [again] = send(store, body)
    assert again.incident_id == first.incident_id and store.get(first.incident_id).alert_count == 2
    assert store.verify() == []


def test_falcosidekick_retry_is_the_same_alert(store):
    shell, other = falco_events()[:2]
    first = store.ingest(parse_falco(shell)[0], "warning", 60)
    retry = store.ingest(parse_falco(shell)[0], "warning", 0)
    nxt = store.ingest(parse_falco(other)[0], "warning", 60)  # another event of the rule: counted
    assert first.opened and retry.incident_id == nxt.incident_id == first.incident_id
    assert store.get(first.incident_id).alert_count == 2
    assert [r.repeat_of for r in alert_rows(store)] == [None, first.alert_id, None]
    [bare] = falco_events(uuids=False)[:1]  # without a uuid nothing identifies a re-send: each one counts
    store.ingest(parse_falco(bare)[0], "warning", 60)
    store.ingest(parse_falco(bare)[0], "warning", 60)
    assert store.get(first.incident_id).alert_count == 4 and store.verify() == []


def test_resolved_alert_is_recorded_on_its_incident_once(store):
    body = am_body()
    [firing] = send(store, body)
    [end] = send(store, resolved(body))
    [again] = send(store, resolved(body))  # HA peer, or a retry
    assert (end.incident_id, end.opened) == (again.incident_id, again.opened) == (firing.incident_id, False)
    inc = store.get(firing.incident_id)
    assert event_types(store, inc.id) == ["opened", "alert", "timeline"] and inc.alert_count == 1
    [ended] = [t for t in inc.timeline if "resolved" in t["text"]]
    assert ended["at"].startswith("2018-03-07T12:10:00.5") and "high_memory_load on ot-line3/historian" in ended["text"]
    assert [(r.status, r.repeat_of) for r in alert_rows(store)] == [
        ("firing", None), ("resolved", firing.alert_id), ("resolved", firing.alert_id)]
    assert store.verify() == []


def test_resolved_alert_is_recorded_once_when_a_firing_copy_arrives_after_it(store):
    body = am_body()
    [firing] = send(store, body)
    send(store, resolved(body))
    [late] = send(store, body)  # a delayed firing re-send: the newest copy is no longer the resolved one
    [again] = send(store, resolved(body))
    assert late.incident_id == again.incident_id == firing.incident_id
    assert event_types(store, firing.incident_id) == ["opened", "alert", "timeline"] and store.verify() == []


def test_repeat_of_a_closed_incident_stays_with_it(store):
    body = am_body()
    [firing] = send(store, body)
    store.append(firing.incident_id, "closed", "alice", {"reason": "memory leak fixed"})
    [repeat] = send(store, body)
    [end] = send(store, resolved(body))
    assert repeat.incident_id == end.incident_id == firing.incident_id and not repeat.opened
    assert store.list() == [] and event_types(store, firing.incident_id)[-1] == "timeline"
    assert store.verify() == []


def test_repeat_of_an_alert_that_went_to_no_incident_is_judged_anew(store):
    body = am_body()
    body["alerts"][0]["labels"]["severity"] = "warning"
    [low] = send(store, body)  # below min_priority: stored only
    [now_high] = [store.ingest(a, "warning", 60) for a in parse_alertmanager(body)]  # threshold lowered since
    [repeat] = [store.ingest(a, "warning", 0) for a in parse_alertmanager(body)]
    assert low.incident_id is None and now_high.opened and repeat.incident_id == now_high.incident_id
    assert store.get(now_high.incident_id).alert_count == 1
    assert [r.repeat_of for r in alert_rows(store)] == [None, low.alert_id, low.alert_id]
    assert store.verify() == []


def test_late_firing_copy_of_a_resolved_alert_opens_an_incident(store):
    [end] = send(store, resolved(am_body()))  # nis2kube was down while it fired: "resolved" is stored only
    [late] = send(store, am_body())  # its firing copy, delivered late: the alert did fire, so it counts
    [again] = send(store, resolved(am_body()))  # an HA peer's "resolved": now there is an incident to end
    assert end.incident_id is None and late.opened and again.incident_id == late.incident_id
    assert event_types(store, late.incident_id) == ["opened", "alert", "timeline"] and store.verify() == []


def _inject_fault(store: Store, rule: str) -> None:
    """The database refuses one row, as a full disk or a dropped connection would, part-way through a request."""
    with store.engine.begin() as conn:
        if store.is_sqlite:
            conn.execute(text(f"CREATE TRIGGER fault BEFORE INSERT ON alerts WHEN NEW.rule = '{rule}' "
                              "BEGIN SELECT RAISE(ABORT, 'fault injected'); END"))
            return
        conn.execute(text(f"CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.rule = "
                          f"'{rule}' THEN RAISE EXCEPTION 'fault injected'; END IF; RETURN NEW; END $$"))
        conn.execute(text("CREATE TRIGGER fault BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION fault()"))


def test_one_request_is_one_transaction(store):
    batch = parse_alertmanager(am_body("prom_post_request_12_alerts.json"))
    _inject_fault(store, "high_memory_load7")
    with pytest.raises(DBAPIError, match="fault injected"):
        store.ingest_batch(batch, "error", 60)
    assert store.alert_count() == 0 and store.list(include_closed=True) == []
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER fault" if store.is_sqlite else "DROP TRIGGER fault ON alerts"))
    results = store.ingest_batch(batch, "error", 60)  # the sender's retry: stored once, completely
    assert all(r.opened for r in results) and store.alert_count() == 12 and len(store.list()) == 12
    assert store.verify() == []


def test_concurrent_requests_sharing_dedup_keys_neither_deadlock_nor_duplicate(store):
    body = am_body("prom_post_request_12_alerts.json", fingerprints=False)
    results, errors = [], []

    def sender(n: int) -> None:
        rng = random.Random(n)
        try:
            for _ in range(5):
                batch = parse_alertmanager(body)
                rng.shuffle(batch)  # each request takes the same keys in another order
                results.extend(store.ingest_batch(batch, "error", 60))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[0]
    incidents = store.list()
    assert len(incidents) == 12 and sum(r.opened for r in results) == 12
    assert {i.alert_count for i in incidents} == {30} and store.verify() == []


def test_upgrade_from_revision_0002_keeps_alerts_and_their_guard(db_url):
    from alembic import command
    from alembic.config import Config

    old = Store(db_url, migrate=False)
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("nis2kube.store").joinpath("migrations")))
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(text("INSERT INTO alerts (received_at, source, rule, priority, workload, record) VALUES "
                          "('2026-11-22 10:00:00', 'falco', 'r', 'critical', 'ot/x', '{}')"))
    old.close()
    store = Store(db_url)
    [firing] = send(store, am_body())
    [repeat] = send(store, am_body(), 0)
    assert repeat.incident_id == firing.incident_id
    assert [(r.status, r.repeat_of) for r in alert_rows(store)] == [
        (None, None), ("firing", None), ("firing", firing.alert_id)]
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("UPDATE alerts SET repeat_of = NULL"))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
        assert "repeat_of" not in list(conn.execute(select(text("*")).select_from(text("alerts"))).keys())
    store.close()
