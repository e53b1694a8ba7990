"""NetworkPolicy v1 semantics as reachability truth tables (namespaces x, y, z; pods a, b, c)."""

from __future__ import annotations

import pytest
from netpol_helpers import ALL_ALLOWED, cluster, inventory, pod_yaml, table, truth

from nis2kube.netpol import build_model
from nis2kube.netpol.ipsets import IPSet


def policy(ns: str, name: str, spec: str) -> str:
    return f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: \"{ns}\"}}\n" \
           f"spec:\n{spec}\n"


DENY_ALL_INGRESS_Y = policy("y", "deny-all", "  podSelector: {}\n  policyTypes: [Ingress]")


def test_no_policies_allow_everything():
    assert truth(cluster(), 80) == table(ALL_ALLOWED)


def test_deny_all_ingress_isolates_every_pod_of_the_namespace():
    expected = """
        x   y   z
x/a    ... XXX ...
x/b    ... XXX ...
x/c    ... XXX ...
y/a    ... XXX ...
y/b    ... XXX ...
y/c    ... XXX ...
z/a    ... XXX ...
z/b    ... XXX ...
z/c    ... XXX ...
"""
    assert truth(cluster(DENY_ALL_INGRESS_Y), 80) == table(expected)


def test_allow_from_same_namespace():
    spec = "  podSelector: {}\n  ingress:\n  - from: [{podSelector: {}}]"
    expected = """
        x   y   z
x/a    ... XXX ...
x/b    ... XXX ...
x/c    ... XXX ...
y/a    ... ... ...
y/b    ... ... ...
y/c    ... ... ...
z/a    ... XXX ...
z/b    ... XXX ...
z/c    ... XXX ...
"""
    assert truth(cluster(policy("y", "same-ns", spec)), 80) == table(expected)


def test_namespace_and_pod_selector_in_one_peer_are_anded():
    spec = """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: x}}
      podSelector: {matchLabels: {pod: b}}"""
    expected = """
        x   y   z
x/a    ... X.. ...
x/b    ... ... ...
x/c    ... X.. ...
y/a    ... X.. ...
y/b    ... X.. ...
y/c    ... X.. ...
z/a    ... X.. ...
z/b    ... X.. ...
z/c    ... X.. ...
"""
    assert truth(cluster(policy("y", "and", spec)), 80) == table(expected)


def test_separate_peers_are_ored_and_pod_selector_alone_means_own_namespace():
    spec = """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: x}}
    - podSelector: {matchLabels: {pod: b}}"""
    expected = """
        x   y   z
x/a    ... ... ...
x/b    ... ... ...
x/c    ... ... ...
y/a    ... X.. ...
y/b    ... ... ...
y/c    ... X.. ...
z/a    ... X.. ...
z/b    ... X.. ...
z/c    ... X.. ...
"""
    assert truth(cluster(policy("y", "or", spec)), 80) == table(expected)


def test_namespace_selector_on_metadata_name_label_is_always_present():
    spec = """  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "z"}}}]"""
    model = cluster(policy("y", "from-z", spec))
    rows = truth(model, 80).splitlines()
    assert rows[0] == "x/a ... XXX ..."
    assert rows[6] == "z/a ... ... ..."


Y_COLUMN_DENIED = """
        x   y   z
x/a    ... XXX ...
x/b    ... XXX ...
x/c    ... XXX ...
y/a    ... XXX ...
y/b    ... XXX ...
y/c    ... XXX ...
z/a    ... XXX ...
z/b    ... XXX ...
z/c    ... XXX ...
"""


@pytest.mark.parametrize(("ports", "allowed", "denied"), [
    ("[{port: 80}]", [(80, "TCP")], [(81, "TCP"), (80, "UDP")]),
    ("[{port: serve-81-tcp}]", [(81, "TCP")], [(80, "TCP")]),
    ("[{port: 80, endPort: 81}]", [(80, "TCP"), (81, "TCP")], [(82, "TCP"), (79, "TCP")]),
    ("[{port: 53, protocol: UDP}]", [(53, "UDP")], [(53, "TCP")]),
    ("[{protocol: UDP}]", [(53, "UDP"), (9999, "UDP")], [(80, "TCP")]),
    ("[{port: dns, protocol: UDP}]", [(53, "UDP")], [(53, "TCP")]),
    ("[{port: dns}]", [], [(53, "TCP"), (53, "UDP")]),  # named port on TCP; the pod's `dns` is UDP
    ("[{port: no-such-port}]", [], [(80, "TCP"), (81, "TCP")]),
    ("[]", [(80, "TCP"), (81, "TCP"), (53, "UDP")], []),
])
def test_ports_named_ports_end_port_and_protocols(ports, allowed, denied):
    model = cluster(policy("y", "ports", f"  podSelector: {{}}\n  ingress:\n  - ports: {ports}"))
    for port, proto in allowed:
        assert truth(model, port, proto) == table(ALL_ALLOWED), (port, proto)
    for port, proto in denied:
        assert truth(model, port, proto) == table(Y_COLUMN_DENIED), (port, proto)


def test_egress_and_ingress_must_both_allow():
    egress = policy("x", "to-y", """  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {ns: "y"}}}]""")
    ingress = policy("y", "a-from-xa", """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]""")
    expected = """
        x   y   z
x/a    XXX ... XXX
x/b    XXX X.. XXX
x/c    XXX X.. XXX
y/a    ... X.. ...
y/b    ... X.. ...
y/c    ... X.. ...
z/a    ... X.. ...
z/b    ... X.. ...
z/c    ... X.. ...
"""
    assert truth(cluster(egress + "---\n" + ingress), 80) == table(expected)


def test_policies_are_additive_per_port():
    p1 = policy("y", "from-b-80", """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: 80}]""")
    p2 = policy("y", "from-z-81", """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: z}}}]
    ports: [{port: 81}]""")
    model = cluster(p1 + "---\n" + p2)
    port80 = """
        x   y   z
x/a    ... X.. ...
x/b    ... X.. ...
x/c    ... X.. ...
y/a    ... X.. ...
y/b    ... ... ...
y/c    ... X.. ...
z/a    ... X.. ...
z/b    ... X.. ...
z/c    ... X.. ...
"""
    port81 = """
        x   y   z
x/a    ... X.. ...
x/b    ... X.. ...
x/c    ... X.. ...
y/a    ... X.. ...
y/b    ... X.. ...
y/c    ... X.. ...
z/a    ... ... ...
z/b    ... ... ...
z/c    ... ... ...
"""
    assert truth(model, 80) == table(port80)
    assert truth(model, 81) == table(port81)


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist():
    spec = "  podSelector: {}\n  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: 'y'}}}]"
    expected = """
        x   y   z
x/a    XXX ... XXX
x/b    XXX ... XXX
x/c    XXX ... XXX
y/a    XXX ... ...
y/b    XXX ... ...
y/c    XXX ... ...
z/a    XXX ... ...
z/b    XXX ... ...
z/c    XXX ... ...
"""
    assert truth(cluster(policy("x", "defaulted", spec)), 80) == table(expected)


def test_empty_egress_list_without_policy_types_does_not_isolate_egress():
    spec = "  podSelector: {}\n  ingress: [{}]\n  egress: []"
    assert truth(cluster(policy("x", "ingress-only", spec)), 80) == table(ALL_ALLOWED)


def test_egress_policy_type_without_rules_denies_all_egress():
    model = cluster(policy("x", "deny-egress", "  podSelector: {}\n  policyTypes: [Egress]"))
    rows = truth(model, 80).splitlines()
    assert rows[:3] == ["x/a XXX XXX XXX", "x/b XXX XXX XXX", "x/c XXX XXX XXX"]
    assert rows[3:] == table(ALL_ALLOWED).splitlines()[3:]
    answer = model.can_reach("x/a", "external:8.8.8.8/32", 443)
    assert answer.verdict == "denied"
    assert "isolated for egress by x/deny-egress" in answer.reasons[0]


def test_ip_block_with_except_applies_to_external_addresses_only():
    spec = """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
    ports: [{port: 80}]"""
    model = cluster(policy("y", "from-10", spec))
    assert model.can_reach("external:10.2.3.4", "y/a", 80).verdict == "allowed"
    assert model.can_reach("external:10.1.2.3", "y/a", 80).verdict == "denied"
    assert model.can_reach("external:10.2.3.4", "y/a", 81).verdict == "denied"
    partial = model.can_reach("external:10.0.0.0/8", "y/a", 80)
    assert partial.verdict == "partial"
    assert partial.addresses == IPSet.of(["10.0.0.0/8"], ["10.1.0.0/16"])
    assert model.can_reach("external:192.168.0.1", "y/a", 80).verdict == "denied"
    assert model.can_reach("external:2001:db8::1", "y/a", 80).verdict == "denied"
    # these pods have no known IP, so no ipBlock matches them: y/a is closed to every pod
    assert truth(model, 80).splitlines()[0] == "x/a ... X.. ..."


def test_egress_ip_block_and_named_ports_towards_external():
    spec = """  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]
    ports: [{port: 443}, {port: serve-80-tcp}]"""
    model = cluster(policy("x", "web-out", spec))
    assert model.can_reach("x/a", "external:1.1.1.1", 443).verdict == "allowed"
    assert model.can_reach("x/a", "external:169.254.169.254", 443).verdict == "denied"
    # a named port resolves against the destination; an external address has none
    assert model.can_reach("x/a", "external:1.1.1.1", 80).verdict == "denied"
    # ...while towards pods the ipBlock matches nothing
    assert model.can_reach("x/a", "y/b", 443).verdict == "denied"


def test_host_network_pods_are_reported_not_judged():
    host = """apiVersion: v1
kind: Pod
metadata: {name: h, namespace: "y", labels: {pod: a}}
spec:
  hostNetwork: true
  containers: [{name: c, image: agnhost, ports: [{name: serve-80-tcp, containerPort: 80}]}]"""
    model = cluster(DENY_ALL_INGRESS_Y, extra=host)
    answer = model.can_reach("x/a", "y/h", 80)
    assert answer.verdict == "host-network"
    assert "hostNetwork" in answer.reasons[0]
    matrix = model.matrix()
    ids = {e.id: i for i, e in enumerate(model.endpoints)}
    assert matrix.cell(ids["x/a"], ids["y/h"]).status == "host-network"
    assert matrix.cell(ids["y/h"], ids["x/a"]).symbol == "H"
    # the hostNetwork pod shares pod=a but is not one of y/a's peers either
    assert matrix.cell(ids["x/a"], ids["y/a"]).status == "denied"


def test_unmodelled_policy_kinds_make_affected_answers_explicit():
    cilium = """apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7, namespace: "y"}
spec: {endpointSelector: {}}"""
    model = cluster(extra=cilium)
    answer = model.can_reach("x/a", "y/b", 80)
    assert answer.verdict == "not-modelled"
    assert "CiliumNetworkPolicy y/l7" in answer.reasons[0]
    assert model.can_reach("x/a", "z/b", 80).verdict == "allowed"
    ids = {e.id: i for i, e in enumerate(model.endpoints)}
    assert model.matrix().cell(ids["y/a"], ids["z/a"]).symbol == "?"
    cnp = """apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: cluster-wide}
spec: {tier: Admin, priority: 10, subject: {namespaces: {}}}"""
    assert cluster(extra=cnp).can_reach("x/a", "z/b", 80).verdict == "not-modelled"
    anp_to_networks = """apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: no-internet}
spec:
  priority: 10
  subject: {namespaces: {}}
  egress: [{name: deny, action: Deny, to: [{networks: [0.0.0.0/0]}]}]"""
    assert cluster(extra=anp_to_networks).can_reach("x/a", "z/b", 80).verdict == "not-modelled"


def test_invalid_policy_is_reported_and_not_applied():
    bad = policy("y", "bad", """  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]""")
    model = build_model(inventory(pod_yaml("y", "a") + "---\n" + bad))
    assert len(model.problems) == 1 and "ipBlock cannot be combined" in model.problems[0]
    assert model.policies == []


def test_policy_without_pod_selector_isolates_every_pod_of_its_namespace():
    """spec.podSelector is a non-pointer LabelSelector: left out, it decodes to {} as the API server stores it."""
    model = cluster(policy("y", "deny-all-ingress", "  policyTypes: [Ingress]"))
    assert model.problems == []
    assert model.can_reach("x/a", "y/b", 80).verdict == "denied"
    assert model.can_reach("y/a", "x/b", 80).verdict == "allowed"


def test_explain_names_the_allowing_rule_and_the_isolating_policies():
    spec = """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: serve-80-tcp}]"""
    model = cluster(policy("y", "a-from-b", spec))
    ok = model.can_reach("y/b", "y/a", "serve-80-tcp")
    assert ok.verdict == "allowed"
    assert "y/a-from-b ingress[0] allows 80/TCP" in ok.reasons
    no = model.can_reach("y/c", "y/a", 80)
    assert no.verdict == "denied"
    assert any("isolated for ingress by y/a-from-b; no ingress rule" in r for r in no.reasons)
    ports = model.can_reach("y/b", "y/a")
    assert ports.verdict == "allowed" and ports.ports.describe() == "80/TCP"


def test_missing_namespace_objects_are_reported_when_selectors_need_their_labels():
    spec = """  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: ops}}}]"""
    model = build_model(inventory(pod_yaml("x", "a") + "---\n" + pod_yaml("w", "b") + "---\n" + policy("x", "t", spec)))
    assert len(model.problems) == 1
    assert "namespaces w, x have no Namespace object" in model.problems[0] and "team" in model.problems[0]
    same = policy("x", "t", "  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {}}]")
    assert build_model(inventory(pod_yaml("x", "a") + "---\n" + same)).problems == []


def test_null_namespace_selector_is_absent_not_empty():
    """`namespaceSelector: null` is a nil pointer in the API: the peer keeps the policy's own namespace."""
    spec = """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
      namespaceSelector: null"""
    expected = """
        x   y   z
x/a    ... X.. ...
x/b    ... X.. ...
x/c    ... X.. ...
y/a    ... X.. ...
y/b    ... ... ...
y/c    ... X.. ...
z/a    ... X.. ...
z/b    ... X.. ...
z/c    ... X.. ...
"""
    assert truth(cluster(policy("y", "null-ns", spec)), 80) == table(expected)
    only_null = policy("y", "bad", "  podSelector: {}\n  ingress:\n  - from: [{podSelector: null}]")
    model = build_model(inventory(pod_yaml("y", "a") + "---\n" + only_null))
    assert model.policies == [] and "must set podSelector, namespaceSelector or ipBlock" in model.problems[0]


def admin(kind: str, name: str, spec: str) -> str:
    return f"apiVersion: policy.networking.k8s.io/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{spec}\n"


def tiered_policies(pass_priority: int = 10) -> str:
    """ANPs into namespace y (Pass 81 from x, Deny all from x, Allow z/a on a named port), a NetworkPolicy
    isolating y/a (from x on 81), and a BANP denying all ingress into y."""
    docs = [
        admin("AdminNetworkPolicy", "pass-81-from-x", f"""  priority: {pass_priority}
  subject: {{namespaces: {{matchLabels: {{ns: "y"}}}}}}
  ingress:
  - {{name: pass-81, action: Pass, from: [{{namespaces: {{matchLabels: {{ns: x}}}}}}],
     ports: [{{portNumber: {{protocol: TCP, port: 81}}}}]}}"""),
        admin("AdminNetworkPolicy", "deny-from-x", """  priority: 20
  subject: {namespaces: {matchLabels: {ns: "y"}}}
  ingress:
  - {name: deny-x, action: Deny, from: [{namespaces: {matchLabels: {ns: x}}}]}"""),
        admin("AdminNetworkPolicy", "allow-za-http", """  priority: 5
  subject: {pods: {namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {}}}
  ingress:
  - name: allow-za
    action: Allow
    from: [{pods: {namespaceSelector: {matchLabels: {ns: z}}, podSelector: {matchLabels: {pod: a}}}}]
    ports: [{namedPort: serve-80-tcp}]"""),
        policy("y", "a-from-x-81", """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: x}}}]
    ports: [{port: 81}]"""),
        admin("BaselineAdminNetworkPolicy", "default", """  subject: {namespaces: {matchLabels: {ns: "y"}}}
  ingress:
  - {name: deny-all, action: Deny, from: [{namespaces: {}}]}"""),
    ]
    return "---\n".join(docs)


def test_admin_tiers_anp_by_priority_then_network_policy_then_banp():
    model = cluster(tiered_policies())
    port80 = """
        x   y   z
x/a    ... XXX ...
x/b    ... XXX ...
x/c    ... XXX ...
y/a    ... XXX ...
y/b    ... XXX ...
y/c    ... XXX ...
z/a    ... ... ...
z/b    ... XXX ...
z/c    ... XXX ...
"""
    port81 = """
        x   y   z
x/a    ... .XX ...
x/b    ... .XX ...
x/c    ... .XX ...
y/a    ... XXX ...
y/b    ... XXX ...
y/c    ... XXX ...
z/a    ... XXX ...
z/b    ... XXX ...
z/c    ... XXX ...
"""
    assert truth(model, 80) == table(port80)
    assert truth(model, 81) == table(port81)
    answer = model.can_reach("x/a", "y/a", 81)
    assert answer.verdict == "allowed"
    assert "ingress: AdminNetworkPolicy pass-81-from-x 'pass-81': Pass 81/TCP" in answer.reasons
    # the Deny at priority 20 goes first once Pass has a larger priority number
    assert model.can_reach("x/a", "y/a", 81).verdict == "allowed"
    assert cluster(tiered_policies(pass_priority=30)).can_reach("x/a", "y/a", 81).verdict == "denied"


def test_admin_egress_allow_overrides_network_policy_and_deny_overrides_its_allow():
    deny_egress = policy("x", "deny-egress", "  podSelector: {}\n  policyTypes: [Egress]")
    allow_dns = admin("AdminNetworkPolicy", "dns", """  priority: 1
  subject: {namespaces: {}}
  egress:
  - {name: dns, action: Allow, to: [{pods: {namespaceSelector: {}, podSelector: {}}}],
     ports: [{portNumber: {protocol: UDP, port: 53}}, {portRange: {protocol: TCP, start: 80, end: 81}}]}
  - {name: no-z, action: Deny, to: [{namespaces: {matchLabels: {ns: z}}}]}""")
    model = cluster(deny_egress + "---\n" + allow_dns)
    assert model.can_reach("x/a", "y/b", "53/UDP").verdict == "allowed"
    assert model.can_reach("x/a", "y/b", 81).verdict == "allowed"
    assert model.can_reach("x/a", "z/b", 81).verdict == "allowed"  # the earlier Allow rule wins
    assert model.can_reach("y/a", "z/b", "53/TCP").verdict == "denied"  # no NetworkPolicy needed to deny
    assert model.can_reach("y/a", "y/b", "53/TCP").verdict == "allowed"
    assert model.can_reach("x/a", "external:8.8.8.8", 443).verdict == "denied"  # ANP pods peers are not IPs


def test_invalid_admin_policy_is_a_problem_and_not_applied():
    bad = admin("AdminNetworkPolicy", "bad", """  priority: 1
  subject: {namespaces: {}}
  ingress: [{name: r, action: Accept, from: [{namespaces: {}}]}]""")
    model = build_model(inventory(pod_yaml("y", "a") + "---\n" + bad))
    assert model.admin == [] and "action must be one of Allow, Deny, Pass" in model.problems[0]


def test_ip_block_matches_pods_by_their_ip():
    """ipBlock is matched against the pod's IP as against any address (policy-assistant's IPPeerMatcher; the
    upstream e2e suite allows and excepts pods by `podIP/32`): a pod whose status.podIP is known is a peer."""
    def with_ip(ns: str, name: str, ip: str) -> str:
        return pod_yaml(ns, name) + f"status: {{podIP: {ip}}}\n"

    spec = """  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.2.0/24]}}]"""
    text = "\n---\n".join([with_ip("x", "a", "10.0.1.5"), with_ip("x", "b", "10.0.2.7"), pod_yaml("x", "c"),
                           with_ip("y", "a", "10.0.3.9"), policy("y", "from-10", spec)])
    model = build_model(inventory(text))
    assert model.can_reach("x/a", "y/a", 80).verdict == "allowed"
    assert model.can_reach("x/b", "y/a", 80).verdict == "denied"  # in except
    assert model.can_reach("x/c", "y/a", 80).verdict == "denied"  # IP unknown: no ipBlock can match it
    ids = {e.id: i for i, e in enumerate(model.endpoints)}
    assert model.matrix().cell(ids["x/a"], ids["y/a"]).status == "allowed"
    assert model.matrix().cell(ids["x/b"], ids["y/a"]).status == "denied"
    egress = policy("x", "to-10", """  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.0.3.9/32}}], ports: [{port: serve-80-tcp}]}]""")
    model = build_model(inventory(text + "\n---\n" + egress))
    assert model.can_reach("x/a", "y/a", 80).verdict == "allowed"  # named port resolved on the pod behind the IP
    assert model.can_reach("x/a", "y/a", 81).verdict == "denied"


def test_a_controllers_pod_is_judged_as_its_workload_not_by_its_ip():
    """Only a bare Pod is its own workload and has an IP: a Deployment's pod answers as the Deployment does
    (its IP changes on every rollout), whether it is named by the workload or by the pod."""
    owned = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: x, uid: d1}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: registry.k8s.io/pause:3.9}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-7d9f8b6c5d, namespace: x, uid: r1,
           ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: d1, controller: true}]}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: registry.k8s.io/pause:3.9}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-7d9f8b6c5d-abcde, namespace: x, labels: {app: web},
           ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d9f8b6c5d, uid: r1,
                              controller: true}]}
spec: {containers: [{name: c, image: registry.k8s.io/pause:3.9}]}
status: {podIP: 10.0.1.5}
"""
    bare = pod_yaml("x", "solo") + "status: {podIP: 10.0.1.6}\n"
    db = policy("dbns", "db", "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16}}]}]")
    model = build_model(inventory("---\n".join([owned, bare, pod_yaml("dbns", "db"), db])))
    assert model.can_reach("x/web", "dbns/db", 80).verdict == "denied"
    assert model.can_reach("x/web-7d9f8b6c5d-abcde", "dbns/db", 80).verdict == "denied"
    assert model.can_reach("x/solo", "dbns/db", 80).verdict == "allowed"
    assert model.pods[("x", "web-7d9f8b6c5d-abcde")].ip is None


def test_pod_ips_split_classes_only_where_an_ip_block_tells_them_apart():
    def with_ip(name: str, ip: str) -> str:
        return pod_yaml("x", name, {"app": "w"}) + f"status: {{podIP: {ip}}}\n"

    pods = "---\n".join([with_ip("a", "10.0.1.5"), with_ip("b", "10.0.2.7"), with_ip("c", "192.168.0.9"),
                         pod_yaml("x", "d", {"app": "w"})])
    assert len(build_model(inventory(pods)).classes) == 1  # no ipBlock: IPs make no difference
    block = policy("y", "from-10-1", "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.1.0/24}}]}]")
    other = policy("y", "from-10", "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]")
    model = build_model(inventory("---\n".join([pods, block, other])))
    groups = sorted(sorted(model.endpoints[i].name for i in m) for m in model.members)
    assert groups == [["a"], ["b"], ["c", "d"]]  # in both blocks; in 10/8 only; in neither


def test_port_and_protocol_validation_is_shared_by_network_and_admin_policies():
    bad_np = policy("y", "bad", "  podSelector: {}\n  ingress: [{ports: [{port: 90, endPort: 80, protocol: TCP}]}]")
    bad_proto = policy("y", "proto", "  podSelector: {}\n  ingress: [{ports: [{port: 80, protocol: ICMP}]}]")
    bad_anp = admin("AdminNetworkPolicy", "range", """  priority: 1
  subject: {namespaces: {}}
  ingress: [{name: r, action: Deny, from: [{namespaces: {}}], ports: [{portRange: {start: 0, end: 80}}]}]""")
    bad_sel = admin("BaselineAdminNetworkPolicy", "default", """  subject: {namespaces: {matchLabels: {"a b": x}}}
  ingress: [{name: r, action: Deny, from: [{namespaces: {}}]}]""")
    model = build_model(inventory("---\n".join([pod_yaml("y", "a"), bad_np, bad_proto, bad_anp, bad_sel])))
    problems = "\n".join(model.problems)
    assert "ports[0]: the range ends (80) before it starts (90)" in problems
    assert "protocol 'ICMP' is not TCP, UDP or SCTP" in problems
    assert "ports[0].portRange: port 0 is not a number between 1 and 65535" in problems
    assert "spec.subject.namespaces" in problems
    assert model.policies == [] and model.admin == []
