"""flows.yaml parsing, two-way verification, and the scan check net.flows-match-declared."""

from __future__ import annotations

import pathlib

import pytest
from netpol_helpers import inventory

from nis2kube.checks.registry import CheckContext, InputError, ScanContext, all_checks
from nis2kube.config import config_from_dict
from nis2kube.findings import Severity, Status
from nis2kube.inventory import from_paths
from nis2kube.netpol import build_model
from nis2kube.netpol.flows import FlowSpecError, load_flows, parse_flows, verify

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "factory-hall"


def deployment(name: str, ports: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: main, image: registry.example/{name}:1.0, ports: {ports}}}]}}
"""


SHOP = "\n---\n".join([
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {zone: enterprise}}",
    deployment("web", "[{name: http, containerPort: 8080}]"),
    deployment("api", "[{name: https, containerPort: 8443}]"),
    deployment("db", "[{name: postgres, containerPort: 5432}]"),
    deployment("cache", "[{name: redis, containerPort: 6379}]"),
    """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}""",
    """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{ipBlock: {cidr: 0.0.0.0/0}}]
    ports: [{port: http}]
  egress:
  - to: [{podSelector: {matchLabels: {app: api}}}]
    ports: [{port: https}]
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: 5432}]""",
    """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: https}]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}, {podSelector: {matchLabels: {app: cache}}}]
    ports: [{port: 5432}, {port: 6379}]
  - to: [{ipBlock: {cidr: 203.0.113.0/24}}]
    ports: [{port: 443}]""",
    """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {}}]
    ports: [{port: postgres}]""",
])

FLOWS = """
apiVersion: nis2kube.io/v1alpha1
kind: FlowSpec
zones:
  web: {namespace: shop, podSelector: {matchLabels: {app: web}}}
  api: {namespace: shop, podSelector: {matchLabels: {app: api}}}
  db: {namespace: shop, podSelector: {matchLabels: {app: db}}}
  cache: {namespaceSelector: {matchLabels: {zone: enterprise}}, podSelector: {matchLabels: {app: cache}}}
  internet: {external: 0.0.0.0/0}
  payments: {external: [203.0.113.0/24]}
flows:
  - {from: internet, to: web, ports: ["http"]}
  - {from: web, to: api, ports: ["8443/TCP"]}
  - {from: api, to: db, ports: ["5432/TCP"]}
  - {from: api, to: cache, ports: ["redis"], description: session cache}
  - {from: api, to: payments, ports: ["443/TCP"]}
"""


def spec_of(text: str = FLOWS):
    import yaml

    return parse_flows(yaml.safe_load(text), "flows.yaml")


def test_verify_reports_exactly_the_excess_and_the_blocked_flows():
    result = verify(build_model(inventory(SHOP)), spec_of())
    assert [g.describe() for g in result.excess] == ["shop/web -> shop/db on 5432/TCP"]
    assert [g.describe() for g in result.blocked] == [
        "shop/api -> shop/cache on 6379/TCP (declared flow api -> cache (redis/TCP))"]
    assert result.blocked[0].flow.description == "session cache"
    assert not result.ok and not result.unverifiable and not result.warnings


def test_declaring_the_excess_and_opening_the_blocked_flow_verifies_clean():
    cache_policy = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cache, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cache}}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}], ports: [{port: redis}]}]"""
    flows = FLOWS + "  - {from: web, to: db, ports: [\"5432/TCP\"]}\n"
    result = verify(build_model(inventory(SHOP + cache_policy)), spec_of(flows))
    assert result.ok, result.to_dict()


def test_external_flows_are_compared_per_address_and_port():
    flows = FLOWS.replace("internet: {external: 0.0.0.0/0}", "internet: {external: 198.51.100.0/24}")
    result = verify(build_model(inventory(SHOP)), spec_of(flows))
    external = [g for g in result.excess if g.addresses is not None]
    assert len(external) == 1
    gap = external[0]
    assert gap.external_side == "source" and [e.id for e in gap.destinations] == ["shop/web"]
    assert gap.ports.describe() == "8080/TCP"
    assert gap.addresses.cidrs()[0] == "0.0.0.0/1"  # everything but 198.51.100.0/24
    assert "198.51.100.0/24" not in gap.addresses.cidrs()


def test_declared_external_flow_that_is_denied_is_blocked():
    flows = FLOWS.replace('ports: ["443/TCP"]', 'ports: ["443/TCP", "8443/TCP"]')
    result = verify(build_model(inventory(SHOP)), spec_of(flows))
    blocked = [g for g in result.blocked if g.addresses is not None]
    assert len(blocked) == 1 and blocked[0].ports.describe() == "8443/TCP"
    assert blocked[0].addresses.cidrs() == ["203.0.113.0/24"]


KUBE_DNS = """
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec: {containers: [{name: coredns, image: registry.k8s.io/coredns/coredns:v1.11.1}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns, namespace: kube-system}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 53, protocol: UDP}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns-out, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
    ports: [{port: 53, protocol: UDP}]
"""


@pytest.mark.parametrize("dns", [True, False])
def test_dns_to_kube_dns_is_implicitly_declared(dns):
    flows = FLOWS.replace("kind: FlowSpec", f"kind: FlowSpec\nimplicit: {{dns: {str(dns).lower()}}}")
    result = verify(build_model(inventory(SHOP + KUBE_DNS)), spec_of(flows))
    dns_gaps = [g.describe() for g in result.excess if "coredns" in g.describe()]
    assert dns_gaps == ([] if dns else ["shop/db -> kube-system/coredns on 53/UDP"])


def test_host_network_and_unmodelled_kinds_are_unverifiable():
    extra = """
---
apiVersion: v1
kind: Pod
metadata: {name: plc-bridge, namespace: shop, labels: {app: api}}
spec: {hostNetwork: true, containers: [{name: c, image: i}]}
---
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: calico-extra, namespace: other}
spec: {selector: all()}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: x, namespace: other}
spec:
  selector: {matchLabels: {app: x}}
  template: {metadata: {labels: {app: x}}, spec: {containers: [{name: c, image: i}]}}
"""
    result = verify(build_model(inventory(SHOP + extra)), spec_of())
    assert any(n.startswith("shop/plc-bridge uses hostNetwork") and "api -> db" in n for n in result.unverifiable)
    assert "namespace other: not modelled: NetworkPolicy other/calico-extra" in result.unverifiable
    assert not any("other/x" in g.describe() for g in result.excess + result.blocked)


@pytest.mark.parametrize(("text", "message"), [
    ("[]", "the top level must be a mapping"),
    ("kind: Other", "kind must be FlowSpec"),
    ("zones: {a: {namespace: x, namespaceSelector: {}}}", "zones.a: give exactly one of namespace or"),
    ("zones: {a: {namespace: x, podSelektor: {}}}", "unknown field(s) podSelektor"),
    ("zones: {a: {external: not-a-cidr}}", "zones.a.external: invalid CIDR"),
    ("zones: {a: {namespace: x}}\nflows: [{from: a, to: b}]", "flows[0].to: 'b' is not a zone"),
    ("zones: {a: {namespace: x}}\nflows: [{from: a, to: a, ports: ['70000/TCP']}]", "flows[0].ports: port '70000/TCP'"),
    ("zones: {a: {namespace: x}}\nflows: [{from: a, to: a, ports: ['80/ICMP']}]", "unknown protocol"),
    ("zones: {a: {external: 10.0.0.0/8}, b: {external: 0.0.0.0/0}}\nflows: [{from: a, to: b}]",
     "between two external zones"),
    ("implicit: {dns: maybe}", "implicit.dns must be true or false"),
])
def test_flow_spec_errors_name_the_file_and_field(text, message):
    import yaml

    with pytest.raises(FlowSpecError, match=r"^flows\.yaml: ") as exc:
        parse_flows(yaml.safe_load(text), "flows.yaml")
    assert message in str(exc.value)


def test_load_flows_rejects_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(FlowSpecError, match="cannot read"):
        load_flows(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "flows.yaml"
    bad.write_text("zones: [unclosed\n")
    with pytest.raises(FlowSpecError, match=r"flows.yaml: invalid YAML"):
        load_flows(str(bad))


def test_factory_hall_flows_verify_against_the_example():
    model = build_model(from_paths([str(EXAMPLE)]))
    result = verify(model, load_flows(str(EXAMPLE / "flows.yaml")))
    assert not result.blocked  # every declared flow the policies can express is open
    excess = [g.describe() for g in result.excess]
    # mes allows all ingress (podSelector {} + ingress [{}]): the frontend reaches the API on every port
    assert any(e.startswith("mes/mes-frontend -> mes/mes-api on ") and "8444-65535/TCP" in e for e in excess)
    assert not any(e.startswith("ot-sensors/") for e in excess)  # the field zone is tight
    assert any(n.startswith("scada/opcua-gateway uses hostNetwork") for n in result.unverifiable)


def _run(inv, config):
    spec = all_checks()["net.flows-match-declared"]
    return list(spec.func(CheckContext(ScanContext(inv, config, {}), spec)))


def test_check_is_not_assessed_without_a_flows_file():
    findings = _run(inventory(SHOP), config_from_dict({}))
    assert [f.status for f in findings] == [Status.NOT_ASSESSED]
    assert "no `flows:` file" in findings[0].message


def test_check_fails_excess_and_blocked_and_passes_the_rest(tmp_path):
    (tmp_path / "flows.yaml").write_text(FLOWS)
    config = config_from_dict({"flows": "flows.yaml"}, str(tmp_path / "nis2kube.yaml"))
    findings = {(f.resource.name, f.status): f for f in _run(inventory(SHOP), config)}
    web = findings[("web", Status.FAIL)]
    assert "shop/web -> shop/db on 5432/TCP" in web.message and web.severity == Severity.HIGH
    assert web.measures == ("art21.2.e", "ir2690.6.8")
    cache = findings[("cache", Status.FAIL)]
    assert "declared flows are blocked" in cache.message and cache.severity == Severity.MEDIUM
    assert ("api", Status.PASS) in findings and ("db", Status.PASS) in findings


def test_check_turns_a_broken_flows_file_into_an_input_error(tmp_path):
    (tmp_path / "flows.yaml").write_text("flows: [{from: nowhere, to: nowhere}]\n")
    config = config_from_dict({"flows": str(tmp_path / "flows.yaml")})
    with pytest.raises(InputError, match=r"flows\.yaml: flows\[0\]\.from"):
        _run(inventory(SHOP), config)
