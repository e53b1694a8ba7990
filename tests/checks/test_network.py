"""net.* checks: default-deny baselines, isolation per workload, allow-all rules, host network, CNI detection."""

from __future__ import annotations

import pytest
import yaml

from conftest import inventory_from_yaml, run_check, statuses
from nis2kube.checks.network import parse_policy, rule_allows_all
from nis2kube.findings import ResourceRef, Severity, Status

NAMESPACES = """
apiVersion: v1
kind: Namespace
metadata: {name: plant-ot, labels: {zone: ot}}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
"""


def policy(name: str, namespace: str = "plant-ot", **spec: object) -> str:
    spec.setdefault("podSelector", {})
    return yaml.safe_dump({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                           "metadata": {"name": name, "namespace": namespace}, "spec": spec})  # fmt: skip


def deployment(name: str, labels: dict, namespace: str = "plant-ot", **pod: object) -> str:
    pod.setdefault("containers", [{"name": name, "image": f"registry.example.eu/{name}:1.4.2"}])
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": pod}},
    })  # fmt: skip


def daemonset(name: str, namespace: str, *containers: dict, **pod: object) -> str:
    labels = {"app": name}
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": list(containers), **pod}}},
    })  # fmt: skip


def inv_of(*docs: str):
    return inventory_from_yaml("\n---\n".join((NAMESPACES, *docs)))


def verdict(check_id: str, inv, display: str):
    found = [f for f in run_check(check_id, inv) if f.resource and f.resource.display == display]
    assert len(found) == 1, found
    return found[0]


# ---- default deny ----------------------------------------------------------------------------------------


def test_ingress_only_default_deny_passes_ingress_and_fails_egress():
    inv = inv_of(policy("default-deny-ingress", policyTypes=["Ingress"]))
    assert verdict("net.default-deny-ingress", inv, "Namespace/plant-ot").status is Status.PASS
    egress = verdict("net.default-deny-egress", inv, "Namespace/plant-ot")
    assert egress.status is Status.FAIL


def test_egress_deny_through_policy_types_only():
    inv = inv_of(policy("default-deny-egress", policyTypes=["Egress"]))
    assert verdict("net.default-deny-egress", inv, "Namespace/plant-ot").status is Status.PASS
    # policyTypes given without Ingress: this policy does not touch ingress
    assert verdict("net.default-deny-ingress", inv, "Namespace/plant-ot").status is Status.FAIL


def test_empty_egress_list_without_policy_types_defaults_to_ingress_only():
    inv = inv_of(policy("deny-all", egress=[]))
    assert verdict("net.default-deny-ingress", inv, "Namespace/plant-ot").status is Status.PASS
    egress = verdict("net.default-deny-egress", inv, "Namespace/plant-ot")
    assert egress.status is Status.FAIL
    assert "defaults to [Ingress]" in egress.message


def test_egress_rules_without_policy_types_imply_egress():
    parsed = parse_policy(yaml.safe_load(policy("p", egress=[{"to": [{"podSelector": {}}]}])))
    assert parsed.types == {"Ingress", "Egress"}
    assert parse_policy(yaml.safe_load(policy("q", policyTypes=[]))).types == {"Ingress"}


@pytest.mark.parametrize("rules", [
    [{}],
    [{"from": []}],
    [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
    [{"from": [{"namespaceSelector": {}}]}],
    [{"from": [{"podSelector": {"matchLabels": {"app": "hmi"}}}]}],
])  # fmt: skip
def test_policy_selecting_everything_that_then_allows_is_not_default_deny(rules):
    inv = inv_of(policy("looks-like-deny", policyTypes=["Ingress"], ingress=rules))
    finding = verdict("net.default-deny-ingress", inv, "Namespace/plant-ot")
    assert finding.status is Status.FAIL
    assert "looks-like-deny" in finding.message


def test_null_rule_from_a_bare_dash_allows_everything():
    text = (
        NAMESPACES + "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: deny-or-not, namespace: plant-ot}\n"
        "spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n  -\n"
    )
    inv = inventory_from_yaml(text)
    assert verdict("net.default-deny-ingress", inv, "Namespace/plant-ot").status is Status.FAIL
    assert verdict("net.allow-all-rule", inv, "NetworkPolicy/plant-ot/deny-or-not").status is Status.FAIL


def test_allow_all_trap_is_named_in_the_message():
    inv = inv_of(policy("open", policyTypes=["Ingress"], ingress=[{}]))
    assert "rule 1 allows any source" in verdict("net.default-deny-ingress", inv, "Namespace/plant-ot").message


def test_deny_stays_deny_when_other_policies_add_allowances():
    inv = inv_of(
        policy("default-deny", policyTypes=["Ingress", "Egress"]),
        policy("allow-scada", podSelector={"matchLabels": {"app": "scada"}}, ingress=[{}], egress=[{}]),
    )
    assert verdict("net.default-deny-ingress", inv, "Namespace/plant-ot").status is Status.PASS
    assert verdict("net.default-deny-egress", inv, "Namespace/plant-ot").status is Status.PASS


def test_policy_in_another_namespace_does_not_count():
    inv = inv_of(
        policy("default-deny", namespace="office", policyTypes=["Ingress"]),
        deployment("plc-gateway", {"app": "plc-gateway"}),
    )
    assert verdict("net.default-deny-ingress", inv, "Namespace/office").status is Status.PASS
    assert verdict("net.default-deny-ingress", inv, "Namespace/plant-ot").status is Status.FAIL


def test_partial_selector_is_not_a_baseline():
    inv = inv_of(policy("deny-hmi", podSelector={"matchLabels": {"app": "hmi"}}, policyTypes=["Ingress"]))
    finding = verdict("net.default-deny-ingress", inv, "Namespace/plant-ot")
    assert finding.status is Status.FAIL
    assert "select only some pods" in finding.message


def test_system_namespaces_are_reported_apart_and_missing_namespace_objects_get_a_ref():
    inv = inv_of(policy("default-deny", namespace="office", policyTypes=["Ingress"]))
    findings = {f.resource.display: f for f in run_check("net.default-deny-ingress", inv)}
    assert findings["Namespace/kube-system"].system is True
    assert findings["Namespace/plant-ot"].system is False
    office = findings["Namespace/office"]  # no Namespace object in the input
    assert office.resource == ResourceRef("v1", "Namespace", None, "office")
    assert office.system is False


def test_custom_system_namespaces_from_config():
    inv = inv_of()
    found = run_check("net.default-deny-ingress", inv, {"system_namespaces": ["plant-ot"]})
    assert {f.resource.name: f.system for f in found} == {"plant-ot": True, "kube-system": False}


def test_no_namespaces_is_not_assessed():
    inv = inventory_from_yaml("apiVersion: v1\nkind: Node\nmetadata: {name: edge-1}\n")
    (finding,) = run_check("net.default-deny-ingress", inv)
    assert finding.status is Status.NOT_ASSESSED


def test_unreadable_network_policies_are_not_assessed():
    inv = inv_of()
    inv.unlisted[("networking.k8s.io", "NetworkPolicy")] = "forbidden: cannot list networkpolicies"
    for check_id in ("net.default-deny-ingress", "net.workload-not-isolated", "net.allow-all-rule"):
        (finding,) = run_check(check_id, inv)
        assert finding.status is Status.NOT_ASSESSED
        assert "forbidden" in finding.message


def test_cni_specific_policies_are_named_not_credited():
    ccnp = yaml.safe_dump(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": {"name": "default-deny"},
            "spec": {"endpointSelector": {}, "ingress": []},
        }
    )
    finding = verdict("net.default-deny-ingress", inv_of(ccnp), "Namespace/plant-ot")
    assert finding.status is Status.FAIL
    assert "CiliumClusterwideNetworkPolicy" in finding.message


# ---- isolation per workload ------------------------------------------------------------------------------


def test_workload_isolation_names_the_missing_direction():
    inv = inv_of(
        policy("hmi-ingress", podSelector={"matchLabels": {"app": "hmi"}}, ingress=[{"from": [{"podSelector": {}}]}]),
        deployment("hmi", {"app": "hmi", "tier": "frontend"}),
        deployment("historian", {"app": "historian"}),
    )
    found = {f.resource.display: f for f in run_check("net.workload-not-isolated", inv)}
    hmi = found["Deployment/plant-ot/hmi"]
    assert hmi.status is Status.FAIL and "not isolated for egress" in hmi.message
    assert hmi.severity is Severity.MEDIUM  # ingress is covered
    historian = found["Deployment/plant-ot/historian"]
    assert "ingress and egress" in historian.message and historian.severity is Severity.HIGH


def test_selector_not_in_and_does_not_exist_match_pods_without_the_key():
    selector = {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["dmz"]},
                                     {"key": "legacy", "operator": "DoesNotExist"}]}  # fmt: skip
    inv = inv_of(
        policy("isolate", podSelector=selector, policyTypes=["Ingress", "Egress"]),
        deployment("no-zone", {"app": "a"}),
        deployment("in-dmz", {"app": "b", "zone": "dmz"}),
        deployment("legacy", {"app": "c", "legacy": "true"}),
        deployment("cell", {"app": "d", "zone": "cell-3"}),
    )
    assert statuses(run_check("net.workload-not-isolated", inv)) == {
        "Deployment/plant-ot/cell": Status.PASS,
        "Deployment/plant-ot/in-dmz": Status.FAIL,
        "Deployment/plant-ot/legacy": Status.FAIL,
        "Deployment/plant-ot/no-zone": Status.PASS,
    }


def test_exists_and_in_selectors():
    inv = inv_of(
        policy(
            "a",
            podSelector={"matchExpressions": [{"key": "cell", "operator": "Exists"}]},
            policyTypes=["Ingress", "Egress"],
        ),
        policy(
            "b",
            podSelector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["plc", "hmi"]}]},
            policyTypes=["Ingress", "Egress"],
        ),
        deployment("plc", {"app": "plc"}),
        deployment("robot", {"app": "robot", "cell": ""}),
        deployment("erp", {"app": "erp"}),
    )
    assert statuses(run_check("net.workload-not-isolated", inv)) == {
        "Deployment/plant-ot/erp": Status.FAIL,
        "Deployment/plant-ot/plc": Status.PASS,
        "Deployment/plant-ot/robot": Status.PASS,
    }


def test_host_network_workload_is_never_isolated():
    inv = inv_of(
        policy("deny", policyTypes=["Ingress", "Egress"]),
        deployment("modbus-bridge", {"app": "modbus"}, hostNetwork=True),
    )
    finding = verdict("net.workload-not-isolated", inv, "Deployment/plant-ot/modbus-bridge")
    assert finding.status is Status.FAIL and "hostNetwork" in finding.message
    assert verdict("net.host-network", inv, "Deployment/plant-ot/modbus-bridge").status is Status.FAIL


def test_host_network_pass_and_system_daemonset():
    inv = inv_of(deployment("hmi", {"app": "hmi"}),
                 daemonset("kube-proxy", "kube-system", c("kube-proxy", "registry.k8s.io/kube-proxy:v1.30.2"),
                           hostNetwork=True))  # fmt: skip
    found = {f.resource.display: f for f in run_check("net.host-network", inv)}
    assert found["Deployment/plant-ot/hmi"].status is Status.PASS
    assert found["DaemonSet/kube-system/kube-proxy"].status is Status.FAIL
    assert found["DaemonSet/kube-system/kube-proxy"].system is True


def test_invalid_pod_selector_is_reported_and_selects_nothing():
    bad = policy(
        "broken",
        podSelector={"matchExpressions": [{"key": "app", "operator": "In", "values": []}]},
        policyTypes=["Ingress", "Egress"],
    )
    inv = inv_of(bad, deployment("hmi", {"app": "hmi"}))
    found = run_check("net.workload-not-isolated", inv)
    assert statuses(found) == {
        "NetworkPolicy/plant-ot/broken": Status.NOT_ASSESSED,
        "Deployment/plant-ot/hmi": Status.FAIL,
    }


def test_hostile_policy_shapes_do_not_crash():
    inv = inventory_from_yaml(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: odd, namespace: x}\n"
        "spec: {podSelector: [1, 2], ingress: 'all', egress: [null, 3, {to: 'x'}], policyTypes: Egress}\n"
    )
    for check_id in ("net.default-deny-ingress", "net.default-deny-egress", "net.workload-not-isolated",
                     "net.allow-all-rule"):  # fmt: skip
        assert run_check(check_id, inv)


# ---- allow-all rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("direction", "rule", "allows_all"), [
    ("Ingress", {}, True),
    ("Ingress", {"from": []}, True),
    ("Ingress", {"ports": [{"port": 502, "protocol": "TCP"}]}, False),
    ("Ingress", {"from": [{"namespaceSelector": {}}]}, True),
    ("Ingress", {"from": [{"namespaceSelector": {}, "podSelector": {}}]}, True),
    ("Ingress", {"from": [{"namespaceSelector": {"matchLabels": {}}, "podSelector": {"matchExpressions": []}}]}, True),
    ("Ingress", {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "hmi"}}}]}, False),
    ("Ingress", {"from": [{"namespaceSelector": {"matchLabels": {"zone": "ot"}}}]}, False),
    ("Ingress", {"from": [{"podSelector": {}}]}, False),
    ("Ingress", {"from": [{"podSelector": {"matchLabels": {"a": "b"}}}, {"namespaceSelector": {}}]}, True),
    ("Egress", {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}, True),
    ("Egress", {"to": [{"ipBlock": {"cidr": "::/0"}}]}, True),
    ("Egress", {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}, False),
    ("Egress", {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}, False),
    ("Egress", {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}, False),
    ("Egress", {"to": [{"ipBlock": {"cidr": "not-a-cidr"}}]}, False),
    ("Egress", {}, True),
])  # fmt: skip
def test_rule_allows_all_table(direction, rule, allows_all):
    assert (rule_allows_all(rule, direction) is not None) is allows_all


def test_allow_all_rule_check_severity_and_ignored_directions():
    inv = inv_of(
        policy(
            "internet",
            podSelector={"matchLabels": {"app": "updater"}},
            policyTypes=["Egress"],
            egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
        ),
        policy("cluster-wide", policyTypes=["Ingress"], ingress=[{"from": [{"namespaceSelector": {}}]}]),
        # ingress rules of a policy whose policyTypes is [Egress] have no effect: not judged
        policy("egress-only", policyTypes=["Egress"], ingress=[{}], egress=[{"to": [{"podSelector": {}}]}]),
    )
    found = {f.resource.name: f for f in run_check("net.allow-all-rule", inv)}
    assert found["internet"].status is Status.FAIL and found["internet"].severity is Severity.HIGH
    assert "egress rule 1" in found["internet"].message
    assert found["cluster-wide"].status is Status.FAIL and found["cluster-wide"].severity is Severity.MEDIUM
    assert found["egress-only"].status is Status.PASS


def test_upstream_example_policies(shared_dir):
    """Policies from kubernetes-sigs/network-policy-api (policy-assistant examples)."""
    base = shared_dir / "corpora/network-policy-api/cmd/policy-assistant/test/example-policies/networkpolicies"
    texts = [(base / name).read_text() for name in ("allow-all.yaml", "allow-all-internal.yaml")]
    inv = inventory_from_yaml("\n---\n".join(texts))
    found = {f.resource.name: f for f in run_check("net.allow-all-rule", inv)}
    assert found["allow-all"].status is Status.FAIL and found["allow-all"].severity is Severity.HIGH
    assert found["allow-all-internal"].status is Status.FAIL
    assert found["allow-all-internal"].severity is Severity.MEDIUM
    assert verdict("net.default-deny-ingress", inv, "Namespace/abcd").status is Status.FAIL

    simple = base / "simple-example"
    texts = [(simple / name).read_text() for name in ("deny-all.yaml", "deny-all-egress.yaml")]
    inv = inventory_from_yaml("\n---\n".join(texts))
    assert verdict("net.default-deny-ingress", inv, "Namespace/y").status is Status.PASS
    assert verdict("net.default-deny-egress", inv, "Namespace/y").status is Status.PASS


# ---- CNI -------------------------------------------------------------------------------------------------


def c(name: str, image: str, *args: str) -> dict:
    return {"name": name, "image": image, **({"args": list(args)} if args else {})}


FLANNEL = daemonset("kube-flannel-ds", "kube-flannel", c("kube-flannel", "docker.io/flannel/flannel:v0.25.1"))
ECR = "602401143452.dkr.ecr.eu-central-1.amazonaws.com"
CALICO = daemonset("calico-node", "calico-system", c("calico-node", "docker.io/calico/node:v3.28.0"))


@pytest.mark.parametrize(("docs", "expected", "engine"), [
    ([FLANNEL], Status.FAIL, "flannel"),
    ([daemonset("canal", "kube-system", c("calico-node", "quay.io/calico/node:v3.27.3"),
                c("kube-flannel", "quay.io/coreos/flannel:v0.15.1"))], Status.PASS, "canal"),
    ([FLANNEL, CALICO], Status.PASS, "calico"),
    ([daemonset("cilium", "kube-system", c("cilium-agent", "quay.io/cilium/cilium:v1.15.6@sha256:" + "a" * 64))],
     Status.PASS, "cilium"),
    ([daemonset("weave-net", "kube-system", c("weave", "weaveworks/weave-kube:2.8.1"),
                c("weave-npc", "weaveworks/weave-npc:2.8.1"))], Status.PASS, "weave"),
    ([daemonset("weave-net", "kube-system", c("weave", "weaveworks/weave-kube:2.8.1"))], Status.FAIL, "weave-npc"),
    ([daemonset("antrea-agent", "kube-system", c("antrea-agent", "antrea/antrea-agent-ubuntu:v2.0.0"))],
     Status.PASS, "antrea"),
    ([daemonset("kube-router", "kube-system", c("kube-router", "docker.io/cloudnativelabs/kube-router:v2.1.3",
                                                "--run-firewall=true"))], Status.PASS, "kube-router"),
    ([daemonset("kube-router", "kube-system", c("kube-router", "docker.io/cloudnativelabs/kube-router:v2.1.3",
                                                "--run-firewall=false"))], Status.FAIL, "run-firewall=false"),
    ([daemonset("aws-node", "kube-system", c("aws-node", f"{ECR}/amazon-k8s-cni:v1.18.2"),
                c("aws-eks-nodeagent", f"{ECR}/amazon/aws-network-policy-agent:v1.1.2",
                  "--enable-network-policy=false"))], Status.FAIL, "enable-network-policy=false"),
    ([daemonset("aws-node", "kube-system", c("aws-node", f"{ECR}/amazon-k8s-cni:v1.18.2"),
                c("aws-eks-nodeagent", f"{ECR}/amazon/aws-network-policy-agent:v1.1.2",
                  "--enable-network-policy=true"))], Status.PASS, "aws-vpc-cni"),
    ([daemonset("aws-node", "kube-system", c("aws-node", f"{ECR}/amazon-k8s-cni:v1.18.2"))],
     Status.FAIL, "aws-vpc-cni"),
    ([deployment("hmi", {"app": "hmi"})], Status.NOT_ASSESSED, "no CNI"),
])  # fmt: skip
def test_cni_detection_table(docs, expected, engine):
    (finding,) = run_check("net.cni-enforces-policies", inv_of(*docs))
    assert finding.status is expected
    assert engine in finding.message
    assert finding.resource is None and finding.system is False  # a cluster verdict, even for kube-system plugins


CILIUM_IMAGE = "quay.io/cilium/cilium:v1.16.3"


def cilium_config(**data: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "cilium-config", "namespace": "kube-system"}, "data": data})


def cilium_agent(*args: str, env: dict | None = None, init: tuple[str, ...] = ()) -> str:
    agent = c("cilium-agent", CILIUM_IMAGE, "--config-dir=/tmp/cilium/config-map", *args)
    if env:
        agent["env"] = [{"name": k, "value": v} for k, v in env.items()]
    extra = {"initContainers": [c(name, CILIUM_IMAGE) for name in init]} if init else {}
    return daemonset("cilium", "kube-system", agent,
                     volumes=[{"name": "cilium-config-path", "configMap": {"name": "cilium-config"}}], **extra)


@pytest.mark.parametrize(("docs", "expected", "said"), [
    ([cilium_agent(), cilium_config(**{"enable-policy": "default"})], Status.PASS, "enforcement mode default"),
    ([cilium_agent(), cilium_config(**{"enable-policy": "Always"})], Status.PASS, "enforcement mode always"),
    ([cilium_agent(), cilium_config(**{"enable-policy": "never"})], Status.FAIL,
     "ConfigMap kube-system/cilium-config enable-policy=never"),
    ([cilium_agent(), cilium_config(**{"enable-policy": "off"})], Status.FAIL, "refuses to start"),
    ([cilium_agent(), cilium_config(**{"policy-audit-mode": "true"})], Status.FAIL, "only logged"),
    ([cilium_agent(), cilium_config(**{"policy-audit-mode": "false"})], Status.PASS, "cilium agent"),
    # a flag beats the environment, which beats the ConfigMap (viper's order)
    ([cilium_agent("--enable-policy=default", env={"CILIUM_ENABLE_POLICY": "never"}),
      cilium_config(**{"enable-policy": "never"})], Status.PASS, "--enable-policy"),
    ([cilium_agent(env={"CILIUM_ENABLE_POLICY": "never"}), cilium_config(**{"enable-policy": "default"})],
     Status.FAIL, "CILIUM_ENABLE_POLICY=never"),
    ([cilium_agent("--policy-audit-mode")], Status.FAIL, "--policy-audit-mode=true"),
    # Helm's init containers run the agent image without the agent's settings: they are not the agent
    ([cilium_agent("--enable-policy=never", init=("config", "mount-cgroup"))], Status.FAIL, "--enable-policy=never"),
])  # fmt: skip
def test_cilium_enforcement_mode_and_audit_mode(docs, expected, said):
    (finding,) = run_check("net.cni-enforces-policies", inv_of(*docs))
    [why] = [e["why"] for e in finding.evidence["cni"]]
    assert finding.status is expected and said in why, why
    assert expected is Status.PASS or why in finding.message


def test_cni_detected_from_pods_of_an_absent_daemonset():
    pod = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "cilium-x7k2p", "namespace": "kube-system",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "cilium",
                                          "uid": "4f1c", "controller": True}]},
        "spec": {"containers": [c("cilium-agent", "quay.io/cilium/cilium:v1.15.6")]},
    })  # fmt: skip
    (finding,) = run_check("net.cni-enforces-policies", inv_of(pod))
    assert finding.status is Status.PASS and "DaemonSet/kube-system/cilium" in finding.message


def test_cni_unreadable_daemonsets():
    inv = inv_of()
    inv.unlisted[("apps", "DaemonSet")] = "forbidden"
    (finding,) = run_check("net.cni-enforces-policies", inv)
    assert finding.status is Status.NOT_ASSESSED


# ---- CNI recognition as the agents parse their flags / as the images are published (review) ----------------

KUBE_ROUTER = "docker.io/cloudnativelabs/kube-router:v2.1.3"
NODE_AGENT = f"{ECR}/amazon/aws-network-policy-agent:v1.1.2"


@pytest.mark.parametrize(("args", "expected"), [
    # spf13/pflag: a bool flag never takes the next word, so this is --run-firewall=true plus a stray argument
    (("--run-firewall", "false"), Status.PASS),
    (("--run-firewall=0",), Status.FAIL),  # strconv.ParseBool
    (("--run-firewall=false", "--run-firewall=true"), Status.PASS),  # the last occurrence wins
    (("--run-router=true", "--", "--run-firewall=false"), Status.PASS),  # `--` ends the flags
])  # fmt: skip
def test_kube_router_firewall_flag_as_pflag_parses_it(args, expected):
    ds = daemonset("kube-router", "kube-system", c("kube-router", KUBE_ROUTER, *args))
    (finding,) = run_check("net.cni-enforces-policies", inv_of(ds))
    assert finding.status is expected


@pytest.mark.parametrize(("args", "expected"), [
    (("--enable-network-policy=True",), Status.PASS),
    (("--enable-network-policy",), Status.PASS),
    (("--enable-network-policy", "false"), Status.PASS),
    (("--enable-network-policy=1", "--enable-network-policy=F"), Status.FAIL),
])  # fmt: skip
def test_aws_network_policy_agent_flag_as_pflag_parses_it(args, expected):
    ds = daemonset("aws-node", "kube-system", c("aws-node", f"{ECR}/amazon-k8s-cni:v1.18.2"),
                   c("aws-eks-nodeagent", NODE_AGENT, *args))  # fmt: skip
    (finding,) = run_check("net.cni-enforces-policies", inv_of(ds))
    assert finding.status is expected


def test_cilium_project_images_that_are_not_the_agent_do_not_count():
    tetragon = daemonset("tetragon", "kube-system", c("tetragon", "quay.io/cilium/tetragon:v1.1.2"),
                         c("export-stdout", "quay.io/cilium/hubble-export-stdout:v1.0.4"))  # fmt: skip
    (finding,) = run_check("net.cni-enforces-policies", inv_of(FLANNEL, tetragon))
    assert finding.status is Status.FAIL and "cilium" not in finding.message
    mirrored = daemonset("cilium", "kube-system", c("cilium-agent", "docker.io/rancher/mirrored-cilium-cilium:v1.15.6"))
    (finding,) = run_check("net.cni-enforces-policies", inv_of(FLANNEL, mirrored))
    assert finding.status is Status.PASS and "cilium" in finding.message


def test_calico_csi_driver_is_not_calico_node():
    csi = daemonset("csi-node-driver", "calico-system", c("calico-csi", "docker.io/calico/csi:v3.28.0"),
                    c("csi-node-driver-registrar", "docker.io/calico/node-driver-registrar:v3.28.0"))  # fmt: skip
    (finding,) = run_check("net.cni-enforces-policies", inv_of(FLANNEL, csi))
    assert finding.status is Status.FAIL
