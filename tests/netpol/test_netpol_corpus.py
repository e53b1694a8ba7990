"""Our verdicts against policy-assistant's (cyclonus's) expected output on its own example policies.

Corpus: ../shared/corpora/network-policy-api/cmd/policy-assistant (kubernetes-sigs/network-policy-api).
`analyze-probe.txt` was produced from `simple-example/` and `probe.json`: 9 pods x/y/z a/b/c, probes on
80, 81 and 82/TCP. The first two blocks (80 and 81, both served by every pod) are policy verdicts; the third
(82, served by no container) shows N/? for "no server", which is not a policy verdict, so it is not compared.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from netpol_helpers import inventory

from nis2kube.inventory import from_paths
from nis2kube.netpol import build_model
from nis2kube.netpol.explain import egress_side, ingress_side
from nis2kube.netpol.model import Model, endpoint_of

ROOT = pathlib.Path(__file__).resolve().parents[3] / "shared" / "corpora" / "network-policy-api" / "cmd" / \
    "policy-assistant"
POLICIES = ROOT / "test" / "example-policies"

pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason="../shared corpora are not beside the project")


def probe_objects() -> list[dict]:
    """probe.json's namespaces and pods as Kubernetes objects."""
    probe = json.loads((ROOT / "examples" / "probe.json").read_text())
    out = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
           for ns, labels in probe["Resources"]["Namespaces"].items()]
    for pod in probe["Resources"]["Pods"]:
        containers = [{"name": c["Name"], "image": "agnhost", "ports": [
            {"name": c["PortName"], "containerPort": c["Port"], "protocol": c["Protocol"].upper()}]}
            for c in pod["Containers"]]
        out.append({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod["Name"], "namespace": pod["Namespace"], "labels": pod["Labels"]},
                    "spec": {"containers": containers}, "status": {"podIP": pod["IP"]}})
    return out


def simple_example_model() -> Model:
    inv = from_paths([str(POLICIES / "networkpolicies" / "simple-example")])
    assert not inv.problems
    for obj in probe_objects():
        inv.add(obj)
    model = build_model(inv)
    assert not model.problems and len(model.policies) == 7
    return model


def expected_tables() -> list[dict[str, dict[tuple[str, str], bool]]]:
    """Blocks of {Ingress|Egress|Combined: {(from, to): allowed}} in file order."""
    text = (ROOT / "examples" / "archived" / "cyclonus-output" / "analyze-probe.txt").read_text()
    blocks, current, columns, name = [], {}, [], None
    for line in text.splitlines():
        header = re.match(r"^(Ingress|Egress|Combined):$", line)
        if header:
            name = header.group(1)
            if name == "Ingress" and current:
                blocks.append(current)
                current = {}
            current[name] = {}
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells and cells[0] == "":
            columns = [c.lower() for c in cells[1:]]
        elif cells and name:
            for col, mark in zip(columns, cells[1:], strict=True):
                if mark in (".", "X"):
                    current[name][(cells[0], col)] = mark == "."
    blocks.append(current)
    return blocks


@pytest.mark.parametrize(("block", "port"), [(0, 80), (1, 81)])
def test_probe_tables_match_policy_assistant(block, port):
    model = simple_example_model()
    expected = expected_tables()[block]
    assert all(len(expected[t]) == 81 for t in ("Ingress", "Egress", "Combined"))
    by_id = {e.id: e for e in model.endpoints}
    matrix = model.matrix()
    for (src, dst), allowed in expected["Combined"].items():
        s, d = by_id[src], by_id[dst]
        i_ok = ingress_side(model, s, d).ports.contains("TCP", port)
        e_ok = egress_side(model, s, d).ports.contains("TCP", port)
        assert i_ok == expected["Ingress"][(src, dst)], ("ingress", src, dst)
        assert e_ok == expected["Egress"][(src, dst)], ("egress", src, dst)
        ports = matrix.ports(model.class_of[model.endpoints.index(s)], model.class_of[model.endpoints.index(d)])
        assert ports.contains("TCP", port) == allowed, ("combined", src, dst)
        assert model.can_reach(src, dst, port).verdict == ("allowed" if allowed else "denied")


def test_query_traffic_verdicts_match_policy_assistant():
    """The four traffic cases of examples/traffic.json, expected FALSE, TRUE, TRUE, FALSE in analyze-query-traffic."""
    model = simple_example_model()

    def pod(name: str, labels: dict):
        spec = {"containers": [{"name": "c", "ports": [{"name": "serve-80-tcp", "containerPort": 80}]}]}
        return endpoint_of("y", "Pod", name, labels, spec)

    assert model.can_reach("external:8.8.8.8/32", "y/a", 80).verdict == "denied"
    assert model.can_reach(pod("q", {"pod": "b"}), "external:192.168.1.10/32", 80).verdict == "allowed"
    assert model.can_reach(pod("q", {"pod": "a"}), pod("r", {"pod": "b"}), 80).verdict == "allowed"
    assert model.can_reach(pod("q", {"app": "c"}), pod("r", {"pod": "b"}), 80).verdict == "denied"


def test_port_range_and_upstream_case_policies():
    for folder in ("features", "upstream_test_cases"):
        inv = from_paths([str(POLICIES / "networkpolicies" / folder)])
        for obj in probe_objects():
            inv.add(obj)
        model = build_model(inv)
        assert not model.problems
        # both: x/a may reach y/a on TCP 80(-103) and anything on UDP 53, nothing else
        assert model.can_reach("x/a", "y/a", 80).verdict == "allowed"
        assert model.can_reach("x/a", "y/b", 80).verdict == "denied"
        assert model.can_reach("x/a", "z/c", "53/UDP").verdict == "allowed"
        assert model.can_reach("x/b", "y/b", 80).verdict == "allowed"
        in_range = model.can_reach("x/a", "y/a", "100/TCP").verdict
        assert in_range == ("allowed" if folder == "features" else "denied")
        assert model.can_reach("x/a", "y/a", "104/TCP").verdict == "denied"


def test_every_corpus_policy_file_is_read_and_admin_policies_are_modelled():
    inv = from_paths([str(POLICIES)])
    model = build_model(inv)
    assert not model.problems
    assert len(model.policies) >= 10
    assert not model.unmodelled
    assert {(p.kind, p.name) for p in model.admin} == {("AdminNetworkPolicy", "egress-sctp"),
                                                       ("BaselineAdminNetworkPolicy", "default")}


def test_kubecon_demo_admin_tiers():
    """examples/demos/kubecon-eu-2024: anp1 allows 80 (priority 1), anp2 passes 81 (2) before anp3 denies it (3),
    the NetworkPolicy isolates demo/a, the BANP denies the rest: 80 is open, 81 closed on both pods."""
    demo = ROOT / "examples" / "demos" / "kubecon-eu-2024"
    inv = from_paths([str(demo / "policies")])
    probe = json.loads((demo / "demo-probe.json").read_text())
    for ns, labels in probe["Resources"]["Namespaces"].items():
        inv.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    for pod in probe["Resources"]["Pods"]:
        ports = [{"name": c["PortName"], "containerPort": c["Port"], "protocol": c["Protocol"].upper()}
                 for c in pod["Containers"]]
        inv.add({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": pod["Name"], "namespace": pod["Namespace"], "labels": pod["Labels"]},
                 "spec": {"containers": [{"name": "c", "image": "agnhost", "ports": ports}]}})
    model = build_model(inv)
    assert not model.problems and not model.unmodelled
    for src in ("demo/a", "demo/b"):
        for dst in ("demo/a", "demo/b"):
            assert model.can_reach(src, dst, 80).verdict == "allowed", (src, dst)
            assert model.can_reach(src, dst, 81).verdict == "denied", (src, dst)
            assert model.can_reach(src, dst).ports.describe() == "80/TCP"
    why = model.can_reach("demo/b", "demo/a", 81).reasons
    assert "ingress: AdminNetworkPolicy anp2 'pass-81': Pass 81/TCP" in why
    assert any("isolated for ingress by demo/deny-to-pod-a" in r for r in why)


def test_yaml_list_document_is_expanded():
    text = (POLICIES / "networkpolicies" / "yaml-syntax" / "yaml-list.yaml").read_text()
    model = build_model(inventory(text))
    assert len(model.policies) >= 2 and not model.problems
