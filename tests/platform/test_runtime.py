"""runtime.*: Falco presence, node coverage with scheduler semantics, alert routing, custom rules."""

from __future__ import annotations

import textwrap

import pytest

from conftest import inventory_from_yaml, run_check
from nis2kube.checks.runtime import node_selected, tolerates, untolerated
from nis2kube.findings import Status


def node(name: str, taints: str = "[]", labels: str = "{}") -> str:
    return f"apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {labels}}}\n" \
           f"spec: {{taints: {taints}}}\n---\n"


def falco(tolerations: str = "[]", extra_spec: str = "", args: str = "[/usr/bin/falco]", status: str = "",
          volumes: str = "[]") -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {{name: falco, namespace: falco}}
        spec:
          selector: {{matchLabels: {{app: falco}}}}
          template:
            metadata: {{labels: {{app: falco}}}}
            spec:
              tolerations: {tolerations}
              {extra_spec}
              containers:
              - name: falco
                image: docker.io/falcosecurity/falco:0.39.2
                args: {args}
                securityContext: {{privileged: true}}
              volumes: {volumes}
        {status}
        ---
        """)


CLUSTER = (node("cp-1", "[{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]",
                "{node-role.kubernetes.io/control-plane: ''}")
           + node("worker-1")
           + node("edge-1", "[{key: plant.example/ot-only, value: 'true', effect: NoSchedule}]",
                  "{plant.example/zone: ot}")
           + node("worker-2", "[{key: node.kubernetes.io/unschedulable, effect: NoSchedule}, "
                  "{key: spot, value: 'yes', effect: PreferNoSchedule}]"))


# ---- scheduling semantics ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("toleration", "taint", "expected"), [
    ({"operator": "Exists"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, True),
    ({"key": "a", "operator": "Exists"}, {"key": "a", "value": "b", "effect": "NoExecute"}, True),
    ({"key": "a", "value": "b"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, True),  # Equal is default
    ({"key": "a", "value": "c"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, False),
    ({"key": "a", "operator": "Exists", "effect": "NoSchedule"}, {"key": "a", "effect": "NoExecute"}, False),
    ({"key": "b", "operator": "Exists"}, {"key": "a", "effect": "NoSchedule"}, False),
    ({"key": "a", "operator": "Equal"}, {"key": "a", "effect": "NoSchedule"}, True),  # empty value == empty
])
def test_toleration_semantics(toleration, taint, expected):
    assert tolerates(toleration, taint) is expected


def test_daemonset_controller_tolerations_and_prefer_no_schedule():
    taints = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
              {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
              {"key": "spot", "effect": "PreferNoSchedule"},
              {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]
    assert untolerated({}, taints) == ["node.kubernetes.io/network-unavailable:NoSchedule"]
    assert untolerated({"hostNetwork": True}, taints) == []
    assert untolerated({}, taints, daemonset=False) != []


def test_node_selection():
    n = {"metadata": {"name": "edge-1", "labels": {"zone": "ot", "cores": "8"}}}
    assert node_selected({"nodeSelector": {"zone": "ot"}}, n)
    assert not node_selected({"nodeSelector": {"zone": "it"}}, n)
    affinity = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["ot"]}]},
                              {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}]}}}}
    assert node_selected(affinity, n)  # terms are ORed
    affinity["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["other"]}]}, {}]
    assert not node_selected(affinity, n)  # an empty term selects nothing


# ---- deployed / coverage ----------------------------------------------------------------------------------
def test_falco_deployed_pass_fail_not_assessed():
    [f] = run_check("runtime.falco-deployed", inventory_from_yaml(falco()))
    assert f.status is Status.PASS and f.container == "falco"
    other = falco().replace("falcosecurity/falco:0.39.2", "docker.io/calico/node:v3.29.1")
    [f] = run_check("runtime.falco-deployed", inventory_from_yaml(other))
    assert f.status is Status.FAIL
    [f] = run_check("runtime.falco-deployed", inventory_from_yaml(node("n1")))
    assert f.status is Status.NOT_ASSESSED


def test_coverage_names_the_blind_nodes():
    text = CLUSTER + falco("[{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]")
    [f] = run_check("runtime.falco-coverage", inventory_from_yaml(text))
    assert f.status is Status.FAIL
    assert f.evidence["blind_nodes"] == {"edge-1": "untolerated taint plant.example/ot-only=true:NoSchedule"}


def test_tolerate_everything_covers_all_nodes_and_status_counts():
    status = "status: {desiredNumberScheduled: 4, numberReady: 4}"
    [f] = run_check("runtime.falco-coverage", inventory_from_yaml(CLUSTER + falco("[{operator: Exists}]",
                                                                                  status=status)))
    assert f.status is Status.PASS and "all 4 nodes" in f.message and "4/4 pods ready" in f.message
    status = "status: {desiredNumberScheduled: 4, numberReady: 3}"
    [f] = run_check("runtime.falco-coverage", inventory_from_yaml(CLUSTER + falco("[{operator: Exists}]",
                                                                                  status=status)))
    assert f.status is Status.FAIL and "only 3 of 4 pods are ready" in f.message
    status = "status: {desiredNumberScheduled: 3, numberReady: 3}"
    [f] = run_check("runtime.falco-coverage", inventory_from_yaml(CLUSTER + falco("[{operator: Exists}]",
                                                                                  status=status)))
    assert f.status is Status.FAIL and "schedules 3 pods for 4 reachable nodes" in f.message


def test_node_selector_leaves_nodes_out():
    text = CLUSTER + falco("[{operator: Exists}]", extra_spec="nodeSelector: {plant.example/zone: ot}")
    [f] = run_check("runtime.falco-coverage", inventory_from_yaml(text))
    assert f.status is Status.FAIL and set(f.evidence["blind_nodes"]) == {"cp-1", "worker-1", "worker-2"}


def test_coverage_without_nodes_or_status_is_not_assessed():
    [f] = run_check("runtime.falco-coverage", inventory_from_yaml(falco()))
    assert f.status is Status.NOT_ASSESSED and "kubectl get nodes" in f.message
    [f] = run_check("runtime.falco-coverage", inventory_from_yaml(node("n1")))
    assert f.status is Status.NOT_ASSESSED and "runtime.falco-deployed" in f.message


# ---- alert routing ----------------------------------------------------------------------------------------
def sidekick(env: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: falcosidekick, namespace: falco}}
        spec:
          selector: {{matchLabels: {{app: falcosidekick}}}}
          template:
            metadata: {{labels: {{app: falcosidekick}}}}
            spec:
              containers:
              - name: falcosidekick
                image: docker.io/falcosecurity/falcosidekick:2.30.0
                {env}
        ---
        """)


FED = '[/usr/bin/falco, -o, http_output.enabled=true, -o, "http_output.url=http://falcosidekick.falco.svc:2801"]'


def test_sidekick_with_output_and_fed_by_falco_passes():
    env = "env: [{name: WEBHOOK_ADDRESS, value: 'http://siem.plant.example/falco'}, {name: LISTENPORT, value: '2801'}]"
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(falco(args=FED) + sidekick(env)))
    assert f.status is Status.PASS and f.evidence["outputs"] == ["webhook"]
    secret_ref = "env: [{name: SLACK_WEBHOOKURL, valueFrom: {secretKeyRef: {name: sk, key: slack}}}]"
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(falco(args=FED) + sidekick(secret_ref)))
    assert f.status is Status.PASS and f.evidence["outputs"] == ["slack"]


def test_sidekick_without_output_or_not_fed_fails():
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(
        falco(args=FED) + sidekick("env: [{name: LISTENPORT, value: '2801'}, {name: SLACK_WEBHOOKURL, value: ''}]")))
    assert f.status is Status.FAIL and "no output configured" in f.message
    off = "[/usr/bin/falco, -o, http_output.enabled=false]"
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(
        falco(args=off) + sidekick("env: [{name: WEBHOOK_ADDRESS, value: 'http://x'}]")))
    assert f.status is Status.FAIL and "receives nothing" in f.message


def test_sidekick_outputs_hidden_in_a_secret_are_not_assessed():
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(
        falco(args=FED) + sidekick("envFrom: [{secretRef: {name: falcosidekick}}]")))
    assert f.status is Status.NOT_ASSESSED and "secretRef falcosidekick" in f.message


def test_falco_http_output_direct_or_from_configmap():
    direct = '[/usr/bin/falco, -o, http_output.enabled=true, -o, "http_output.url=https://siem.example/falco"]'
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(falco(args=direct)))
    assert f.status is Status.PASS and "https://siem.example/falco" in f.message
    cm = textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: falco, namespace: falco}
        data:
          falco.yaml: |
            json_output: true
            http_output:
              enabled: false
              url: ""
        """)
    text = falco(volumes="[{name: config, configMap: {name: falco}}]") + cm
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(text))
    assert f.status is Status.FAIL and "go nowhere" in f.message
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(falco()))
    assert f.status is Status.NOT_ASSESSED


# ---- custom rules -----------------------------------------------------------------------------------------
RULES = """\
- macro: plant_secrets
  condition: (fd.name startswith /etc/plant/keys or fd.name in (/etc/shadow, /root/.ssh/id_rsa))
- list: allowed_historian_peers
  items: ["10.20.0.0/16"]
- rule: Read plant secret material
  desc: A process read key material of the plant.
  condition: open_read and container and plant_secrets and not proc.name in (opcua-gateway)
  output: "secret read (file=%fd.name proc=%proc.name container=%container.name)"
  priority: CRITICAL
- rule: Unexpected outbound connection from OT zone
  desc: OT workloads only talk to the historian network.
  condition: >
    evt.type = connect and evt.dir = < and container and k8s.ns.name = "ot-sensors"
    and not fd.snet in (allowed_historian_peers)
  output: "outbound (dest=%fd.rip:%fd.rport proc=%proc.name)"
  priority: WARNING
"""


def rules_cm(body: str, name: str = "falco-rules") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: falco}}\ndata:\n" \
           "  plant_rules.yaml: |\n" + textwrap.indent(body, "    ") + "---\n"


MOUNTED = falco(volumes="[{name: rules, configMap: {name: falco-rules}}, {name: overrides, projected: "
                        "{sources: [{configMap: {name: zz-overrides}}]}}]")


def test_custom_rules_cover_both_topics():
    findings = run_check("runtime.falco-custom-rules", inventory_from_yaml(MOUNTED + rules_cm(RULES)))
    assert [f.status for f in findings] == [Status.PASS, Status.PASS]
    assert "Read plant secret material" in findings[0].message
    assert findings[0].resource.display == "ConfigMap/falco/falco-rules"
    assert "Unexpected outbound connection from OT zone" in findings[1].message


def test_disabled_rule_and_missing_topic():
    disable = "- rule: Read plant secret material\n  enabled: false\n"
    findings = run_check("runtime.falco-custom-rules", inventory_from_yaml(
        MOUNTED + rules_cm(RULES) + rules_cm(disable, "zz-overrides")))
    assert findings[0].status is Status.FAIL and "disabled" in findings[0].message
    only_outbound = RULES.split("- rule: Read plant secret material")[0] + \
        "- rule: x\n  condition: evt.type = connect and fd.sip != 10.0.0.1\n  output: x\n  priority: INFO\n"
    findings = run_check("runtime.falco-custom-rules", inventory_from_yaml(MOUNTED + rules_cm(only_outbound)))
    assert [f.status for f in findings] == [Status.FAIL, Status.PASS]


def test_appended_condition_counts():
    base = "- rule: Shell\n  condition: spawned_process and shell_procs\n  output: x\n  priority: INFO\n" \
           "- rule: Shell\n  condition: or (open_read and fd.name = /etc/shadow)\n  override: {condition: append}\n"
    [f, _] = run_check("runtime.falco-custom-rules", inventory_from_yaml(MOUNTED + rules_cm(base)))
    assert f.status is Status.PASS


def test_rules_without_falco_are_not_assessed_and_no_rules_fail():
    [f] = run_check("runtime.falco-custom-rules", inventory_from_yaml(rules_cm(RULES)))
    assert f.status is Status.NOT_ASSESSED
    findings = run_check("runtime.falco-custom-rules", inventory_from_yaml(falco()))
    assert all(f.status is Status.FAIL and "no Falco rules in any ConfigMap mounted" in f.message for f in findings)
    findings = run_check("runtime.falco-custom-rules", inventory_from_yaml(falco() + rules_cm(RULES)))
    assert all(f.status is Status.FAIL and "ConfigMap/falco/falco-rules hold rules but are not mounted" in f.message
               for f in findings)


def test_macro_expansion_is_bounded():
    from nis2kube.checks.runtime import MAX_EXPANDED, _expand

    macros = {f"m{i}": " ".join([f"m{i + 1}"] * 10) for i in range(20)}
    assert len(_expand("m0 and open_read", macros)) <= MAX_EXPANDED
    assert _expand("open_read and secrets", {"secrets": "fd.name = /etc/shadow"}) == \
        "open_read and (fd.name = /etc/shadow)"


def test_factory_hall_story():
    from conftest import EXAMPLE
    from nis2kube.inventory import from_paths

    if not EXAMPLE.is_dir():
        pytest.skip("examples/factory-hall not present")
    inv = from_paths([str(EXAMPLE)])
    [coverage] = run_check("runtime.falco-coverage", inv)
    assert coverage.status is Status.FAIL and "edge-halle3-2" in coverage.evidence["blind_nodes"]
    [routing] = run_check("runtime.falco-alert-routing", inv)
    assert routing.status is Status.PASS and "webhook" in routing.message


def test_live_scan_without_permission_is_not_assessed():
    inv = inventory_from_yaml(node("n1"))
    inv.unlisted[("apps", "DaemonSet")] = "forbidden"
    [f] = run_check("runtime.falco-deployed", inv)
    assert f.status is Status.NOT_ASSESSED and "could not list DaemonSet (forbidden)" in f.message
    inv = inventory_from_yaml(falco())
    inv.unlisted[("", "ConfigMap")] = "forbidden"
    findings = run_check("runtime.falco-custom-rules", inv)
    assert all(f.status is Status.NOT_ASSESSED for f in findings)


# ---- upstream semantics (k8s Toleration.ToleratesTaint, nodeaffinity, daemon controller; Falco, chart) ---------
@pytest.mark.parametrize(("toleration", "taint", "expected"), [
    ({"operator": "Equal", "value": "gpu"}, {"key": "a", "value": "gpu", "effect": "NoSchedule"}, True),
    ({"key": "capacity", "operator": "Gt", "value": "100"}, {"key": "capacity", "value": "250",
                                                              "effect": "NoSchedule"}, True),
    ({"key": "capacity", "operator": "Lt", "value": "100"}, {"key": "capacity", "value": "250",
                                                              "effect": "NoSchedule"}, False),
    ({"key": "capacity", "operator": "Gt", "value": "1_0"}, {"key": "capacity", "value": "250",
                                                              "effect": "NoSchedule"}, False),
])
def test_toleration_function_semantics(toleration, taint, expected):
    assert tolerates(toleration, taint) is expected


def test_node_affinity_requirements_parse_like_the_scheduler():
    n = {"metadata": {"name": "edge-1", "labels": {"cores": "8_0"}}}

    def term(*exprs, fields=()):
        return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": list(exprs), "matchFields": list(fields)}]}}}}

    assert not node_selected(term({"key": "cores", "operator": "Gt", "values": ["4"]}), n)  # 8_0 is no int64
    assert not node_selected(term({"key": "cores", "operator": "Exists", "values": ["8_0"]}), n)  # invalid
    assert not node_selected(term({"key": "x", "operator": "NotIn", "values": []}), n)  # invalid, not "all"
    by_name = {"key": "metadata.name", "operator": "In", "values": ["edge-1", "edge-2"]}
    assert not node_selected(term(fields=[by_name]), n)  # matchFields take exactly one value
    assert node_selected(term(fields=[{**by_name, "values": ["edge-1"]}]), n)
    assert not node_selected(term(fields=[{"key": "metadata.name", "operator": "Exists"}]), n)


def test_daemonset_pinned_by_node_name_misses_other_nodes():
    text = CLUSTER + falco("[{operator: Exists}]", extra_spec="nodeName: worker-1")
    [f] = run_check("runtime.falco-coverage", inventory_from_yaml(text))
    assert f.status is Status.FAIL and set(f.evidence["blind_nodes"]) == {"cp-1", "edge-1", "worker-2"}


def test_falco_no_driver_image_is_falco():
    text = falco().replace("falcosecurity/falco:0.39.2", "falcosecurity/falco-no-driver:0.37.1")
    [f] = run_check("runtime.falco-deployed", inventory_from_yaml(text))
    assert f.status is Status.PASS


FALCO_YAML = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: falco, namespace: falco}
data:
  falco.yaml: |
    json_output: %s
    http_output:
      enabled: true
      url: http://falcosidekick:2801/
"""


def test_plain_text_alerts_are_rejected_by_falcosidekick():
    """falcosidekick decodes the body as JSON and answers 400 otherwise; the falco chart therefore sets
    json_output: true whenever it wires falcosidekick in."""
    env = "env: [{name: WEBHOOK_ADDRESS, value: 'http://siem.plant.example/falco'}]"
    mounted = falco(volumes="[{name: config, configMap: {name: falco}}]") + sidekick(env)
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(mounted + FALCO_YAML % "false"))
    assert f.status is Status.FAIL and "json_output is off" in f.message
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(mounted + FALCO_YAML % "true"))
    assert f.status is Status.PASS
    # -o overrides the file, as Falco applies command-line options after loading it
    args = "[/usr/bin/falco, -o, json_output=true]"
    text = falco(args=args, volumes="[{name: config, configMap: {name: falco}}]") + sidekick(env)
    [f] = run_check("runtime.falco-alert-routing", inventory_from_yaml(text + FALCO_YAML % "false"))
    assert f.status is Status.PASS
