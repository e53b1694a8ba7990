"""The intake service: webhooks with auth, validation and limits; incidents API; Prometheus metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import pathlib
import re
from datetime import timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from conftest import needs_corpora
from nis2kube.incidents.model import utcnow
from nis2kube.incidents.profile import EntityProfile
from nis2kube.server.app import ServerSettings, create_app
from nis2kube.store import Store

TOKEN = "s3cr3t-token-for-tests"
SECRET = "hmac-secret-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CORPORA = pathlib.Path(__file__).resolve().parents[3] / "shared" / "corpora"
AM_SAMPLE = CORPORA / "alertmanager-webhook/prometheus-msteams/alert/testdata/prom_post_request.json"
AM_12_SAMPLE = CORPORA / "alertmanager-webhook/prometheus-msteams/alert/testdata/prom_post_request_12_alerts.json"
FALCO_SAMPLE = CORPORA / "falco-events/falcosidekick/extracted-from-tests/client_test__toplevel__falcoTestInput.json"
SHELL = {"output": "Notice A shell was spawned in a container (k8s.ns=ot-line3 k8s.pod=scada-gw-7d9c5b6f8d-x2k4q)",
         "priority": "Critical", "rule": "Terminal shell in container", "source": "syscall",
         "time": "2026-11-22T14:12:03.123456789Z", "hostname": "worker-ot-2", "tags": ["shell"],
         "output_fields": {"k8s.ns.name": "ot-line3", "k8s.pod.name": "scada-gw-7d9c5b6f8d-x2k4q",
                           "proc.cmdline": "bash", "user.name": "root"}}


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'intake.db'}")
    yield s
    s.close()


@pytest.fixture
def client(store):
    settings = ServerSettings(token=TOKEN, hmac_secret=SECRET, max_body_bytes=64 * 1024)
    with TestClient(create_app(store, settings, EntityProfile(min_priority="error"))) as c:
        yield c


def test_falco_event_opens_then_updates_one_incident(client, store):
    first = client.post("/webhooks/falco", json=SHELL, headers=AUTH)
    assert first.status_code == 200, first.text
    [r1] = first.json()["results"]
    assert r1["opened"] and r1["incident_id"]
    other_pod = {**SHELL, "output_fields": {**SHELL["output_fields"], "k8s.pod.name": "scada-gw-7d9c5b6f8d-q9w8z"}}
    [r2] = client.post("/webhooks/falco", json=other_pod, headers=AUTH).json()["results"]
    assert not r2["opened"] and r2["incident_id"] == r1["incident_id"]
    inc = client.get(f"/incidents/{r1['incident_id']}", headers=AUTH).json()
    assert inc["status"] == "detected" and inc["alert_count"] == 2 and inc["workloads"] == ["ot-line3/scada-gw"]
    assert "proc.cmdline=bash" in inc["iocs"] and inc["deadlines"] == []


@needs_corpora
def test_low_priority_is_stored_as_event_only(client, store):
    body = FALCO_SAMPLE.read_bytes()  # Debug priority, falcosidekick's own test input
    [r] = client.post("/webhooks/falco", content=body, headers={**AUTH, "Content-Type": "application/json"}
                      ).json()["results"]
    assert r["incident_id"] is None and r["alert_id"] == 1
    assert store.alert_count() == 1 and store.list() == []


@needs_corpora
def test_alertmanager_payload(client, store):
    sample = json.loads(AM_SAMPLE.read_text())
    [low] = client.post("/webhooks/alertmanager", json=sample, headers=AUTH).json()["results"]
    assert low["incident_id"] is None  # severity=warning is below the configured 'error'
    sample["alerts"][0]["labels"].update(severity="critical", namespace="ot-line3", deployment="historian")
    [high] = client.post("/webhooks/alertmanager", json=sample, headers=AUTH).json()["results"]
    assert high["opened"]
    assert store.get(high["incident_id"]).title == "high_memory_load on ot-line3/historian"
    sample["alerts"][0]["status"] = "resolved"
    [resolved] = client.post("/webhooks/alertmanager", json=sample, headers=AUTH).json()["results"]
    assert resolved["incident_id"] is None and store.alert_count() == 3


def _critical(sample: dict) -> dict:
    """An upstream sample on a Deployment at severity critical, with the fingerprint Alertmanager sends since
    0.19 (the samples predate it)."""
    for i, alert in enumerate(sample["alerts"]):
        alert["labels"].update(severity="critical", namespace="ot-line3", deployment="historian")
        alert["fingerprint"] = f"{0x1a30ba71cca2921f + i:016x}"
    return sample


@needs_corpora
def test_alertmanager_repeats_and_resolved_go_to_the_first_incident(client, store):
    firing = _critical(json.loads(AM_SAMPLE.read_text()))
    ended = {**firing, "status": "resolved", "alerts": [
        {**firing["alerts"][0], "status": "resolved", "endsAt": "2018-03-07T07:10:00-05:00"}]}
    results = [client.post("/webhooks/alertmanager", json=body, headers=AUTH).json()["results"][0]
               for body in (firing, firing, ended, ended)]  # repeat_interval / group change, HA peer
    assert all(set(r) == {"alert_id", "incident_id", "opened"} for r in results)
    assert [r["opened"] for r in results] == [True, False, False, False]
    assert len({r["incident_id"] for r in results}) == 1
    inc = client.get(f"/incidents/{results[0]['incident_id']}", headers=AUTH).json()
    assert inc["alert_count"] == 1 and inc["version"] == 3  # opened, alert, and the alert's end
    assert {"at": "2018-03-07T12:10:00Z", "text": "alert resolved at the source: high_memory_load on "
            "ot-line3/historian", "by": "webhook:alertmanager"} in inc["timeline"]
    assert store.alert_count() == 4


@needs_corpora
def test_alertmanager_request_is_stored_all_or_nothing(store):
    body = _critical(json.loads(AM_12_SAMPLE.read_text()))
    with store.engine.begin() as conn:  # the database fails on the 7th of 12 alerts (disk full, say)
        conn.execute(text("CREATE TRIGGER fault BEFORE INSERT ON alerts WHEN NEW.rule = 'high_memory_load7' "
                          "BEGIN SELECT RAISE(ABORT, 'fault injected'); END"))
    app = create_app(store, ServerSettings(token=TOKEN), EntityProfile(min_priority="error"))
    with TestClient(app, raise_server_exceptions=False) as c:
        failed = c.post("/webhooks/alertmanager", json=body, headers=AUTH)
        assert failed.status_code == 500 and failed.json() == {"error": "internal error; see the server log"}
        assert store.alert_count() == 0 and store.list() == []
        with store.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER fault"))
        retried = c.post("/webhooks/alertmanager", json=body, headers=AUTH)  # Alertmanager retries the request
        assert retried.status_code == 200 and retried.json()["accepted"] == 12
        assert store.alert_count() == 12 and len(store.list()) == 12
        metrics = c.get("/metrics", headers=AUTH).text
    assert 'nis2kube_webhook_events_total{source="alertmanager",outcome="accepted"} 12' in metrics


def test_hmac_signature_is_accepted(client):
    body = orjson.dumps(SHELL)
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    resp = client.post("/webhooks/falco", content=body, headers={"X-Nis2kube-Signature": sig})
    assert resp.status_code == 200


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
    {"X-Nis2kube-Signature": "sha256=" + "0" * 64}, {"X-Nis2kube-Signature": "md5=abc"},
])
def test_missing_or_invalid_credentials_store_nothing(client, store, headers):
    resp = client.post("/webhooks/falco", json=SHELL, headers=headers)
    assert resp.status_code == 401 and resp.json() == {"error": "missing or invalid credentials"}
    assert resp.headers["www-authenticate"] == "Bearer"
    assert store.alert_count() == 0 and store.list() == []
    assert client.get("/incidents", headers=headers).status_code == 401
    assert client.get("/metrics", headers=headers).status_code == 401


def test_signature_over_a_different_body_is_rejected(client, store):
    sig = "sha256=" + hmac.new(SECRET.encode(), b"{}", hashlib.sha256).hexdigest()
    resp = client.post("/webhooks/falco", content=orjson.dumps(SHELL), headers={"X-Nis2kube-Signature": sig})
    assert resp.status_code == 401 and store.alert_count() == 0


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{not json", 400, "body is not valid JSON"),
    (orjson.dumps({**SHELL, "priority": "Severe"}), 422, "event.priority"),
    (orjson.dumps({k: v for k, v in SHELL.items() if k != "rule"}), 422, "event.rule: expected a non-empty string"),
    (b"[1, 2]", 422, "event[0]: expected a JSON object"),
])
def test_malformed_payloads_get_clear_4xx_and_store_nothing(client, store, body, status, message):
    resp = client.post("/webhooks/falco", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == status and message in resp.json()["error"]
    assert "Traceback" not in resp.text and store.alert_count() == 0


def test_alertmanager_schema_errors(client, store):
    resp = client.post("/webhooks/alertmanager", json={"version": "3", "alerts": []}, headers=AUTH)
    assert resp.status_code == 422 and 'expected "4"' in resp.json()["error"]
    assert store.alert_count() == 0


def test_payload_size_limit(client, store):
    big = {**SHELL, "output": "x" * (70 * 1024)}
    resp = client.post("/webhooks/falco", json=big, headers=AUTH)
    assert resp.status_code == 413 and store.alert_count() == 0


def test_incidents_api_and_metrics(client, store):
    inc_id = client.post("/webhooks/falco", json=SHELL, headers=AUTH).json()["results"][0]["incident_id"]
    aware = utcnow() - timedelta(hours=30)  # early warning overdue by 6 h, notification due in 42 h
    store.append(inc_id, "triaged", "ciso", {"decision": "significant", "aware_at": aware.isoformat()})
    listed = client.get("/incidents", headers=AUTH).json()["incidents"]
    assert [i["id"] for i in listed] == [inc_id]
    assert listed[0]["next_deadline"]["report"] == "early-warning"
    assert listed[0]["next_deadline"]["seconds_left"] < -5 * 3600
    assert client.get("/incidents/INC-nope", headers=AUTH).status_code == 404
    metrics = client.get("/metrics", headers=AUTH)
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = dict(line.rsplit(" ", 1) for line in metrics.text.splitlines() if not line.startswith("#"))
    assert lines["nis2kube_incidents_open"] == "1" and lines["nis2kube_incidents_overdue"] == "1"
    seconds = float(lines[f'nis2kube_incident_next_deadline_seconds{{incident="{inc_id}",report="early-warning"}}'])
    assert -6.1 * 3600 < seconds < -5.9 * 3600
    assert lines['nis2kube_webhook_events_total{source="falco",outcome="accepted"}'] == "1"


def test_internal_errors_do_not_leak(store):
    class Broken(Store):
        def ingest_batch(self, *args, **kwargs):
            raise RuntimeError("database password is hunter2")

    broken = Broken.__new__(Broken)
    broken.__dict__.update(store.__dict__)
    with TestClient(create_app(broken, ServerSettings(token=TOKEN)), raise_server_exceptions=False) as c:
        resp = c.post("/webhooks/falco", json=SHELL, headers=AUTH)
    assert resp.status_code == 500 and "hunter2" not in resp.text and "Traceback" not in resp.text


def test_settings_require_a_credential():
    with pytest.raises(ValueError, match="bearer token or an HMAC secret"):
        ServerSettings()


def test_harden_alert_rules_use_only_metrics_that_exist(client, store):
    """The PrometheusRule `nis2kube harden` writes must alert on series this server or `scan --metrics` emits."""
    from conftest import EXAMPLE, inventory_from_yaml
    from nis2kube.checks.registry import ScanContext
    from nis2kube.config import Config
    from nis2kube.engine import run_checks
    from nis2kube.harden.alerting import rule_groups
    from nis2kube.report.metrics import render_metrics

    client.post("/webhooks/falco", json=SHELL, headers=AUTH)
    inc_id = store.list_reportable()[0].id
    store.append(inc_id, "triaged", "ciso", {"decision": "significant", "aware_at": utcnow().isoformat()})
    scan = run_checks(ScanContext(inventory_from_yaml((EXAMPLE / "50-mes.yaml").read_text()), Config()))
    text = client.get("/metrics", headers=AUTH).text + render_metrics(scan)
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    used = {name for group in rule_groups() for rule in group["rules"]
            for name in re.findall(r"\bnis2kube_[a-z_]+", rule["expr"])}
    assert used and used <= exported, used - exported
