"""crypto.*: Ingress TLS, mTLS for labelled namespaces, encryption at rest, API server and etcd TLS."""

from __future__ import annotations

import pytest
import yaml

from conftest import SHARED, inventory_from_yaml, run_check, statuses
from conftest import apiserver_pod as apiserver
from nis2kube.apiserver import MISSING_EVIDENCE
from nis2kube.checks.crypto import load_encryption_config, secrets_provider, tls_covers
from nis2kube.checks.registry import InputError
from nis2kube.findings import Severity, Status

KUBE_BENCH = SHARED / "corpora" / "kube-bench" / "cfg" / "cis-1.10" / "master.yaml"


def ingress(tls: str, rules: str) -> str:
    return f"""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web, namespace: mes}}
spec:
  tls: {tls}
  rules: {rules}
---
"""


@pytest.mark.parametrize("tls_host, host, covered", [
    ("mes.plant.example", "mes.plant.example", True),
    ("*.plant.example", "mes.plant.example", True),
    ("*.plant.example", "a.mes.plant.example", False),  # a wildcard covers exactly one label
    ("*.plant.example", "plant.example", False),
    ("mes.plant.example", "MES.plant.example", False),
])
def test_tls_host_matching(tls_host, host, covered):
    assert tls_covers(tls_host, host) is covered


def test_ingress_hosts_without_tls_fail():
    inv = inventory_from_yaml(
        ingress("[{hosts: [mes.plant.example], secretName: mes-tls}]",
                "[{host: mes.plant.example}, {host: shopfloor-terminal.plant.example}]")
        .replace("name: web", "name: mixed")
        + ingress("[{hosts: ['*.plant.example'], secretName: wild}]", "[{host: a.plant.example}]")
        .replace("name: web", "name: wildcard")
        + ingress("[{secretName: default}]", "[{http: {paths: []}}]").replace("name: web", "name: nohost")
        + ingress("[]", "[{host: x.plant.example}]").replace("name: web", "name: plain"))
    findings = {f.resource.name: f for f in run_check("crypto.ingress-tls", inv)}
    assert findings["mixed"].status is Status.FAIL
    assert findings["mixed"].message.endswith("shopfloor-terminal.plant.example")
    assert findings["wildcard"].status is Status.PASS
    assert findings["nohost"].status is Status.PASS
    assert findings["plain"].status is Status.FAIL


def namespace(name: str, labels: str = "{nis2kube.io/data: plant}", annotations: str = "{}") -> str:
    meta = f"{{name: {name}, labels: {labels}, annotations: {annotations}}}"
    return f"apiVersion: v1\nkind: Namespace\nmetadata: {meta}\n---\n"


def peer(namespace: str, mode: str, name: str = "default", selector: str = "") -> str:
    sel = f"\n  selector: {{matchLabels: {selector}}}" if selector else ""
    return f"""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: {name}, namespace: {namespace}}}
spec:{sel}
  mtls: {{mode: {mode}}}
---
"""


def test_mtls_istio_precedence_and_membership():
    mesh = "{nis2kube.io/data: plant, istio-injection: enabled}"
    docs = (namespace("strict", mesh) + peer("strict", "STRICT")
            + namespace("inherits", "{nis2kube.io/data: personal, istio.io/rev: stable}")
            + peer("istio-system", "STRICT")
            + namespace("override", mesh) + peer("override", "PERMISSIVE")
            + namespace("hole", mesh) + peer("hole", "STRICT") + peer("hole", "DISABLE", "legacy", "{app: plc}")
            + namespace("notmeshed")
            + namespace("ambient", "{nis2kube.io/data: plant, istio.io/dataplane-mode: ambient}")
            + namespace("linkerd", annotations="{linkerd.io/inject: enabled}")
            + namespace("public", "{nis2kube.io/data: public}"))
    got = {f.resource.name: f for f in run_check("crypto.mtls-sensitive", inventory_from_yaml(docs))}
    assert got["strict"].status is Status.PASS
    assert got["inherits"].status is Status.PASS and "istio-system" in got["inherits"].message
    assert got["override"].status is Status.FAIL and "PERMISSIVE" in got["override"].message
    assert got["hole"].status is Status.FAIL and "legacy" in got["hole"].message
    assert got["notmeshed"].status is Status.FAIL and "not in the mesh" in got["notmeshed"].message
    assert got["ambient"].status is Status.PASS
    assert got["linkerd"].status is Status.PASS
    assert "public" not in got


def test_mtls_without_any_mesh_and_without_labels():
    [fail] = run_check("crypto.mtls-sensitive", inventory_from_yaml(namespace("scada")))
    assert fail.status is Status.FAIL and "no service mesh" in fail.message
    [na] = run_check("crypto.mtls-sensitive", inventory_from_yaml(namespace("scada", "{zone: control}")))
    assert na.status is Status.NOT_ASSESSED
    custom = {"crypto": {"sensitive_label": "zone", "sensitive_values": ["control"]}}
    [custom_fail] = run_check("crypto.mtls-sensitive", inventory_from_yaml(namespace("scada", "{zone: control}")),
                              custom)
    assert custom_fail.status is Status.FAIL


def test_api_server_flag_checks():
    good = apiserver("--encryption-provider-config=/etc/kubernetes/enc.yaml", "--tls-min-version=VersionTLS13",
                     "--etcd-servers=https://127.0.0.1:2379", "--etcd-cafile=/pki/etcd/ca.crt",
                     "--etcd-certfile=/pki/etcd.crt", "--etcd-keyfile=/pki/etcd.key")
    bad = apiserver("--tls-min-version=VersionTLS11", "--etcd-servers=http://10.0.0.5:2379",
                    "--etcd-cafile=/pki/etcd/ca.crt")
    for check_id in ("crypto.encryption-at-rest", "crypto.apiserver-tls-version", "crypto.etcd-tls"):
        assert [f.status for f in run_check(check_id, inventory_from_yaml(good))] == [Status.PASS], check_id
        assert [f.status for f in run_check(check_id, inventory_from_yaml(bad))] == [Status.FAIL], check_id
    [etcd] = run_check("crypto.etcd-tls", inventory_from_yaml(bad))
    assert "--etcd-certfile, --etcd-keyfile not set" in etcd.message and "http://10.0.0.5:2379" in etcd.message
    [unset] = run_check("crypto.apiserver-tls-version", inventory_from_yaml(apiserver()))
    assert (unset.status, unset.severity) == (Status.FAIL, Severity.LOW)


def test_managed_control_plane_is_not_assessed():
    for check_id in ("crypto.encryption-at-rest", "crypto.apiserver-tls-version", "crypto.etcd-tls"):
        [finding] = run_check(check_id, inventory_from_yaml(ingress("[]", "[]")))
        assert (finding.status, finding.message) == (Status.NOT_ASSESSED, MISSING_EVIDENCE)


def test_apiserver_manifest_input(tmp_path):
    manifest = tmp_path / "kube-apiserver.yaml"
    manifest.write_text(apiserver("--encryption-provider-config=/etc/enc.yaml"))
    findings = run_check("crypto.encryption-at-rest", inventory_from_yaml(ingress("[]", "[]")),
                         inputs={"apiserver_manifest": str(manifest)})
    assert [f.status for f in findings] == [Status.PASS]


ENCRYPTION = """
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [events]
    providers: [{identity: {}}]
  - resources: [secrets, configmaps]
    providers:
      - %s
      - identity: {}
"""


@pytest.mark.parametrize("first, status, severity", [
    ("identity: {}", Status.FAIL, Severity.HIGH),
    ("aescbc: {keys: [{name: k1, secret: c2VjcmV0}]}", Status.FAIL, Severity.LOW),
    ("kms: {name: vault, endpoint: 'unix:///kms.sock'}", Status.FAIL, Severity.LOW),
    ("kms: {apiVersion: v2, name: vault, endpoint: 'unix:///kms.sock'}", Status.PASS, Severity.HIGH),
    ("aesgcm: {keys: [{name: k1, secret: c2VjcmV0}]}", Status.PASS, Severity.HIGH),
    ("secretbox: {keys: [{name: k1, secret: c2VjcmV0}]}", Status.PASS, Severity.HIGH),
])
def test_secrets_provider_is_the_first_provider_of_the_entry_covering_secrets(tmp_path, first, status, severity):
    path = tmp_path / "enc.yaml"
    path.write_text(ENCRYPTION % first)
    [finding] = run_check("crypto.secrets-provider", inventory_from_yaml(""), inputs={"encryption_config": str(path)})
    assert (finding.status, finding.severity) == (status, severity)
    assert "resources[1]" in finding.message


def test_wildcard_entries_and_uncovered_secrets(tmp_path):
    entries = yaml.safe_load("""
resources:
  - {resources: [configmaps], providers: [{aesgcm: {}}]}
  - {resources: ['*.*'], providers: [{secretbox: {}}, {identity: {}}]}
""")["resources"]
    assert secrets_provider(entries) == ("secretbox", {}, 1)
    assert secrets_provider(entries[:1]) is None
    path = tmp_path / "enc.yaml"
    path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    "  - {resources: [configmaps], providers: [{aesgcm: {}}]}\n")
    [finding] = run_check("crypto.secrets-provider", inventory_from_yaml(""), inputs={"encryption_config": str(path)})
    assert finding.status is Status.FAIL and "no entry covers secrets" in finding.message


@pytest.mark.parametrize("text, message", [
    ("kind: Pod\n", "not an EncryptionConfiguration"),
    ("kind: EncryptionConfiguration\nresources: {a: 1}\n", "resources must be a list"),
    ("kind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: []}]\n", "providers is empty"),
    ("kind: [\n", "invalid YAML"),
])
def test_bad_encryption_config_names_file_and_problem(tmp_path, text, message):
    path = tmp_path / "enc.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_encryption_config(str(path))
    assert str(path) in str(err.value)


def test_no_encryption_config_file_is_not_assessed():
    [finding] = run_check("crypto.secrets-provider", inventory_from_yaml(""))
    assert finding.status is Status.NOT_ASSESSED and "--encryption-config" in finding.message


@pytest.mark.skipif(not KUBE_BENCH.is_file(), reason="kube-bench corpus not available")
def test_flags_agree_with_cis_1_10_kube_bench_definitions():
    """CIS 1.2.23, 1.2.26 (etcd client TLS) and 1.2.27 (encryption provider config) as kube-bench encodes
    them: every listed flag set means pass; a missing one means fail. Our verdicts must agree."""
    checks = {c["id"]: c for g in yaml.safe_load(KUBE_BENCH.read_text())["groups"] for c in g["checks"]}
    ours = {"1.2.23": "crypto.etcd-tls", "1.2.26": "crypto.etcd-tls", "1.2.27": "crypto.encryption-at-rest"}
    base = ["--etcd-servers=https://127.0.0.1:2379", "--etcd-cafile=/ca", "--etcd-certfile=/c", "--etcd-keyfile=/k",
            "--encryption-provider-config=/enc"]
    for cis_id, check_id in ours.items():
        flags = [item["flag"] for item in checks[cis_id]["tests"]["test_items"]]
        [ok] = run_check(check_id, inventory_from_yaml(apiserver(*base)))
        assert ok.status is Status.PASS, cis_id
        for flag in flags:
            without = [f for f in base if not f.startswith(flag + "=")]
            [bad] = run_check(check_id, inventory_from_yaml(apiserver(*without)))
            assert bad.status is Status.FAIL, (cis_id, flag)


def test_inventory_statuses_helper_reports_on_the_apiserver_pod():
    findings = run_check("crypto.encryption-at-rest", inventory_from_yaml(apiserver()))
    assert statuses(findings) == {"Pod/kube-system/kube-apiserver-cp1": Status.FAIL}


# ---- upstream semantics: Istio policy precedence and injection, Linkerd overrides, config forms -------------


def stamped(doc: str, when: str) -> str:
    return doc.replace("metadata: {name:", f"metadata: {{creationTimestamp: '{when}', name:", 1)


def test_istio_oldest_namespace_policy_wins_and_unset_inherits_the_mesh():
    """ComposePeerAuthentication: the oldest namespace-wide policy counts even when it is UNSET (it then
    inherits the mesh policy); a newer STRICT one in the same namespace is ignored."""
    mesh = "{nis2kube.io/data: plant, istio-injection: enabled}"
    docs = (namespace("mes", mesh) + peer("istio-system", "PERMISSIVE")
            + stamped(peer("mes", "UNSET", "a-old"), "2025-01-01T00:00:00Z")
            + stamped(peer("mes", "STRICT", "b-new"), "2025-06-01T00:00:00Z"))
    [finding] = run_check("crypto.mtls-sensitive", inventory_from_yaml(docs))
    assert finding.status is Status.FAIL and "PERMISSIVE" in finding.message and "istio-system" in finding.message


def test_istio_mesh_policy_reaches_every_namespace_and_the_root_namespace_itself():
    mesh = "{nis2kube.io/data: plant, istio-injection: enabled}"
    docs = (namespace("istio-system", mesh) + stamped(peer("istio-system", "DISABLE", "b-new"), "2025-06-01T00:00:00Z")
            + stamped(peer("istio-system", "STRICT", "a-old"), "2025-01-01T00:00:00Z")
            + peer("istio-system", "DISABLE", "gateway", "{app: gw}")  # a workload policy: not mesh-wide
            + namespace("mes", mesh) + namespace("scada", mesh) + peer("scada", "PERMISSIVE"))
    got = {f.resource.name: f for f in run_check("crypto.mtls-sensitive", inventory_from_yaml(docs))}
    assert got["istio-system"].status is Status.PASS and got["istio-system"].evidence["weakened_by"] == []
    assert got["mes"].status is Status.PASS and "istio-system/a-old" in got["mes"].message
    assert got["scada"].status is Status.FAIL and "PeerAuthentication scada/default" in got["scada"].message


def test_istio_empty_match_labels_is_namespace_wide_and_port_levels_only_count_on_workload_policies():
    mesh = "{nis2kube.io/data: plant, istio-injection: enabled}"
    empty = peer("mes", "DISABLE", "legacy").replace("spec:", "spec:\n  selector: {matchLabels: {}}")
    [finding] = run_check("crypto.mtls-sensitive", inventory_from_yaml(namespace("mes", mesh) + empty))
    assert finding.status is Status.FAIL and "effective mode DISABLE" in finding.message
    unset_workload = peer("mes", "UNSET", "api", "{app: api}")  # inherits STRICT from the namespace
    docs = namespace("mes", mesh) + peer("mes", "STRICT") + unset_workload
    assert [f.status for f in run_check("crypto.mtls-sensitive", inventory_from_yaml(docs))] == [Status.PASS]


def test_istio_injection_label_takes_precedence_over_revision_label():
    labels = "{nis2kube.io/data: plant, istio-injection: disabled, istio.io/rev: stable}"
    [finding] = run_check("crypto.mtls-sensitive", inventory_from_yaml(namespace("mes", labels)
                                                                       + peer("mes", "STRICT")))
    assert finding.status is Status.FAIL and "not in the mesh" in finding.message


def workload(name: str, ns: str, annotations: str = "{}") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}, annotations: {annotations}}}
    spec: {{containers: [{{name: app, image: app:1}}]}}
---
"""


def test_linkerd_pod_annotation_overrides_the_namespace():
    enabled = "{linkerd.io/inject: enabled}"
    docs = (namespace("mes", annotations=enabled) + workload("api", "mes")
            + workload("plc-bridge", "mes", "{linkerd.io/inject: disabled}")
            + namespace("scada") + workload("hmi", "scada", enabled))
    got = {f.resource.name: f for f in run_check("crypto.mtls-sensitive", inventory_from_yaml(docs))}
    assert got["mes"].status is Status.FAIL and "Deployment/plc-bridge" in got["mes"].message
    assert got["scada"].status is Status.PASS and got["scada"].evidence["mesh"] == "linkerd"


def test_linkerd_judges_each_namespace_by_its_own_workloads():
    enabled = "{linkerd.io/inject: enabled}"
    docs = (namespace("mes", annotations=enabled) + workload("api", "mes")
            + namespace("scada", annotations=enabled) + workload("hmi", "scada", "{linkerd.io/inject: disabled}")
            + namespace("empty", annotations=enabled))
    got = {f.resource.name: f for f in run_check("crypto.mtls-sensitive", inventory_from_yaml(docs))}
    assert got["mes"].status is Status.PASS and got["empty"].status is Status.PASS
    assert got["scada"].status is Status.FAIL and got["scada"].evidence["unmeshed"] == ["Deployment/hmi"]


def test_secrets_with_trailing_dot_is_the_core_group_and_unknown_providers_are_refused(tmp_path):
    entries = yaml.safe_load("resources: [{resources: ['secrets.'], providers: [{aesgcm: {}}]}]")["resources"]
    assert secrets_provider(entries) == ("aesgcm", {}, 0)
    path = tmp_path / "enc.yaml"
    path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    "  - {resources: [secrets], providers: [{aes256: {}}, {identity: {}}]}\n")
    with pytest.raises(InputError, match=r"providers\[0\] must name exactly one of"):
        load_encryption_config(str(path))


def test_insecure_cipher_suites_with_tls12_and_etcd_overrides():
    weak = apiserver("--tls-min-version=VersionTLS12",
                     "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_3DES_EDE_CBC_SHA")
    [finding] = run_check("crypto.apiserver-tls-version", inventory_from_yaml(weak))
    assert finding.status is Status.FAIL and "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in finding.message
    tls13 = weak.replace("VersionTLS12", "VersionTLS13")
    assert [f.status for f in run_check("crypto.apiserver-tls-version", inventory_from_yaml(tls13))] == [Status.PASS]
    events = apiserver("--etcd-servers=https://127.0.0.1:2379", "--etcd-cafile=/ca", "--etcd-certfile=/c",
                       "--etcd-keyfile=/k", "--etcd-servers-overrides=/events#http://10.0.0.9:2379")
    [etcd] = run_check("crypto.etcd-tls", inventory_from_yaml(events))
    assert etcd.status is Status.FAIL and "http://10.0.0.9:2379" in etcd.message
