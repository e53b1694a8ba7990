"""Falco (falcosidekick webhook) and Alertmanager (v4) payloads -> alerts, from real upstream samples."""

from __future__ import annotations

import json
import pathlib

import pytest

from conftest import needs_corpora
from nis2kube.incidents.intake import PayloadError, owner_from_pod_name, parse_alertmanager, parse_falco

CORPORA = pathlib.Path(__file__).resolve().parents[3] / "shared" / "corpora"
FALCO = CORPORA / "falco-events"
AM = CORPORA / "alertmanager-webhook" / "prometheus-msteams" / "alert" / "testdata"

# Shaped like Falco's "Terminal shell in container" event as falcosidekick forwards it.
SHELL_EVENT = {
    "uuid": "7b4f5b0e-5c8f-4b1e-9d1a-3c2a1f0e9b77",
    "output": "14:12:03.123456789: Notice A shell was spawned in a container with an attached terminal "
              "(user=root container_id=3ad7b26167b6 k8s.ns=ot-line3 k8s.pod=scada-gw-7d9c5b6f8d-x2k4q)",
    "priority": "Critical", "rule": "Terminal shell in container", "source": "syscall",
    "time": "2026-11-22T14:12:03.123456789Z", "hostname": "worker-ot-2",
    "tags": ["container", "mitre_execution", "shell"],
    "output_fields": {"container.id": "3ad7b26167b6", "container.image.repository": "registry.plant.example/scada-gw",
                      "evt.time": 1795443123123456789, "k8s.ns.name": "ot-line3",
                      "k8s.pod.name": "scada-gw-7d9c5b6f8d-x2k4q", "proc.cmdline": "bash", "user.name": "root",
                      "fd.name": None},
}


@needs_corpora
def test_falcosidekick_test_input():
    [alert] = parse_falco(json.loads((FALCO / "falcosidekick/extracted-from-tests/"
                                               "client_test__toplevel__falcoTestInput.json").read_text()))
    assert (alert.source, alert.rule, alert.priority) == ("falco", "Test rule", "debug")
    assert alert.workload == "host/test-host" and alert.at.isoformat() == "2001-01-01T01:10:00+00:00"
    assert not alert.at_or_above("error")


@needs_corpora
def test_falco_json_lines_from_falco_itself():
    lines = (FALCO / "falcosecurity-testing/single_rule_with_cat_write.json").read_text().splitlines()
    alerts = [a for line in lines if line.strip() for a in parse_falco(json.loads(line))]
    assert len(alerts) >= 8 and {a.rule for a in alerts} == {"open_from_cat"}
    assert alerts[0].priority == "warning" and "proc.cmdline=cat /dev/null" in alerts[0].iocs
    assert alerts[0].at.microsecond == 881781  # nanoseconds truncated, not rejected
    assert alerts[0].at_or_above("warning") and not alerts[0].at_or_above("error")


def test_kubernetes_event_maps_to_the_top_level_workload():
    [alert] = parse_falco(SHELL_EVENT)
    assert alert.namespace == "ot-line3" and alert.workload == "ot-line3/scada-gw"
    assert alert.dedup_key == "falco|Terminal shell in container|ot-line3/scada-gw"
    assert "container.image.repository=registry.plant.example/scada-gw" in alert.iocs
    assert alert.at_or_above("critical") and alert.summary.startswith("Falco: ")


@pytest.mark.parametrize(("pod", "owner"), [
    ("scada-gw-7d9c5b6f8d-x2k4q", "scada-gw"),  # Deployment -> ReplicaSet -> Pod
    ("node-exporter-8xq2z", "node-exporter"),  # DaemonSet
    ("historian-0", "historian"),  # StatefulSet
    ("standalone", "standalone"),
])
def test_owner_from_pod_name(pod, owner):
    assert owner_from_pod_name(pod) == owner


@needs_corpora
def test_alertmanager_samples():
    [alert] = parse_alertmanager(json.loads((AM / "prom_post_request.json").read_text()))
    assert (alert.source, alert.rule, alert.priority) == ("alertmanager", "high_memory_load", "warning")
    assert alert.workload == "instance/instance-with-hyphen_and_underscore"
    assert alert.summary == "Alertmanager: Server High Memory usage"
    assert alert.at.isoformat() == "2018-03-07T11:33:21.873077+00:00"
    many = parse_alertmanager(json.loads((AM / "prom_post_request_12_alerts.json").read_text()))
    assert len(many) == 12
    large = parse_alertmanager(json.loads((AM / "large_prom_post_request.json").read_text()))
    assert large and all(a.rule for a in large)


def test_alertmanager_kubernetes_labels_and_resolved():
    body = {"version": "4", "status": "resolved", "receiver": "nis2kube", "groupKey": "{}:{}",
            "commonLabels": {"namespace": "ot-line3"}, "alerts": [
                {"status": "resolved", "labels": {"alertname": "KubePodCrashLooping", "severity": "critical",
                                                  "pod": "historian-0"},
                 "annotations": {"description": "Pod is crash looping."},
                 "startsAt": "2026-11-22T10:00:00Z", "endsAt": "2026-11-22T10:30:00Z"}]}
    [alert] = parse_alertmanager(body)
    assert alert.workload == "ot-line3/historian" and alert.status == "resolved"
    assert not alert.at_or_above("warning")  # resolved alerts never open incidents


@pytest.mark.parametrize(("payload", "message"), [
    ([], None),
    ("just text", "event: expected a JSON object"),
    ({"priority": "Critical", "output": "x", "time": "2026-01-01T00:00:00Z"}, "event.rule"),
    ({**SHELL_EVENT, "priority": "Severe"}, "event.priority: 'severe' is not a Falco priority"),
    ({**SHELL_EVENT, "time": "yesterday"}, "event.time"),
    ({**SHELL_EVENT, "time": "2026-01-01T00:00:00"}, "event.time"),
    ({**SHELL_EVENT, "output_fields": {"a": {"nested": 1}}}, "event.output_fields.a: expected a scalar"),
])
def test_falco_validation(payload, message):
    if message is None:
        assert parse_falco(payload) == []
        return
    with pytest.raises(PayloadError, match=message.replace("(", r"\(")):
        parse_falco(payload)


@pytest.mark.parametrize(("payload", "message"), [
    ({"version": "3", "alerts": []}, 'version: expected "4"'),
    ({"version": "4", "alerts": {}}, "alerts: expected a list"),
    ({"version": "4", "alerts": [{"labels": {}}]}, "alerts.0..labels.alertname|alerts\\[0\\].labels.alertname"),
    ({"version": "4", "alerts": [{"labels": {"alertname": "X"}, "status": "weird"}]}, "alerts\\[0\\].status"),
    ({"version": "4", "alerts": [{"labels": {"alertname": "X"}, "startsAt": 5}]}, "alerts\\[0\\].startsAt"),
])
def test_alertmanager_validation(payload, message):
    with pytest.raises(PayloadError, match=message):
        parse_alertmanager(payload)


def _am(alert: dict, **top) -> dict:
    return {"version": "4", "status": alert.get("status", "firing"), "receiver": "nis2kube",
            "groupKey": '{}:{alertname="X"}', "alerts": [{"labels": {"alertname": "X"}, **alert}], **top}


def test_alertmanager_go_zero_times_mean_unset():
    # endsAt "0001-01-01T00:00:00Z" is a firing alert's "no end yet"; a zero startsAt must not date the
    # incident to year 1.
    [alert] = parse_alertmanager(_am({"startsAt": "0001-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                                      "fingerprint": "1a30ba71cca2921f"}))
    assert alert.at.year >= 2026
    assert alert.record()["ends_at"] is None and alert.record()["fingerprint"] == "1a30ba71cca2921f"
    [resolved] = parse_alertmanager(_am({"status": "resolved", "startsAt": "2026-11-22T10:00:00Z",
                                         "endsAt": "2026-11-22T10:30:00.123456789Z"}))
    assert resolved.record()["ends_at"] == "2026-11-22T10:30:00.123456+00:00"


def test_alertmanager_group_metadata_is_kept_with_each_alert():
    [alert] = parse_alertmanager(_am({"startsAt": "2026-11-22T10:00:00Z"}, truncatedAlerts=3))
    record = alert.record()
    assert record["group_key"] == '{}:{alertname="X"}' and record["truncated_alerts"] == 3


@pytest.mark.parametrize(("severity", "priority"), [
    ("page", "critical"), ("info", "informational"), ("information", "informational"), ("Critical", "critical"),
    ("sev1-custom", "notice"),
])
def test_alertmanager_severity_is_mapped_onto_the_falco_scale(severity, priority):
    [alert] = parse_alertmanager(_am({"labels": {"alertname": "X", "severity": severity}}))
    assert alert.priority == priority and alert.labels["severity"] == severity


@pytest.mark.parametrize(("payload", "message"), [
    (_am({"startsAt": "0001-01-01T00:00:00+01:00"}), r"alerts\[0\].startsAt"),
    (_am({"endsAt": ["2026-01-01T00:00:00Z"]}), r"alerts\[0\].endsAt"),
    (_am({}, truncatedAlerts="3"), "truncatedAlerts"),
    (_am({}, groupKey={"a": 1}), "groupKey"),
    (_am({"fingerprint": 7}), r"alerts\[0\].fingerprint"),
])
def test_alertmanager_hostile_fields(payload, message):
    with pytest.raises(PayloadError, match=message):
        parse_alertmanager(payload)


def test_falco_na_fields_do_not_make_a_workload():
    # Falco prints <NA> for fields it cannot resolve (falcosecurity/falco#1029): a host process is not "<NA>/<NA>".
    event = {**SHELL_EVENT, "output_fields": {"k8s.ns.name": "<NA>", "k8s.pod.name": "<NA>", "user.name": "<NA>",
                                              "proc.cmdline": "nc -l 4444"}}
    [alert] = parse_falco(event)
    assert alert.workload == "host/worker-ot-2" and alert.namespace == ""
    assert alert.iocs == ["proc.cmdline=nc -l 4444"]


def test_falco_k8s_audit_event_maps_to_its_target():
    event = {"output": "Attach/Exec to pod (user=alice pod=scada-gw-7d9c5b6f8d-x2k4q resource=pods ns=ot-line3 "
                       "action=exec command=bash)", "priority": "Notice", "rule": "Attach/Exec Pod",
             "source": "k8s_audit", "time": "2026-11-22T14:12:03.123456789Z", "hostname": "falco-0",
             "tags": ["k8s"], "output_fields": {"ka.user.name": "alice", "ka.target.name": "scada-gw-7d9c5b6f8d-x2k4q",
                                                "ka.target.resource": "pods", "ka.target.namespace": "ot-line3"}}
    [alert] = parse_falco(event)
    assert (alert.namespace, alert.workload) == ("ot-line3", "ot-line3/scada-gw")
    role = {**event, "rule": "ClusterRole With Wildcard Created",
            "output_fields": {"ka.user.name": "alice", "ka.target.name": "all", "ka.target.resource": "clusterroles"}}
    assert parse_falco(role)[0].workload == "cluster/clusterroles/all"


def test_falco_fields_as_falco_and_falcosidekick_send_them():
    [alert] = parse_falco({**SHELL_EVENT, "priority": "Informational", "output": ""})
    assert alert.priority == "informational" and alert.summary == "Falco: Terminal shell in container"
    assert alert.labels["tags"] == "container,mitre_execution,shell" and alert.labels["source"] == "syscall"
    assert alert.record()["uuid"] == SHELL_EVENT["uuid"]
    assert parse_falco({**SHELL_EVENT, "priority": "Info"})[0].priority == "informational"
    with pytest.raises(PayloadError, match=r"event\.tags"):
        parse_falco({**SHELL_EVENT, "tags": "shell"})
    with pytest.raises(PayloadError, match=r"event\.source"):
        parse_falco({**SHELL_EVENT, "source": {"x": 1}})


@needs_corpora
def test_alertmanager_occurrence_is_fingerprint_and_start():
    body = json.loads((AM / "prom_post_request.json").read_text())
    assert parse_alertmanager(body)[0].occurrence_key is None  # Alertmanager < 0.19 sent no fingerprint
    body["alerts"][0]["fingerprint"] = "1a30ba71cca2921f"
    [alert] = parse_alertmanager(body)
    assert alert.occurrence_key == "alertmanager|1a30ba71cca2921f@2018-03-07T11:33:21.873077+00:00"
    body["alerts"][0].update(status="resolved", startsAt="2018-03-07T11:33:21.873077559Z",
                             endsAt="2018-03-07T12:00:00Z")
    assert parse_alertmanager(body)[0].occurrence_key == alert.occurrence_key  # its end: the same alert
    body["alerts"][0]["startsAt"] = "2018-03-07T14:00:00Z"  # the same labels firing again later
    assert parse_alertmanager(body)[0].occurrence_key != alert.occurrence_key
    body["alerts"][0]["startsAt"] = "0001-01-01T00:00:00Z"  # no start: nothing to tell a re-send by
    assert parse_alertmanager(body)[0].occurrence_key is None


@needs_corpora
def test_falco_occurrence_is_the_falcosidekick_uuid():
    event = json.loads((FALCO / "falcosidekick/extracted-from-tests/client_test__toplevel__falcoTestInput.json")
                       .read_text())
    assert parse_falco(event)[0].occurrence_key is None  # Falco itself sends no uuid
    assert parse_falco({**event, "uuid": SHELL_EVENT["uuid"]})[0].occurrence_key == f"falco|{SHELL_EVENT['uuid']}"
