"""identity.*: IdP login, static tokens, anonymous access, authorization mode, certificate admins."""

from __future__ import annotations

import pytest
import yaml

from conftest import SHARED, inventory_from_yaml, run_check
from conftest import apiserver_pod as apiserver
from nis2kube.apiserver import MISSING_EVIDENCE
from nis2kube.findings import Status

KUBE_BENCH = SHARED / "corpora" / "kube-bench" / "cfg" / "cis-1.10" / "master.yaml"


def admin_binding(name: str, kind: str, subject: str, *, namespace: str | None = None, labels: str = "{}") -> str:
    binding = "RoleBinding" if namespace else "ClusterRoleBinding"
    ns = f", namespace: {namespace}" if namespace else ""
    return f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: {binding}
metadata: {{name: {name}{ns}, labels: {labels}}}
subjects: [{{kind: {kind}, name: "{subject}", apiGroup: rbac.authorization.k8s.io}}]
roleRef: {{kind: ClusterRole, name: cluster-admin, apiGroup: rbac.authorization.k8s.io}}
---
"""


@pytest.mark.parametrize("flags, status", [
    (["--oidc-issuer-url=https://login.plant.example", "--oidc-client-id=kubernetes"], Status.PASS),
    (["--authentication-config=/etc/kubernetes/authn.yaml"], Status.PASS),
    (["--client-ca-file=/pki/ca.crt"], Status.FAIL),
])
def test_human_sso(flags, status):
    [finding] = run_check("identity.human-sso", inventory_from_yaml(apiserver(*flags)))
    assert finding.status is status


@pytest.mark.parametrize("check_id, flags, status", [
    ("identity.token-auth-file", ["--token-auth-file=/etc/tokens.csv"], Status.FAIL),
    ("identity.token-auth-file", [], Status.PASS),
    ("identity.anonymous-auth", ["--anonymous-auth=false"], Status.PASS),
    ("identity.anonymous-auth", ["--anonymous-auth=true"], Status.FAIL),
    ("identity.anonymous-auth", [], Status.FAIL),  # the default is true
    ("identity.anonymous-auth", ["--authentication-config=/a.yaml"], Status.NOT_ASSESSED),
    ("identity.authorization-mode", ["--authorization-mode=Node,RBAC"], Status.PASS),
    ("identity.authorization-mode", ["--authorization-mode=RBAC,AlwaysAllow"], Status.FAIL),
    ("identity.authorization-mode", ["--authorization-mode=Node,Webhook"], Status.FAIL),
    ("identity.authorization-mode", [], Status.FAIL),  # the default is AlwaysAllow
    ("identity.authorization-mode", ["--authorization-config=/authz.yaml"], Status.NOT_ASSESSED),
])
def test_flag_checks(check_id, flags, status):
    [finding] = run_check(check_id, inventory_from_yaml(apiserver(*flags)))
    assert finding.status is status


def test_space_separated_flag_form_is_read():
    [finding] = run_check("identity.authorization-mode", inventory_from_yaml(apiserver("--authorization-mode", "RBAC")))
    assert finding.status is Status.PASS


def test_bool_flag_takes_no_space_separated_value():
    """pflag: `--anonymous-auth false` sets anonymous-auth to true; `false` is a stray argument."""
    [finding] = run_check("identity.anonymous-auth",
                          inventory_from_yaml(apiserver("--anonymous-auth", "false", "--authorization-mode=RBAC")))
    assert finding.status is Status.FAIL
    [finding] = run_check("identity.anonymous-auth", inventory_from_yaml(apiserver("--anonymous-auth=false")))
    assert finding.status is Status.PASS


def test_no_apiserver_visible_is_not_assessed():
    for check_id in ("identity.human-sso", "identity.token-auth-file", "identity.anonymous-auth",
                     "identity.authorization-mode"):
        [finding] = run_check(check_id, inventory_from_yaml(admin_binding("x", "User", "alice")))
        assert (finding.status, finding.message) == (Status.NOT_ASSESSED, MISSING_EVIDENCE)


def test_cert_admins_without_oidc_fail_and_defaults_are_skipped():
    docs = (apiserver("--client-ca-file=/pki/ca.crt")
            + admin_binding("integrator", "User", "integrator@plc-vendor.example")
            + admin_binding("masters", "Group", "system:masters")
            + admin_binding("cluster-admin", "Group", "system:masters",
                            labels="{kubernetes.io/bootstrapping: rbac-defaults}")
            + admin_binding("ns-admin", "User", "bob", namespace="mes"))
    got = {f.resource.name: f for f in run_check("identity.cert-admin", inventory_from_yaml(docs))}
    assert set(got) == {"integrator", "masters", "ns-admin"}
    assert got["integrator"].status is Status.FAIL and "cannot be revoked" in got["integrator"].message
    assert got["masters"].status is Status.FAIL and "only client certificates" in got["masters"].message
    assert got["ns-admin"].status is Status.FAIL and "in namespace mes" in got["ns-admin"].message


def test_oidc_default_prefix_is_issuer_hash_unless_the_claim_is_email():
    issuer = "https://login.plant.example"
    docs = (admin_binding("oidc-user", "User", f"{issuer}#alice") + admin_binding("cert-user", "User", "alice"))
    got = {f.resource.name: f.status for f in run_check(
        "identity.cert-admin", inventory_from_yaml(apiserver(f"--oidc-issuer-url={issuer}") + docs))}
    assert got == {"oidc-user": Status.PASS, "cert-user": Status.FAIL}
    email = apiserver(f"--oidc-issuer-url={issuer}", "--oidc-username-claim=email")
    got = {f.resource.name: f.status for f in run_check("identity.cert-admin", inventory_from_yaml(email + docs))}
    assert got == {"oidc-user": Status.NOT_ASSESSED, "cert-user": Status.NOT_ASSESSED}
    explicit = apiserver(f"--oidc-issuer-url={issuer}", "--oidc-username-prefix=oidc:", "--oidc-groups-prefix=oidc:")
    docs = admin_binding("grp", "Group", "oidc:platform-admins") + admin_binding("cert-grp", "Group", "admins")
    got = {f.resource.name: f.status for f in run_check("identity.cert-admin", inventory_from_yaml(explicit + docs))}
    assert got == {"grp": Status.PASS, "cert-grp": Status.FAIL}


def test_cert_admin_without_apiserver_or_with_token_file_cannot_decide():
    docs = admin_binding("u", "User", "alice") + admin_binding("m", "Group", "system:masters")
    got = {f.resource.name: f.status for f in run_check("identity.cert-admin", inventory_from_yaml(docs))}
    assert got == {"u": Status.NOT_ASSESSED, "m": Status.FAIL}
    tokens = apiserver("--token-auth-file=/tokens.csv") + admin_binding("u", "User", "alice")
    assert [f.status for f in run_check("identity.cert-admin", inventory_from_yaml(tokens))] == [Status.NOT_ASSESSED]


@pytest.mark.skipif(not KUBE_BENCH.is_file(), reason="kube-bench corpus not available")
def test_verdicts_agree_with_cis_1_10_kube_bench_tests():
    """Evaluate kube-bench's own test items (flag set / eq / has / nothave) for CIS 1.2.1, 1.2.2, 1.2.6, 1.2.8
    on several command lines and compare with our verdicts."""
    checks = {c["id"]: c for g in yaml.safe_load(KUBE_BENCH.read_text())["groups"] for c in g["checks"]}
    ours = {"1.2.1": "identity.anonymous-auth", "1.2.2": "identity.token-auth-file",
            "1.2.6": "identity.authorization-mode", "1.2.8": "identity.authorization-mode"}
    command_lines = [[], ["--anonymous-auth=false"], ["--anonymous-auth=true"], ["--token-auth-file=/t.csv"],
                     ["--authorization-mode=Node,RBAC"], ["--authorization-mode=AlwaysAllow"],
                     ["--authorization-mode=RBAC"]]

    def kube_bench(item: dict, flags: dict[str, str]) -> bool:
        flag = item["flag"]
        present = flag in flags
        if item.get("set") is False:
            return not present
        compare = item.get("compare")
        if compare is None:
            return present
        if not present:
            return False
        value, expected = flags[flag], str(compare["value"]).lower()
        op = compare["op"]
        if op == "eq":
            return value.lower() == expected
        if op == "has":
            return expected in value.lower().split(",")
        if op == "nothave":
            return expected not in value.lower().split(",")
        raise AssertionError(op)

    for cis_id, check_id in ours.items():
        items = checks[cis_id]["tests"]["test_items"]
        for line in command_lines:
            flags = dict(f.split("=", 1) for f in line)
            expected = all(kube_bench(item, flags) for item in items)
            [ours_finding] = run_check(check_id, inventory_from_yaml(apiserver(*line)))
            if cis_id == "1.2.6" and "--authorization-mode" not in flags:
                continue  # kube-bench fails the unset flag on "nothave"; we do too, for the default AlwaysAllow
            if cis_id == "1.2.8" or cis_id == "1.2.6":
                # our check is the conjunction of 1.2.6 and 1.2.8: it may only be stricter than either
                if ours_finding.status is Status.PASS:
                    assert expected, (cis_id, line)
                continue
            assert (ours_finding.status is Status.PASS) == expected, (cis_id, line)


@pytest.mark.parametrize("value, status", [("0", Status.PASS), ("f", Status.PASS), ("False", Status.PASS),
                                           ("1", Status.FAIL), ("T", Status.FAIL)])
def test_anonymous_auth_reads_the_flag_like_strconv_parse_bool(value, status):
    [finding] = run_check("identity.anonymous-auth", inventory_from_yaml(apiserver(f"--anonymous-auth={value}")))
    assert finding.status is status


def test_service_account_subjects_are_not_certificates_and_the_bootstrap_label_hides_only_system_masters():
    extra = admin_binding("cluster-admin", "Group", "system:masters",
                          labels="{kubernetes.io/bootstrapping: rbac-defaults}").replace(
        "subjects: [", 'subjects: [{kind: User, name: "plc-vendor", apiGroup: rbac.authorization.k8s.io}, ')
    docs = (apiserver("--client-ca-file=/pki/ca.crt") + extra
            + admin_binding("ci", "User", "system:serviceaccount:ci:deployer")
            + admin_binding("all-sa", "Group", "system:serviceaccounts:ci")
            + admin_binding("hidden", "User", "intruder", labels="{kubernetes.io/bootstrapping: rbac-defaults}"))
    findings = run_check("identity.cert-admin", inventory_from_yaml(docs))
    assert sorted((f.resource.name, f.evidence["subject"]["name"], f.status) for f in findings) == [
        ("cluster-admin", "plc-vendor", Status.FAIL), ("hidden", "intruder", Status.FAIL)]


def test_cluster_admin_binding_the_api_server_would_reject_is_not_reported():
    """A roleRef naming another apiGroup fails validation: such a binding cannot exist, whoever it names."""
    rejected = admin_binding("bogus-group", "User", "mallory").replace(
        "name: cluster-admin, apiGroup: rbac.authorization.k8s.io", "name: cluster-admin, apiGroup: example.com")
    docs = apiserver("--client-ca-file=/pki/ca.crt") + rejected + admin_binding("integrator", "User", "alice")
    findings = run_check("identity.cert-admin", inventory_from_yaml(docs))
    assert [(f.resource.name, f.status) for f in findings] == [("integrator", Status.FAIL)]
