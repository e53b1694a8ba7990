"""`nis2kube harden`: generation, determinism, validation, and the re-scan / reachability proof."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml
from typer.testing import CliRunner

from conftest import EXAMPLE, inventory_from_yaml
from nis2kube.cli.main import app
from nis2kube.config import config_from_dict, load_config
from nis2kube.harden import audit
from nis2kube.harden.bundle import BundleError, write_bundle
from nis2kube.harden.context import AREAS, HardenContext, HardenOptions
from nis2kube.harden.generate import build
from nis2kube.harden.validate import Report, Validator, VersionError, resolve_version
from nis2kube.harden.verify import read_bundle, verify
from nis2kube.inventory import from_paths

CRDS = pathlib.Path(__file__).parent / "crds"

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0
          ports: [{name: http, containerPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      serviceAccountName: db
      containers:
        - name: db
          image: docker.io/library/postgres:16
          securityContext: {privileged: true}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: db-reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: db, namespace: shop}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      containers: [{name: coredns, image: registry.k8s.io/coredns/coredns:v1.11.3}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  selector: {k8s-app: kube-dns}
  ports:
    - {name: dns, port: 53, protocol: UDP, targetPort: 53}
    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver-cp1
  namespace: kube-system
  labels: {component: kube-apiserver}
spec:
  hostNetwork: true
  containers:
    - name: kube-apiserver
      image: registry.k8s.io/kube-apiserver:v1.31.4
      command: [kube-apiserver, --advertise-address=10.0.0.5, --audit-log-maxage=60,
                --service-cluster-ip-range=10.96.0.0/12]
"""

FLOWS = """
apiVersion: nis2kube.io/v1alpha1
kind: FlowSpec
zones:
  web: {namespace: shop, podSelector: {matchLabels: {app: web}}}
  db: {namespace: shop, podSelector: {matchLabels: {app: db}}}
  internet: {external: 0.0.0.0/0}
flows:
  - {from: web, to: db, ports: ["5432/TCP"]}
  - {from: internet, to: web, ports: ["http"]}
"""


def _ctx(text: str = CLUSTER, flows: str | None = None, **opts: object) -> HardenContext:
    options = HardenOptions(flows=flows, **opts)  # type: ignore[arg-type]
    return HardenContext(inventory_from_yaml(text), config_from_dict({"approved_registries": ["registry.example"]}),
                         options)


def _objects(bundle, kind: str) -> list[dict]:
    return [o for a in bundle.areas for o in a.objects(applied_only=False) if o["kind"] == kind]


@pytest.fixture
def flows_file(tmp_path: pathlib.Path) -> str:
    path = tmp_path / "flows.yaml"
    path.write_text(FLOWS)
    return str(path)


# ---- admission ---------------------------------------------------------------------------------------------
def test_kyverno_policies_are_audit_with_an_enforce_overlay(tmp_path: pathlib.Path) -> None:
    bundle, report = build(_ctx(only=("admission",)), scan=True)
    assert report.ok, report.errors
    policies = {p["metadata"]["name"]: p for p in _objects(bundle, "ClusterPolicy")}
    assert set(policies) == {"nis2-require-non-root", "nis2-restrict-image-registries",
                             "nis2-require-resource-limits", "nis2-disallow-privileged-host-access"}
    assert all(p["spec"]["validationFailureAction"] == "Audit" for p in policies.values())
    registries = policies["nis2-restrict-image-registries"]["spec"]["rules"][0]
    assert registries["validate"]["pattern"]["spec"]["containers"] == [{"image": "registry.example/*"}]
    assert registries["exclude"]["any"][0]["resources"]["namespaces"] == ["kube-node-lease", "kube-public",
                                                                          "kube-system"]
    write_bundle(bundle, str(tmp_path))
    objects, _ = read_bundle(str(tmp_path))  # overlay applied: the end state of the rollout
    assert {o["spec"]["validationFailureAction"] for o in objects if o["kind"] == "ClusterPolicy"} == {"Enforce"}
    # the README names the workload Enforce mode would reject today (privileged db)
    assert "Deployment/shop/db" in bundle.readme


def test_signature_policy_only_with_a_key(tmp_path: pathlib.Path) -> None:
    key = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    bundle, _ = build(_ctx(only=("admission",), cosign_key=key), scan=False)
    verify_rule = next(p for p in _objects(bundle, "ClusterPolicy")
                       if p["metadata"]["name"] == "nis2-verify-image-signatures")["spec"]["rules"][0]
    entry = verify_rule["verifyImages"][0]
    assert entry["imageReferences"] == ["registry.example/*"]
    assert entry["attestors"][0]["entries"][0]["keys"]["publicKeys"].startswith("-----BEGIN PUBLIC KEY-----")
    bundle, _ = build(_ctx(only=("admission",)), scan=False)
    assert "image signature verification" in bundle.area("admission").skipped[-1]


def test_vap_engine_generates_policy_and_binding_valid_for_1_30() -> None:
    bundle, report = build(_ctx(only=("admission",), engine="vap", kube_version="1.30"), scan=False)
    assert report.ok, report.errors
    bindings = _objects(bundle, "ValidatingAdmissionPolicyBinding")
    assert bindings and all(b["spec"]["validationActions"] == ["Audit", "Warn"] for b in bindings)
    patches = bundle.area("admission").enforce_patches
    assert all(p.ops[0]["value"] == ["Deny"] for p in patches)


def test_vap_does_not_exist_before_1_30() -> None:
    _, report = build(_ctx(only=("admission",), engine="vap", kube_version="1.25"), scan=False)
    assert any("does not exist in Kubernetes 1.25" in e for e in report.errors)


# ---- audit ---------------------------------------------------------------------------------------------------
def test_audit_policy_logs_secrets_at_metadata_and_keeps_longer_retention() -> None:
    from nis2kube.auditpolicy import Level, Request, parse_policy

    policy = parse_policy(audit.audit_policy(), "generated")
    secret_read = Request(user="alice", groups=frozenset({"system:authenticated"}), verb="get",
                          group="", resource="secrets", namespace="shop", name="db")
    assert policy.evaluate(secret_read).level is Level.METADATA
    ctx = _ctx(only=("audit",))
    bundle, _ = build(ctx, scan=False)
    pod = _objects(bundle, "Pod")[0]
    command = pod["spec"]["containers"][0]["command"]
    assert "--audit-log-maxage=60" in command  # a longer setting is kept
    assert "--audit-log-maxbackup=10" in command and "--audit-policy-file=/etc/kubernetes/audit/policy.yaml" in command
    assert command[0] == "kube-apiserver" and command.count("--advertise-address=10.0.0.5") == 1
    assert {v["name"] for v in pod["spec"]["volumes"]} == {"audit-policy", "audit-log"}


def test_patched_apiserver_drops_space_separated_flag_values() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver-x", "namespace": "kube-system"},
           "spec": {"containers": [{"name": "kube-apiserver", "command": [
               "kube-apiserver", "--audit-log-path", "/old.log", "--secure-port=6443"]}]}}
    command = audit.patched_apiserver(pod)["spec"]["containers"][0]["command"]
    assert "/old.log" not in command and "--secure-port=6443" in command


# ---- runtime and alerting ----------------------------------------------------------------------------------
def test_falco_outbound_rule_allows_the_clusters_own_networks() -> None:
    bundle, report = build(_ctx(only=("runtime",), extra_cidrs=("192.168.10.0/24", "bogus")), scan=False)
    assert report.ok
    cm = _objects(bundle, "ConfigMap")[0]
    rules = yaml.safe_load(cm["data"]["nis2kube_rules.yaml"])
    networks = next(r for r in rules if r.get("list") == "nis2_cluster_networks")["items"]
    assert networks == ['"10.96.0.0/12"', '"127.0.0.0/8"', '"192.168.10.0/24"']  # invalid CIDR dropped
    assert {r["rule"] for r in rules if "rule" in r} >= {"NIS2 Shell in container",
                                                          "NIS2 Unexpected outbound connection"}
    values = yaml.safe_load(next(a for a in bundle.area("runtime").artifacts
                                 if a.path.endswith("falcosidekick-values.yaml")).text)
    assert values["config"]["webhook"]["address"].endswith("/webhooks/falco")
    assert values["config"]["slack"]["minimumpriority"] == "warning"
    assert values["config"]["pagerduty"]["minimumpriority"] == "critical"


def test_prometheusrule_validates_against_its_crd() -> None:
    crd = yaml.safe_load((CRDS / "monitoring.coreos.com_prometheusrules.yaml").read_text())
    bundle, report = build(_ctx(only=("alerting",)), crds=[crd], scan=False)
    assert report.ok and any(src.startswith("--crd") for _, src in report.checked)
    rule = copy.deepcopy(_objects(bundle, "PrometheusRule")[0])
    rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    rule["spec"]["groups"][0]["rules"][0]["severity"] = "high"
    bad = Report()
    Validator(None, [crd]).validate(rule, "bad", bad)
    assert any("for" in e and "does not match" in e for e in bad.errors)
    assert any("severity: unknown field" in e for e in bad.errors)


COSIGN_KEY = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
KEYLESS = {"keyless_issuer": "https://token.actions.githubusercontent.com",
           "keyless_subject": "https://github.com/plant/*"}


@pytest.fixture(scope="module")
def kyverno_crd() -> dict:
    """Kyverno's ClusterPolicy CRD (schema from the CRDs catalog, strict: additionalProperties false)."""
    return yaml.safe_load((CRDS / "kyverno.io_clusterpolicies.yaml").read_text())


@pytest.mark.parametrize(("signing", "attestor"), [({"cosign_key": COSIGN_KEY}, "keys"), (KEYLESS, "keyless")],
                         ids=["cosign-key", "keyless"])
def test_example_kyverno_policies_validate_against_the_kyverno_crd(
        tmp_path: pathlib.Path, kyverno_crd: dict, signing: dict, attestor: str) -> None:
    # the whole bundle, so a ClusterPolicy from any generator is covered (netpol only when flows.yaml is there)
    only = AREAS if (EXAMPLE / "flows.yaml").is_file() else tuple(a for a in AREAS if a != "netpol")
    flows = str(EXAMPLE / "flows.yaml") if "netpol" in only else None
    ctx = HardenContext(from_paths([str(EXAMPLE)]), load_config(str(EXAMPLE / "nis2kube.yaml")),
                        HardenOptions(only=only, flows=flows, **signing))
    prometheus = yaml.safe_load((CRDS / "monitoring.coreos.com_prometheusrules.yaml").read_text())
    bundle, report = build(ctx, crds=[kyverno_crd, prometheus], scan=False)
    assert report.ok, report.errors
    assert not report.unchecked, report.unchecked
    policies = _objects(bundle, "ClusterPolicy")
    names = {p["metadata"]["name"] for p in policies}
    assert names == {"nis2-require-non-root", "nis2-restrict-image-registries", "nis2-require-resource-limits",
                     "nis2-disallow-privileged-host-access", "nis2-verify-image-signatures"}
    sources = {display.rpartition(": ClusterPolicy/")[2]: source for display, source in report.checked
               if ": ClusterPolicy/" in display}
    assert sources == dict.fromkeys(names, "--crd clusterpolicies.kyverno.io")
    verify_rule = next(p for p in policies if p["metadata"]["name"] == "nis2-verify-image-signatures")
    entries = verify_rule["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"]
    assert [set(e) for e in entries] == [{attestor}]
    # the end state of the rollout (Enforce overlay applied) is valid too
    write_bundle(bundle, str(tmp_path))
    objects, _ = read_bundle(str(tmp_path))
    enforced = [o for o in objects if o["kind"] == "ClusterPolicy"]
    assert {o["spec"]["validationFailureAction"] for o in enforced} == {"Enforce"}
    after = Report()
    validator = Validator(None, [kyverno_crd])
    for policy in enforced:
        validator.validate(policy, policy["metadata"]["name"], after)
    assert after.ok and len(after.checked) == len(names), after.errors


def test_kyverno_crd_rejects_misspelled_fields_and_bad_enum_values(kyverno_crd: dict) -> None:
    bundle, report = build(_ctx(only=("admission",), cosign_key=COSIGN_KEY), crds=[kyverno_crd], scan=False)
    assert report.ok, report.errors
    policy = next(p for p in _objects(bundle, "ClusterPolicy")
                  if p["metadata"]["name"] == "nis2-verify-image-signatures")
    validator = Validator(None, [kyverno_crd])

    def errors(change) -> list[str]:
        bad = copy.deepcopy(policy)
        change(bad)
        out = Report()
        validator.validate(bad, "bad", out)
        return out.errors

    assert errors(lambda p: None) == []
    typo = errors(lambda p: p["spec"].update(validationFailureActon=p["spec"].pop("validationFailureAction")))
    assert "bad: spec.validationFailureActon: unknown field" in typo
    assert any("'validationFailureActon' was unexpected" in e for e in typo)
    enum = errors(lambda p: p["spec"].update(validationFailureAction="Deny"))
    assert enum == ["bad: spec.validationFailureAction: 'Deny' is not one of ['audit', 'enforce', 'Audit', 'Enforce']"]

    def keys(p: dict) -> dict:
        return p["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"][0]["keys"]

    deep = errors(lambda p: keys(p).update(publicKey=keys(p).pop("publicKeys")))
    assert "bad: spec.rules[0].verifyImages[0].attestors[0].entries[0].keys.publicKey: unknown field" in deep
    assert any("'url' is a required property" in e for e in errors(lambda p: keys(p)["rekor"].pop("url")))


# ---- validation ---------------------------------------------------------------------------------------------
def test_strict_schema_rejects_unknown_fields_and_bad_names() -> None:
    report = Report()
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "Bad_Name", "namespace": "x"}, "spec": {"podSelector": {}, "polcyTypes": []}}
    Validator("1.31").validate(policy, "np", report)
    assert any("DNS-1123" in e for e in report.errors) and any("polcyTypes" in e for e in report.errors)


def test_kube_version_resolution() -> None:
    assert resolve_version("1.31.4") == "1.31.0"
    with pytest.raises(VersionError):
        resolve_version("1.9")
    with pytest.raises(VersionError):
        resolve_version("2.0")


# ---- netpol -------------------------------------------------------------------------------------------------
def test_netpol_default_deny_dns_api_and_flows(flows_file: str) -> None:
    ctx = _ctx(only=("netpol",), flows=flows_file)
    bundle, report = build(ctx, scan=False)
    assert report.ok, report.errors
    by_name = {p["metadata"]["name"]: p for p in _objects(bundle, "NetworkPolicy")}
    assert by_name["nis2kube-default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = by_name["nis2kube-allow-dns-egress"]["spec"]["egress"][0]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert by_name["nis2kube-allow-apiserver-db"]["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.0.0.5/32"}}]
    ingress = by_name["nis2kube-flow-0-web-to-db-ingress"]["spec"]
    assert ingress["podSelector"] == {"matchLabels": {"app": "db"}}
    assert ingress["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert by_name["nis2kube-flow-1-internet-to-web-ingress"]["spec"]["ingress"][0] == {
        "from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": "http"}]}
    assert "nis2kube-flow-1-internet-to-web-egress" not in by_name  # external sources get no egress policy


def test_netpol_proof_is_exact_on_a_synthetic_cluster(tmp_path: pathlib.Path, flows_file: str) -> None:
    ctx = _ctx(only=("netpol",), flows=flows_file)
    bundle, _ = build(ctx)
    write_bundle(bundle, str(tmp_path / "out"))
    objects = list(inventory_from_yaml(CLUSTER).all_objects())
    result = verify(objects, str(tmp_path / "out"), bundle, ctx.config, before=ctx.before, ctx=ctx)
    assert result.netpol.ok, result.netpol.lines()
    assert not result.new_failures


def test_netpol_existing_allow_all_is_listed_for_removal(flows_file: str) -> None:
    allow_all = CLUSTER + """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: [{}]
"""
    bundle, _ = build(_ctx(allow_all, only=("netpol",), flows=flows_file), scan=False)
    assert any("shop/allow-all" in n for n in bundle.area("netpol").notes)


# ---- the whole bundle ---------------------------------------------------------------------------------------
def test_factory_hall_bundle_is_deterministic_valid_and_proven(tmp_path: pathlib.Path) -> None:
    if not (EXAMPLE / "flows.yaml").is_file():
        pytest.skip("examples/factory-hall/flows.yaml is not there")
    runner = CliRunner()
    out1, out2 = tmp_path / "a", tmp_path / "b"
    args = [str(EXAMPLE), "--crd", str(CRDS / "monitoring.coreos.com_prometheusrules.yaml")]
    first = runner.invoke(app, ["harden", *args, "-o", str(out1), "--verify"])
    assert first.exit_code == 0, first.output
    assert "reachability equals the declared flows" in first.output
    assert runner.invoke(app, ["harden", *args, "-o", str(out2)]).exit_code == 0
    again = runner.invoke(app, ["harden", *args, "-o", str(out1)])  # over a previous bundle
    assert again.exit_code == 0
    files1 = sorted(p.relative_to(out1) for p in out1.rglob("*") if p.is_file())
    assert files1 == sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file())
    for rel in files1:
        assert (out1 / rel).read_bytes() == (out2 / rel).read_bytes(), rel
    top = yaml.safe_load((out1 / "kustomization.yaml").read_text())
    assert "audit" not in top["resources"]  # node-level files are not applied to the cluster


def test_verify_reports_claims_closed_on_the_example(tmp_path: pathlib.Path) -> None:
    if not (EXAMPLE / "flows.yaml").is_file():
        pytest.skip("examples/factory-hall/flows.yaml is not there")
    inv = from_paths([str(EXAMPLE)])
    cfg = load_config(str(EXAMPLE / "nis2kube.yaml"))
    ctx = HardenContext(inv, cfg, HardenOptions(flows=str(EXAMPLE / "flows.yaml")))
    bundle, _ = build(ctx)
    write_bundle(bundle, str(tmp_path))
    objects = list(from_paths([str(EXAMPLE)]).all_objects())
    result = verify(objects, str(tmp_path), bundle, cfg, before=ctx.before, ctx=ctx)
    assert result.ok, [(f.check, f.message) for f in result.still_failing + result.new_failures]
    closed = {f.check for f in result.closed}
    assert {"logging.audit-log-rotation", "admission.registry-enforced"} <= closed
    assert "runtime.falco-custom-rules" not in closed  # only true once Falco mounts the rules


def test_writer_refuses_a_foreign_directory(tmp_path: pathlib.Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    bundle, _ = build(_ctx(only=("alerting",)), scan=False)
    with pytest.raises(BundleError):
        write_bundle(bundle, str(tmp_path))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_usage_errors(tmp_path: pathlib.Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["harden", str(EXAMPLE)]).exit_code == 2  # no -o
    assert runner.invoke(app, ["harden", str(EXAMPLE), "-o", str(tmp_path), "--only", "firewall"]).exit_code == 2
    key = tmp_path / "key.pub"
    key.write_text("not a key")
    result = runner.invoke(app, ["harden", str(EXAMPLE), "-o", str(tmp_path / "o"), "--cosign-key", str(key)])
    assert result.exit_code == 2
