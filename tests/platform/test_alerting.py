"""alerting.*: PromQL label-matcher semantics on PrometheusRules, falcosidekick, Alertmanager routing."""

from __future__ import annotations

import textwrap

import pytest

from conftest import inventory_from_yaml, run_check
from nis2kube.checks.alerting import selectors
from nis2kube.checks.registry import InputError
from nis2kube.findings import Status


def prometheus_rule(*rules: tuple[str, str], kind: str = "alert") -> str:
    body = "".join(f"        - {kind}: {name}\n          expr: '{expr}'\n" for name, expr in rules)
    return textwrap.dedent("""\
        apiVersion: monitoring.coreos.com/v1
        kind: PrometheusRule
        metadata: {name: security, namespace: monitoring}
        spec:
          groups:
          - name: security
            rules:
        """) + body + "---\n"


@pytest.mark.parametrize(("expr", "expected"), [
    ('sum(rate(apiserver_request_total{code=~"401|403"}[5m])) > 1', Status.PASS),
    ('sum(rate(apiserver_request_total{code="403", verb!="watch"}[5m])) > 1', Status.PASS),
    ('sum(rate(apiserver_request_total{code=~"4.."}[5m])) > 1', Status.PASS),
    ('sum(rate(apiserver_request_total{code=~"5.."}[5m])) > 1', Status.FAIL),
    ('sum(rate(apiserver_request_total{code=~"40"}[5m])) > 1', Status.FAIL),  # regexes are fully anchored
    ("sum(rate(apiserver_request_total[5m])) > 1000", Status.FAIL),  # all traffic is not denied traffic
    ('sum(rate(apiserver_authorization_decisions_total{decision="denied"}[5m])) > 0', Status.PASS),
    ('sum(rate(my_apiserver_request_total{code="403"}[5m])) > 0', Status.FAIL),  # a different metric
])
def test_denied_request_alert(expr, expected):
    [f] = run_check("alerting.api-denied-alert", inventory_from_yaml(prometheus_rule(("Denied", expr))))
    assert f.status is expected


def test_recording_rules_do_not_count_and_configmap_rule_files_do():
    expr = 'sum(rate(apiserver_request_total{code="403"}[5m]))'
    [f] = run_check("alerting.api-denied-alert", inventory_from_yaml(prometheus_rule(("denied:rate5m", expr),
                                                                                     kind="record")))
    assert f.status is Status.FAIL
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: prometheus-rules, namespace: monitoring}\ndata:\n" \
         "  security.rules.yml: |\n    groups:\n    - name: s\n      rules:\n      - alert: Forbidden\n" \
         f"        expr: '{expr} > 5'\n"
    [f] = run_check("alerting.api-denied-alert", inventory_from_yaml(cm))
    assert f.status is Status.PASS and f.resource.kind == "ConfigMap"


def test_selectors_parse_escapes():
    assert selectors('foo{a="x\\"y", b=~"1|2"} + foo', "foo") == [[("a", "=", 'x\\"y'), ("b", "=~", "1|2")], []]


@pytest.mark.parametrize(("expr", "expected"), [
    ('increase(falcosecurity_falcosidekick_falco_events_total{priority=~"Critical|Alert|Emergency"}[5m]) > 0',
     Status.PASS),
    ('rate(falco_events{priority="2"}[5m]) > 0', Status.PASS),  # falco-exporter: numeric priorities
    ("rate(falcosecurity_falco_rules_matches_total[5m]) > 0", Status.PASS),  # every priority, critical too
    ('rate(falco_events{priority="Warning"}[5m]) > 0', Status.FAIL),
    ('rate(falco_events{priority!~"Critical|2"}[5m]) > 0', Status.FAIL),
])
def test_falco_critical_alert(expr, expected):
    [f] = run_check("alerting.falco-critical-alert", inventory_from_yaml(prometheus_rule(("Falco", expr))))
    assert f.status is expected


def sidekick(minimum: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: falcosidekick, namespace: falco}}
        spec:
          template:
            spec:
              containers:
              - name: falcosidekick
                image: docker.io/falcosecurity/falcosidekick:2.30.0
                env:
                - {{name: ALERTMANAGER_HOSTPORT, value: "http://alertmanager.monitoring.svc:9093"}}
                - {{name: ALERTMANAGER_MINIMUMPRIORITY, value: {minimum}}}
        """)


def test_falcosidekick_pushing_to_alertmanager_counts_when_priority_allows():
    [f] = run_check("alerting.falco-critical-alert", inventory_from_yaml(sidekick("warning")))
    assert f.status is Status.PASS and f.resource.display == "Deployment/falco/falcosidekick"
    [f] = run_check("alerting.falco-critical-alert", inventory_from_yaml(sidekick("emergency")))
    assert f.status is Status.FAIL


AM_NULL = """\
global: {resolve_timeout: 5m}
route:
  receiver: "null"
  group_by: [namespace]
  routes:
  - receiver: "null"
    matchers: [alertname = "Watchdog"]
receivers:
- name: "null"
"""
AM_PAGED = """\
route:
  receiver: "null"
  routes:
  - receiver: ot-oncall
    matchers: [severity = "critical"]
receivers:
- name: "null"
- name: ot-oncall
  pagerduty_configs:
  - routing_key_file: /etc/alertmanager/secrets/pd-key
"""


def test_alertmanager_file_null_receiver_fails_and_paged_route_passes(tmp_path):
    inv = inventory_from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n")
    path = tmp_path / "alertmanager.yml"
    path.write_text(AM_NULL)
    [f] = run_check("alerting.alertmanager-route", inv, inputs={"alertmanager_config": str(path)})
    assert f.status is Status.FAIL and "'null'" in f.message and f.resource.name == "alertmanager.yml"
    path.write_text(AM_PAGED)
    [f] = run_check("alerting.alertmanager-route", inv, inputs={"alertmanager_config": str(path)})
    assert f.status is Status.PASS and "ot-oncall" in f.message and "drops whatever no child route" in f.message
    path.write_text("route: {}\nreceivers: []\n")
    [f] = run_check("alerting.alertmanager-route", inv, inputs={"alertmanager_config": str(path)})
    assert f.status is Status.FAIL and "no receiver" in f.message


def test_alertmanager_file_errors(tmp_path):
    inv = inventory_from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n")
    bad = tmp_path / "am.yml"
    bad.write_text("route: [\n")
    with pytest.raises(InputError, match=r"am\.yml: invalid YAML"):
        run_check("alerting.alertmanager-route", inv, inputs={"alertmanager_config": str(bad)})
    with pytest.raises(InputError, match="cannot read"):
        run_check("alerting.alertmanager-route", inv, inputs={"alertmanager_config": str(tmp_path / "nope.yml")})


AMC = textwrap.dedent("""\
    apiVersion: monitoring.coreos.com/v1alpha1
    kind: AlertmanagerConfig
    metadata: {name: ot-security, namespace: monitoring}
    spec:
      route: {receiver: %s, groupBy: [alertname]}
      receivers:
      - name: ot-oncall
        msteamsConfigs:
        - webhookUrl: {name: teams, key: url}
      - name: blackhole
    """)


def test_alertmanager_config_crd():
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(AMC % "ot-oncall"))
    assert f.status is Status.PASS and f.resource.display == "AlertmanagerConfig/monitoring/ot-security"
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(AMC % "blackhole"))
    assert f.status is Status.FAIL


def test_alertmanager_seen_but_config_hidden_or_absent():
    deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: alertmanager, namespace: monitoring}\n" \
             "spec:\n  template:\n    spec:\n      containers:\n" \
             "      - {name: am, image: quay.io/prometheus/alertmanager:v0.28.0}\n"
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(deploy))
    assert f.status is Status.NOT_ASSESSED and "--alertmanager-config" in f.message
    other = deploy.replace("quay.io/prometheus/alertmanager:v0.28.0", "nginx:1.27").replace("alertmanager", "web")
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(other))
    assert f.status is Status.FAIL and "no Alertmanager" in f.message
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n"))
    assert f.status is Status.NOT_ASSESSED
