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
    assert selectors('foo{a="x\\"y", b=~"1|2"} + foo') == [
        [("__name__", "=", "foo"), ("a", "=", 'x"y'), ("b", "=~", "1|2")], [("__name__", "=", "foo")]]


@pytest.mark.parametrize(("expr", "expected"), [
    ('increase(falcosecurity_falcosidekick_falco_events_total{priority_raw=~"critical|alert|emergency"}[5m]) > 0',
     Status.PASS),
    ('increase(falcosecurity_falcosidekick_falco_events_total{priority=~"[6-8]"}[5m]) > 0', Status.PASS),
    # falcosidekick >= 2.29 puts its own number in `priority` (Critical = 6): 2 is Informational there, and
    # the name never matches
    ('increase(falcosecurity_falcosidekick_falco_events_total{priority="2"}[5m]) > 0', Status.FAIL),
    ('increase(falcosecurity_falcosidekick_falco_events_total{priority=~"Critical|Alert"}[5m]) > 0', Status.FAIL),
    ('rate(falco_events{priority="Critical"}[5m]) > 0', Status.PASS),  # falcosidekick before 2.29
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
    assert 'only alerts labelled namespace="monitoring" reach it' in f.message
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(AMC % "blackhole"))
    assert f.status is Status.FAIL
    global_config = "apiVersion: monitoring.coreos.com/v1\nkind: Alertmanager\nmetadata: {name: main, namespace: " \
        "monitoring}\nspec: {alertmanagerConfiguration: {name: ot-security}}\n---\n"
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(global_config + AMC % "ot-oncall"))
    assert f.status is Status.PASS and "namespace=" not in f.message


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


def test_hostile_field_types_never_crash_these_checks():
    """Every field of realistic inputs of all four families, replaced by a value of the wrong type, one at a
    time: a check may say less, but must never raise (failures inside the shared inventory code are that
    code's business and are skipped here)."""
    import copy
    import traceback

    import test_admission as ta
    import test_logging as tl
    import test_runtime as tr
    import yaml

    from nis2kube.checks.registry import all_checks
    from nis2kube.inventory import Inventory

    texts = [
        tr.CLUSTER + tr.falco("[{operator: Exists}]", args=tr.FED, volumes="[{name: c, configMap: {name: falco}}]")
        + tr.sidekick("env: [{name: WEBHOOK_ADDRESS, value: 'http://x'}]") + tr.rules_cm(tr.RULES),
        ta.NAMESPACES + ta.kyverno("r", "validationFailureAction: Enforce, validationFailureActionOverrides: "
                                   "[{action: Audit, namespaces: [a]}]", validate=ta.REGISTRY,
                                   exclude="{any: [{resources: {namespaces: [x]}}]}")
        + ta.VERIFY % "Enforce" + ta.VAP % ("Fail", "[Deny]") + ta.GATEKEEPER_WEBHOOK
        + ta.gatekeeper("K8sAllowedRepos", "r", "match: {kinds: [{apiGroups: [''], kinds: [Pod]}]}\n"),
        prometheus_rule(("a", 'rate(apiserver_request_total{code="403"}[5m])')) + AMC % "ot-oncall"
        + sidekick("warning"),
        tl.fluent_bit(tl.CP_TOLERATION, "/host/var/log/kubernetes/audit/*.log") + tl.apiserver_pod(*tl.KUBEADM_AUDIT)
        + tl.configmap("loki", "config.yaml", tl.LOKI % "30d"),
    ]
    ids = [c for c in all_checks() if c.split(".")[0] in ("logging", "runtime", "admission", "alerting")]

    def paths(node, prefix=()):
        if prefix:
            yield prefix
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            yield from paths(child, (*prefix, key))

    crashes = []
    for text in texts:
        docs = [d for d in yaml.safe_load_all(text) if d]
        for index, doc in enumerate(docs):
            for path in paths(doc):
                if path[0] in ("apiVersion", "kind", "metadata"):
                    continue
                for bad in ("x", 7):
                    mutated = copy.deepcopy(docs)
                    node = mutated[index]
                    for key in path[:-1]:
                        node = node[key]
                    node[path[-1]] = bad
                    inv = Inventory()
                    for obj in mutated:
                        inv.add(obj)
                    for check_id in ids:
                        try:
                            run_check(check_id, inv)
                        except InputError:
                            pass
                        except Exception as exc:
                            frame = traceback.extract_tb(exc.__traceback__)[-1]
                            if "/inventory/" not in frame.filename:
                                crashes.append((check_id, path, bad, f"{type(exc).__name__}: {exc}"))
    assert crashes == []


def test_live_scan_without_permission_is_not_assessed():
    inv = inventory_from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n")
    inv.unlisted[("monitoring.coreos.com", "PrometheusRule")] = "forbidden"
    [f] = run_check("alerting.api-denied-alert", inv)
    assert f.status is Status.NOT_ASSESSED and "could not list PrometheusRule" in f.message
    inv.unlisted[("monitoring.coreos.com", "AlertmanagerConfig")] = "forbidden"
    [f] = run_check("alerting.alertmanager-route", inv)
    assert f.status is Status.NOT_ASSESSED


# ---- upstream semantics: PromQL lexer/parser, prometheus-operator discovery, Alertmanager config loading ------
@pytest.mark.parametrize(("expr", "expected"), [
    ("sum(rate(apiserver_request_total{code='403'}[5m])) > 1", Status.PASS),  # '...' is a PromQL string too
    ("sum(rate(apiserver_request_total{code=~`40[13]`}[5m])) > 1", Status.PASS),  # and `...`, raw
    ('sum(rate(apiserver_request_total{code=~"4[0-9]{2}"}[5m])) > 1', Status.PASS),  # a } inside the string
    ('sum(rate({__name__="apiserver_request_total", code="403"}[5m])) > 1', Status.PASS),
    ('sum(rate({"apiserver_request_total", code="401"}[5m])) > 1', Status.PASS),  # Prometheus 3 syntax
    ('sum(rate(apiserver_request_total{code=~".+"}[5m])) > 1', Status.FAIL),  # every request, 200 too
    ('sum(rate(apiserver_request_total{code!~"2.."}[5m])) > 1', Status.PASS),
    ('# apiserver_request_total{code="403"}\nup == 0', Status.FAIL),  # a comment
    ('sum(rate(authentication_attempts{result="failure"}[5m])) > 1', Status.PASS),
])
def test_denied_request_alert_promql_syntax(expr, expected):
    rule = prometheus_rule(("Denied", "X")).replace("'X'", "|\n            " + expr.replace("\n", "\n            "))
    [f] = run_check("alerting.api-denied-alert", inventory_from_yaml(rule))
    assert f.status is expected


PROMETHEUS = """\
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: k8s, namespace: monitoring}
spec:
  ruleSelector: {matchLabels: {release: kube-prometheus-stack}}
  ruleNamespaceSelector: {}
---
"""


def test_prometheus_rule_not_selected_by_any_prometheus_is_never_loaded():
    """kube-prometheus-stack's Prometheus only loads PrometheusRules labelled release=<release>."""
    rule = prometheus_rule(("Denied", 'sum(rate(apiserver_request_total{code="403"}[5m])) > 1'))
    [f] = run_check("alerting.api-denied-alert", inventory_from_yaml(PROMETHEUS + rule))
    assert f.status is Status.FAIL and "never loads" in f.message
    labelled = rule.replace("monitoring}", "monitoring, labels: {release: kube-prometheus-stack}}")
    [f] = run_check("alerting.api-denied-alert", inventory_from_yaml(PROMETHEUS + labelled))
    assert f.status is Status.PASS
    own_namespace_only = PROMETHEUS.replace("  ruleNamespaceSelector: {}\n", "").replace("monitoring}", "other}")
    [f] = run_check("alerting.api-denied-alert", inventory_from_yaml(own_namespace_only + labelled))
    assert f.status is Status.FAIL


def test_alertmanager_config_must_be_selected_by_an_alertmanager():
    am = "apiVersion: monitoring.coreos.com/v1\nkind: Alertmanager\nmetadata: {name: main, namespace: monitoring}\n" \
         "spec: %s\n---\n"
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(am % "{}" + AMC % "ot-oncall"))
    assert f.status is Status.FAIL and "no Alertmanager selects" in f.message  # null selector: nothing
    spec = "{alertmanagerConfigSelector: {}, alertmanagerConfigMatcherStrategy: " \
           "{type: OnNamespaceExceptForAlertmanagerNamespace}}"
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(am % spec + AMC % "ot-oncall"))
    assert f.status is Status.PASS and "namespace=" not in f.message
    [f] = run_check("alerting.alertmanager-route", inventory_from_yaml(
        am % "{alertmanagerConfigSelector: {}}" + AMC % "ot-oncall"))
    assert f.status is Status.PASS and 'namespace="monitoring"' in f.message


def test_alertmanager_file_routing_to_an_undefined_receiver_is_refused(tmp_path):
    inv = inventory_from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n")
    path = tmp_path / "alertmanager.yml"
    path.write_text(AM_PAGED.replace("receiver: ot-oncall", "receiver: ot-on-call"))
    [f] = run_check("alerting.alertmanager-route", inv, inputs={"alertmanager_config": str(path)})
    assert f.status is Status.FAIL and "undefined receiver" in f.message and "ot-on-call" in f.message
