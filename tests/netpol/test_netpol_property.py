"""The grouped engine against two naive evaluators on random clusters and policies (hypothesis).

1. The pairwise explainer (rule by rule, per pair): port sets must be equal for every ordered pair; also
   with AdminNetworkPolicies, a BaselineAdminNetworkPolicy and pod IPs matched by ipBlocks.
2. A from-scratch evaluator over the raw policy dicts written here, per probe (port, protocol): it shares
   no code with the model, so a compile bug (defaulting, peers, named ports) cannot hide in both.
"""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nis2kube.inventory import Inventory
from nis2kube.netpol import build_model
from nis2kube.netpol.explain import pair_ports

NAMESPACES = ("n1", "n2", "n3")
CONTAINER_PORTS = (("http", 80, "TCP"), ("http", 8080, "TCP"), ("metrics", 9100, "TCP"), ("dns", 53, "UDP"),
                   ("dns", 53, "TCP"))
IP_BLOCKS = ({"cidr": "10.0.0.0/8"}, {"cidr": "10.1.0.0/16"}, {"cidr": "10.0.0.0/8", "except": ["10.1.2.0/24"]})
POD_IPS = (None, "10.0.0.5", "10.0.0.6", "10.1.2.3", "10.1.9.9", "192.168.1.1")
PROBES = [(p, proto) for p in (53, 80, 81, 100, 8080, 9100) for proto in ("TCP", "UDP")]

label_values = st.sampled_from(["web", "db", "api"])
pod_labels = st.dictionaries(st.sampled_from(["app", "tier"]), label_values, max_size=2)
ns_labels = st.dictionaries(st.sampled_from(["team", "env"]), st.sampled_from(["web", "db"]), max_size=2)


@st.composite
def selectors(draw: st.DrawFn, keys: tuple[str, ...] = ("app", "tier")) -> dict:
    sel: dict = {}
    if draw(st.booleans()):
        sel["matchLabels"] = draw(st.dictionaries(st.sampled_from(keys), label_values, max_size=2))
    if draw(st.booleans()):
        exprs = []
        for _ in range(draw(st.integers(1, 2))):
            op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
            expr = {"key": draw(st.sampled_from(keys)), "operator": op}
            if op in ("In", "NotIn"):
                expr["values"] = draw(st.lists(label_values, min_size=1, max_size=2))
            exprs.append(expr)
        sel["matchExpressions"] = exprs
    return sel


@st.composite
def peers(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["pod", "ns", "both", "ip"]))
    if kind == "ip":
        return {"ipBlock": draw(st.sampled_from(IP_BLOCKS))}
    peer = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = draw(selectors())
    if kind in ("ns", "both"):
        peer["namespaceSelector"] = draw(st.one_of(
            selectors(("team", "env")),
            st.just({"matchLabels": {"kubernetes.io/metadata.name": draw(st.sampled_from(NAMESPACES))}})))
    return peer


@st.composite
def port_entries(draw: st.DrawFn) -> dict:
    entry: dict = {}
    shape = draw(st.sampled_from(["number", "range", "name", "none"]))
    if shape == "number":
        entry["port"] = draw(st.sampled_from([53, 80, 8080, 9100]))
    elif shape == "range":
        entry["port"], entry["endPort"] = 80, draw(st.sampled_from([80, 81, 100, 9000]))
    elif shape == "name":
        entry["port"] = draw(st.sampled_from(["http", "metrics", "dns", "nope"]))
    if draw(st.booleans()):
        entry["protocol"] = draw(st.sampled_from(["TCP", "UDP"]))
    return entry


@st.composite
def rules(draw: st.DrawFn, peer_field: str) -> dict:
    rule: dict = {}
    if draw(st.booleans()):
        rule[peer_field] = draw(st.lists(peers(), max_size=2))
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(port_entries(), max_size=2))
    return rule


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[dict], list[dict], list[dict]]:
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": draw(ns_labels)}}
                  for n in NAMESPACES]
    pods = []
    for i in range(draw(st.integers(1, 7))):
        chosen = draw(st.lists(st.sampled_from(CONTAINER_PORTS), max_size=3, unique_by=lambda p: (p[0])))
        ports = [{"name": n, "containerPort": num, "protocol": proto} for n, num, proto in chosen]
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"p{i}", "namespace": draw(st.sampled_from(NAMESPACES)),
                                  "labels": draw(pod_labels)},
                     "spec": {"containers": [{"name": "c", "image": "img", "ports": ports}]}})
    policies = []
    for i in range(draw(st.integers(0, 5))):
        spec: dict = {"podSelector": draw(selectors())}
        types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
        if types is not None:
            spec["policyTypes"] = types
        if draw(st.booleans()):
            spec["ingress"] = draw(st.lists(rules("from"), max_size=2))
        if draw(st.booleans()):
            spec["egress"] = draw(st.lists(rules("to"), max_size=2))
        policies.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": f"np{i}", "namespace": draw(st.sampled_from(NAMESPACES))},
                         "spec": spec})
    return namespaces, pods, policies


@st.composite
def admin_scopes(draw: st.DrawFn) -> dict:
    ns = draw(st.one_of(selectors(("team", "env")), st.just({"matchLabels": {
        "kubernetes.io/metadata.name": draw(st.sampled_from(NAMESPACES))}})))
    if draw(st.booleans()):
        return {"namespaces": ns}
    return {"pods": {"namespaceSelector": ns, "podSelector": draw(selectors())}}


@st.composite
def admin_ports(draw: st.DrawFn) -> dict:
    shape, proto = draw(st.sampled_from(["number", "range", "name"])), draw(st.sampled_from(["TCP", "UDP"]))
    if shape == "number":
        return {"portNumber": {"protocol": proto, "port": draw(st.sampled_from([53, 80, 8080, 9100]))}}
    if shape == "range":
        return {"portRange": {"protocol": proto, "start": 80, "end": draw(st.sampled_from([81, 100, 9000]))}}
    return {"namedPort": draw(st.sampled_from(["http", "metrics", "dns", "nope"]))}


@st.composite
def admin_policies(draw: st.DrawFn, kind: str, name: str) -> dict:
    actions = ["Allow", "Deny", "Pass"] if kind == "AdminNetworkPolicy" else ["Allow", "Deny"]
    spec: dict = {"subject": draw(admin_scopes())}
    if kind == "AdminNetworkPolicy":
        spec["priority"] = draw(st.integers(0, 3))
    for direction, peer_field in (("ingress", "from"), ("egress", "to")):
        rules = []
        for i in range(draw(st.integers(0, 3))):
            rule = {"name": f"{direction}-{i}", "action": draw(st.sampled_from(actions)),
                    peer_field: draw(st.lists(admin_scopes(), min_size=1, max_size=2))}
            if draw(st.booleans()):
                rule["ports"] = draw(st.lists(admin_ports(), min_size=1, max_size=2))
            rules.append(rule)
        spec[direction] = rules
    return {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": kind, "metadata": {"name": name},
            "spec": spec}


@st.composite
def admin_clusters(draw: st.DrawFn) -> list[dict]:
    """A random cluster with pod IPs, ANPs and at most one BANP."""
    namespaces, pods, policies = draw(clusters())
    for pod in pods:
        ip = draw(st.sampled_from(POD_IPS))
        if ip:
            pod["status"] = {"podIP": ip}
    admin = [draw(admin_policies("AdminNetworkPolicy", f"anp{i}")) for i in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        admin.append(draw(admin_policies("BaselineAdminNetworkPolicy", "default")))
    return namespaces + pods + policies + admin


# ---- the from-scratch evaluator over raw dicts -------------------------------------------------------------

def _sel(sel: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (sel.get("matchLabels") or {}).items()):
        return False
    for e in sel.get("matchExpressions") or []:
        has, value = e["key"] in labels, labels.get(e["key"])
        op = e["operator"]
        if (op == "In" and not (has and value in e["values"])) or (op == "NotIn" and has and value in e["values"]) \
                or (op == "Exists" and not has) or (op == "DoesNotExist" and has):
            return False
    return True


def _naive_allowed(namespaces: list[dict], policies: list[dict], src: dict, dst: dict, port: int, proto: str) -> bool:
    ns_labels = {}
    for n in namespaces:
        name = n["metadata"]["name"]
        ns_labels[name] = {**n["metadata"]["labels"], "kubernetes.io/metadata.name": name}

    def peer_ok(peer: dict, policy_ns: str, pod: dict) -> bool:
        if "ipBlock" in peer:
            return False
        ns = pod["metadata"]["namespace"]
        ns_ok = ns == policy_ns if "namespaceSelector" not in peer else _sel(peer["namespaceSelector"], ns_labels[ns])
        return ns_ok and _sel(peer.get("podSelector") or {}, pod["metadata"]["labels"])

    def port_ok(entries: list[dict] | None) -> bool:
        if not entries:
            return True
        for e in entries:
            if e.get("protocol", "TCP") != proto:
                continue
            p = e.get("port")
            if p is None or (isinstance(p, int) and p <= port <= e.get("endPort", p)):
                return True
            if isinstance(p, str) and any(c["name"] == p and c["protocol"] == proto and c["containerPort"] == port
                                          for c in dst["spec"]["containers"][0]["ports"]):
                return True
        return False

    def direction_ok(pod: dict, peer_pod: dict, direction: str, field: str) -> bool:
        selecting = []
        for pol in policies:
            spec = pol["spec"]
            types = spec.get("policyTypes") or ["Ingress"] + (["Egress"] if spec.get("egress") else [])
            if pol["metadata"]["namespace"] == pod["metadata"]["namespace"] and direction in types \
                    and _sel(spec["podSelector"], pod["metadata"]["labels"]):
                selecting.append(pol)
        if not selecting:
            return True
        return any((not rule.get(field) or any(peer_ok(pr, pol["metadata"]["namespace"], peer_pod)
                                               for pr in rule[field])) and port_ok(rule.get("ports"))
                   for pol in selecting for rule in pol["spec"].get(direction.lower()) or [])

    return direction_ok(src, dst, "Egress", "to") and direction_ok(dst, src, "Ingress", "from")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_grouped_engine_equals_naive_evaluators(data):
    namespaces, pods, policies = data
    inv = Inventory()
    for obj in copy.deepcopy(namespaces + pods + policies):
        inv.add(obj)
    model = build_model(inv)
    assert not model.problems, model.problems
    matrix = model.matrix()
    by_name = {p["metadata"]["name"]: p for p in pods}
    for s, src in enumerate(model.endpoints):
        for d, dst in enumerate(model.endpoints):
            ports = matrix.ports(model.class_of[s], model.class_of[d])
            assert ports == pair_ports(model, src, dst), (src.id, dst.id)
            for port, proto in PROBES:
                expected = _naive_allowed(namespaces, policies, by_name[src.name], by_name[dst.name], port, proto)
                assert ports.contains(proto, port) == expected, (src.id, dst.id, port, proto)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(admin_clusters())
def test_grouped_engine_with_admin_tiers_and_pod_ips_equals_pairwise_explainer(objects):
    inv = Inventory()
    for obj in objects:
        inv.add(obj)
    model = build_model(inv)
    assert not model.problems, model.problems
    matrix = model.matrix()
    for s, src in enumerate(model.endpoints):
        for d, dst in enumerate(model.endpoints):
            ports = matrix.ports(model.class_of[s], model.class_of[d])
            assert ports == pair_ports(model, src, dst), (src.id, dst.id)
