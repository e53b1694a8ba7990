"""logging.*: API server audit flags, the policy's content (first match wins), shipping, retention."""

from __future__ import annotations

import math
import pathlib
import textwrap

import pytest

from conftest import apiserver_pod, inventory_from_yaml, run_check
from nis2kube.apiserver import apiservers, parse_flag_values, parse_flags
from nis2kube.checks.logging import duration_days, es_time_days, glob_regex
from nis2kube.checks.registry import InputError, ScanContext
from nis2kube.findings import Status
from nis2kube.gostrconv import parse_bool

CORPORA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
FALCO_POLICY = CORPORA / "falco-k8saudit/falcosecurity-plugins/plugins/k8saudit/configs/audit-policy.yaml"
DEMO_POLICY = CORPORA / "audit2rbac/testdata/demo-policy.yaml"


KUBEADM_AUDIT = ("--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
                 "--audit-log-path=/var/log/kubernetes/audit/audit.log",
                 "--audit-log-maxage=30", "--audit-log-maxbackup=10", "--audit-log-maxsize=100")


def by_status(findings) -> dict[Status, list[str]]:
    out: dict[Status, list[str]] = {}
    for f in findings:
        out.setdefault(f.status, []).append(f.message)
    return out


# ---- flags ------------------------------------------------------------------------------------------------
def test_audit_enabled_pass_fail_and_missing_backend():
    inv = inventory_from_yaml(apiserver_pod(*KUBEADM_AUDIT))
    [f] = run_check("logging.audit-log-enabled", inv)
    assert f.status is Status.PASS and f.resource.name == "kube-apiserver-cp1"
    [f] = run_check("logging.audit-log-enabled", inventory_from_yaml(apiserver_pod("--authorization-mode=Node,RBAC")))
    assert f.status is Status.FAIL and "--audit-policy-file is not set" in f.message
    [f] = run_check("logging.audit-log-enabled", inventory_from_yaml(apiserver_pod("--audit-policy-file=/p.yaml")))
    assert f.status is Status.FAIL and "no backend" in f.message
    [f] = run_check("logging.audit-log-enabled", inventory_from_yaml(apiserver_pod(
        "--audit-policy-file=/p.yaml", "--audit-webhook-config-file=/etc/kubernetes/audit-webhook.yaml")))
    assert f.status is Status.PASS


def test_flag_checks_not_assessed_without_an_api_server():
    inv = inventory_from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n")
    for check_id in ("logging.audit-log-enabled", "logging.audit-log-rotation"):
        [f] = run_check(check_id, inv)
        assert f.status is Status.NOT_ASSESSED and "--apiserver-manifest" in f.message


def test_apiserver_manifest_file_is_used(tmp_path):
    manifest = tmp_path / "kube-apiserver.yaml"
    manifest.write_text(apiserver_pod(*KUBEADM_AUDIT))
    inv = inventory_from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n")
    [f] = run_check("logging.audit-log-enabled", inv, inputs={"apiserver_manifest": str(manifest)})
    assert f.status is Status.PASS


def test_rotation_thresholds_follow_cis_defaults_and_config():
    inv = inventory_from_yaml(apiserver_pod("--audit-policy-file=/p.yaml", "--audit-log-path=/var/log/a.log",
                                            "--audit-log-maxage=7", "--audit-log-maxbackup=10"))
    found = by_status(run_check("logging.audit-log-rotation", inv))
    assert found[Status.FAIL] == ["--audit-log-maxage=7 is below the minimum 30"]
    assert "--audit-log-maxbackup=10 (minimum 10)" in found[Status.PASS]
    assert "--audit-log-maxsize=100 (minimum 100)" in found[Status.PASS]  # lumberjack's default when unset
    relaxed = run_check("logging.audit-log-rotation", inv, config={"logging": {"min_maxage": 7}})
    assert all(f.status is Status.PASS for f in relaxed)


def test_rotation_edge_cases():
    inv = inventory_from_yaml(apiserver_pod("--audit-policy-file=/p.yaml", "--audit-log-path=/a.log",
                                            "--audit-log-maxage=0", "--audit-log-maxbackup=ten"))
    found = by_status(run_check("logging.audit-log-rotation", inv))
    assert any(m.startswith("--audit-log-maxage=0: old audit files are never deleted") for m in found[Status.PASS])
    assert "--audit-log-maxsize=100 (minimum 100)" in found[Status.PASS]  # unset: lumberjack's 100 MB
    assert found[Status.FAIL] == ["--audit-log-maxbackup=ten is not a number"]
    unset = inventory_from_yaml(apiserver_pod("--audit-policy-file=/p.yaml", "--audit-log-path=/a.log"))
    messages = [f.message for f in run_check("logging.audit-log-rotation", unset)]
    assert any(m.startswith("--audit-log-maxbackup is not set: old audit files are never deleted") for m in messages)
    [f] = run_check("logging.audit-log-rotation", inventory_from_yaml(apiserver_pod("--audit-log-path=-")))
    assert f.status is Status.NOT_ASSESSED and "stdout" in f.message
    with pytest.raises(InputError, match=r"logging\.min_maxage must be a non-negative integer"):
        run_check("logging.audit-log-rotation", inv, config={"logging": {"min_maxage": "thirty"}})


def test_kube_bench_cis_thresholds_match_our_defaults():
    master = CORPORA / "kube-bench/cfg/cis-1.10/master.yaml"
    if not master.is_file():
        pytest.skip("corpora not beside the project")
    import yaml

    from nis2kube.checks.logging import DEFAULTS

    tests = {}
    for group in yaml.safe_load(master.read_text())["groups"]:
        for chk in group["checks"]:
            for item in (chk.get("tests") or {}).get("test_items", []):
                tests[item.get("flag")] = item.get("compare")
    for name in ("maxage", "maxbackup", "maxsize"):
        compare = tests[f"--audit-log-{name}"]
        assert compare["op"] == "gte" and int(compare["value"]) == DEFAULTS[f"min_{name}"]


# ---- policy content ---------------------------------------------------------------------------------------
GOOD_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources:
      - {group: "", resources: [secrets, configmaps, serviceaccounts/token]}
      - {group: authentication.k8s.io, resources: [tokenreviews]}
  - level: None
    users: [system:kube-proxy]
    verbs: [watch]
    resources: [{group: "", resources: [endpoints, services]}]
  - level: None
    userGroups: [system:nodes]
    verbs: [get, list, watch]
  - level: RequestResponse
    resources: [{group: rbac.authorization.k8s.io}]
  - level: Request
    resources:
      - {group: ""}
      - {group: apps}
      - {group: batch}
  - level: Metadata
"""
# The shape of the NIS2 sample policy that circulates in blog posts: "log everything important in full".
LEAKY_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: RequestResponse
    resources:
      - {group: "", resources: [secrets, configmaps, pods, pods/exec]}
      - {group: authentication.k8s.io, resources: [tokenreviews]}
  - level: Metadata
"""
SILENT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    userGroups: [system:authenticated]
    verbs: [get, list, watch]
  - level: Metadata
    resources: [{group: "", resources: [secrets, configmaps]}]
  - level: RequestResponse
    resources: [{group: rbac.authorization.k8s.io}]
  - level: None
"""


def policy_inputs(tmp_path, text: str) -> dict:
    path = tmp_path / "audit-policy.yaml"
    path.write_text(text)
    return {"audit_policy": str(path)}


EMPTY = "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n"


def test_good_policy_passes_every_content_check(tmp_path):
    inputs = policy_inputs(tmp_path, GOOD_POLICY)
    inv = inventory_from_yaml(EMPTY)
    for check_id in ("logging.audit-policy-coverage", "logging.audit-policy-secrets", "logging.audit-policy-default"):
        findings = run_check(check_id, inv, inputs=inputs)
        assert findings and all(f.status is Status.PASS for f in findings), [f.message for f in findings]
        assert all(f.resource.kind == "Policy" and f.resource.name == "audit-policy.yaml" for f in findings)


def test_leaky_policy_writes_secret_values_into_the_log(tmp_path):
    inputs = policy_inputs(tmp_path, LEAKY_POLICY)
    found = by_status(run_check("logging.audit-policy-secrets", inventory_from_yaml(EMPTY), inputs=inputs))
    assert len(found[Status.FAIL]) == 3 and len(found[Status.PASS]) == 1
    assert any("writes of Secrets and ConfigMaps are logged at RequestResponse" in m and "rule 1" in m
               for m in found[Status.FAIL])
    assert any(m.startswith("TokenReviews") for m in found[Status.FAIL])


def test_silencing_rules_are_found_by_first_match(tmp_path):
    inputs = policy_inputs(tmp_path, SILENT_POLICY)
    inv = inventory_from_yaml(EMPTY)
    found = by_status(run_check("logging.audit-policy-coverage", inv, inputs=inputs))
    fails = found[Status.FAIL]
    # reads of Secrets hit rule 1 (None) before the Secrets rule; workload changes fall to the catch-all None
    assert any("reads and changes of Secrets are not logged" in m and "rule 1 (level: None) matches first" in m
               for m in fails)
    assert any("workload changes are not logged" in m and "rule 4 (level: None, catch-all)" in m for m in fails)
    assert any(m.startswith("RBAC changes: logged at least Metadata") for m in found[Status.PASS])
    [f] = run_check("logging.audit-policy-default", inv, inputs=inputs)
    assert f.status is Status.FAIL and "catch-all `level: None`" in f.message


def test_corpus_policies(tmp_path):
    if not FALCO_POLICY.is_file():
        pytest.skip("corpora not beside the project")
    inv = inventory_from_yaml(EMPTY)
    inputs = {"audit_policy": str(FALCO_POLICY)}
    coverage = run_check("logging.audit-policy-coverage", inv, inputs=inputs)
    assert all(f.status is Status.PASS for f in coverage)
    secrets = by_status(run_check("logging.audit-policy-secrets", inv, inputs=inputs))
    assert len(secrets[Status.FAIL]) == 2 and all("configmaps" in m for m in secrets[Status.FAIL])
    demo = {"audit_policy": str(DEMO_POLICY)}
    coverage = run_check("logging.audit-policy-coverage", inv, inputs=demo)
    assert coverage and all(f.status is Status.FAIL for f in coverage)
    assert all("by any user" in f.message or "by an unauthenticated caller" in f.message for f in coverage)
    [f] = run_check("logging.audit-policy-default", inv, inputs=demo)
    assert f.status is Status.FAIL and "no catch-all rule" in f.message


def test_policy_found_in_a_configmap_and_as_an_object():
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: audit-policy, namespace: kube-system}\ndata:\n" \
         "  policy.yaml: |\n" + textwrap.indent(LEAKY_POLICY, "    ")
    findings = run_check("logging.audit-policy-secrets", inventory_from_yaml(cm))
    assert {f.resource.display for f in findings} == {"ConfigMap/kube-system/audit-policy"}
    assert any(f.status is Status.FAIL for f in findings)
    # the file loader keeps only named objects: a policy file beside the manifests needs metadata.name
    named = GOOD_POLICY.replace("kind: Policy\n", "kind: Policy\nmetadata: {name: cluster-audit}\n")
    findings = run_check("logging.audit-policy-default", inventory_from_yaml(named, "policy.yaml"))
    assert [f.status for f in findings] == [Status.PASS] and findings[0].resource.kind == "Policy"


def test_broken_policy_in_configmap_is_not_assessed_with_reason():
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: audit, namespace: kube-system}\ndata:\n" \
         "  policy.yaml: |\n    apiVersion: audit.k8s.io/v1\n    kind: Policy\n    rules:\n    - level: Loud\n"
    [f] = run_check("logging.audit-policy-coverage", inventory_from_yaml(cm))
    assert f.status is Status.NOT_ASSESSED and "unknown level 'Loud'" in f.message


def test_no_policy_names_the_flag_path():
    inv = inventory_from_yaml(apiserver_pod(*KUBEADM_AUDIT))
    [f] = run_check("logging.audit-policy-coverage", inv)
    assert f.status is Status.NOT_ASSESSED and "/etc/kubernetes/audit/policy.yaml" in f.message


def test_bad_policy_file_is_an_input_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: {}\n")
    with pytest.raises(InputError, match=r"--audit-policy: .*p.yaml: rules must be a list"):
        run_check("logging.audit-policy-secrets", inventory_from_yaml(EMPTY), inputs={"audit_policy": str(path)})


# ---- shipping ---------------------------------------------------------------------------------------------
def fluent_bit(tolerations: str, path: str, mount: str = "/var/log") -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {{name: fluent-bit, namespace: logging}}
        spec:
          selector: {{matchLabels: {{app: fluent-bit}}}}
          template:
            metadata: {{labels: {{app: fluent-bit}}}}
            spec:
              tolerations: {tolerations}
              containers:
              - name: fluent-bit
                image: cr.fluentbit.io/fluent/fluent-bit:3.2.2
                volumeMounts:
                - {{name: varlog, mountPath: /host{mount}, readOnly: true}}
                - {{name: config, mountPath: /fluent-bit/etc/}}
              volumes:
              - {{name: varlog, hostPath: {{path: {mount}}}}}
              - {{name: config, configMap: {{name: fluent-bit-config}}}}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: fluent-bit-config, namespace: logging}}
        data:
          fluent-bit.conf: |
            [INPUT]
                Name tail
                Path {path}
            [OUTPUT]
                Name es
                Match *
        ---
        """)


CP_TOLERATION = "[{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]"


def test_collector_on_control_plane_reading_the_audit_log_passes():
    text = fluent_bit(CP_TOLERATION, "/host/var/log/kubernetes/audit/*.log") + apiserver_pod(*KUBEADM_AUDIT)
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(text))
    assert f.status is Status.PASS and f.resource.display == "DaemonSet/logging/fluent-bit"
    assert "input /host/var/log/kubernetes/audit/*.log" in f.message


def test_collector_without_control_plane_toleration_or_audit_input_fails():
    text = fluent_bit("[]", "/host/var/log/kubernetes/audit/*.log") + apiserver_pod(*KUBEADM_AUDIT)
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(text))
    assert f.status is Status.FAIL and "does not run on control-plane nodes" in f.message
    text = fluent_bit(CP_TOLERATION, "/host/var/log/containers/*.log") + apiserver_pod(*KUBEADM_AUDIT)
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(text))
    assert f.status is Status.FAIL and "no input of it reads /var/log/kubernetes/audit/audit.log" in f.message
    # the config names the path, but the directory is not mounted into the container
    text = fluent_bit(CP_TOLERATION, "/var/log/kubernetes/audit/*.log", mount="/var/log/containers") + \
        apiserver_pod(*KUBEADM_AUDIT)
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(text))
    assert f.status is Status.FAIL


def test_stdout_audit_log_is_read_through_container_logs():
    text = fluent_bit("[{operator: Exists}]", "/host/var/log/containers/*.log") + apiserver_pod(
        "--audit-policy-file=/p.yaml", "--audit-log-path=-")
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(text))
    assert f.status is Status.PASS


def test_shipping_webhook_unknown_path_and_absent_collector():
    webhook = apiserver_pod("--audit-policy-file=/p.yaml", "--audit-webhook-config-file=/etc/k/wh.yaml")
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(webhook))
    assert f.status is Status.PASS and "webhook" in f.message
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(fluent_bit(CP_TOLERATION, "/x/*.log")))
    assert f.status is Status.NOT_ASSESSED and "audit log path is unknown" in f.message
    calico = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: calico, namespace: kube-system}\nspec:\n" \
             "  template:\n    spec:\n      containers: [{name: c, image: calico/node:v3}]\n"
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(calico))
    assert f.status is Status.FAIL and "no log collector" in f.message
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(EMPTY))
    assert f.status is Status.NOT_ASSESSED


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("/var/log/kubernetes/audit/*.log", "/var/log/kubernetes/audit/audit.log", True),
    ("/var/log/*.log", "/var/log/kubernetes/audit/audit.log", False),
    ("/var/log/**/*.log", "/var/log/kubernetes/audit/audit.log", True),
    ("/var/log/kubernetes/{audit,apiserver}/audit.lo?", "/var/log/kubernetes/audit/audit.log", True),
    ("/var/log/kubernetes/[ab]udit/audit.log", "/var/log/kubernetes/audit/audit.log", True),
])
def test_glob_semantics(pattern, path, expected):
    assert (glob_regex(pattern).match(path) is not None) is expected


# ---- retention --------------------------------------------------------------------------------------------
def configmap(name: str, key: str, body: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: logging}}\ndata:\n  {key}: |\n" + \
        textwrap.indent(textwrap.dedent(body), "    ") + "---\n"


LOKI = """\
auth_enabled: false
compactor: {working_directory: /data/compactor, retention_enabled: true, delete_request_store: s3}
schema_config: {configs: []}
limits_config:
  retention_period: %s
"""


def test_loki_retention_pass_fail_and_disabled():
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("loki", "config.yaml", LOKI % "9600h")))
    assert f.status is Status.PASS and "400 days" in f.message
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("loki", "config.yaml", LOKI % "30d")))
    assert f.status is Status.FAIL and "30 days, below the minimum 365" in f.message
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("loki", "config.yaml", LOKI % "0s")))
    assert f.status is Status.PASS and "indefinitely" in f.message
    disabled = LOKI.replace("retention_enabled: true", "retention_enabled: false") % "30d"
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("loki", "config.yaml", disabled)))
    assert f.status is Status.NOT_ASSESSED and "deletes nothing" in f.message


def test_loki_stream_retention_shortens_it():
    body = LOKI % "400d" + "  retention_stream:\n" \
        "  - {selector: '{namespace=\"kube-system\"}', priority: 1, period: 24h}\n"
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("loki", "config.yaml", body)))
    assert f.status is Status.FAIL and "1 days" in f.message


def test_ilm_and_ism_policies():
    ilm = '{"policy": {"phases": {"hot": {"actions": {"rollover": {"max_age": "1d"}}}, ' \
          '"delete": {"min_age": "400d", "actions": {"delete": {}}}}}}\n'
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("es-ilm", "audit-ilm.json", ilm)))
    assert f.status is Status.PASS and "Elasticsearch ILM" in f.message
    ism = """\
    {"policy": {"description": "audit", "default_state": "hot", "states": [
      {"name": "hot", "actions": [], "transitions": [{"state_name": "delete", "conditions": {"min_index_age": "90d"}}]},
      {"name": "delete", "actions": [{"delete": {}}], "transitions": []}]}}
    """
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("os-ism", "audit-ism.json", ism)))
    assert f.status is Status.FAIL and "OpenSearch ISM" in f.message and "90 days" in f.message
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("os-ism", "audit-ism.json", ism)),
                    config={"logging": {"retention_days": 90}})
    assert f.status is Status.PASS


def test_attested_retention_and_no_evidence(tmp_path):
    ev = tmp_path / "evidence.yaml"
    ev.write_text("apiVersion: nis2kube.io/v1alpha1\nkind: Evidence\n"
                  "log_retention: {days: 400, system: OpenSearch ILM audit-400d, attested_by: j.doe, "
                  "date: 2026-11-01}\n")
    [f] = run_check("logging.retention", inventory_from_yaml(EMPTY), inputs={"evidence": str(ev)})
    assert f.status is Status.PASS and "attested" in f.message and f.resource is None
    [f] = run_check("logging.retention", inventory_from_yaml(EMPTY))
    assert f.status is Status.NOT_ASSESSED and "no retention evidence" in f.message


@pytest.mark.parametrize(("text", "days"), [
    ("8760h", 365), ("1y", 365), ("2w3d", 17), ("400d", 400), ("36h", 1.5), ("0", 0), ("forever", None), ("10x", None),
])
def test_durations(text, days):
    value = duration_days(text)
    assert (value is None) if days is None else math.isclose(value, days)


def test_factory_hall_story(tmp_path):
    from conftest import EXAMPLE
    from nis2kube.inventory import from_paths

    if not EXAMPLE.is_dir():
        pytest.skip("examples/factory-hall not present")
    inv = from_paths([str(EXAMPLE)])
    [shipped] = run_check("logging.audit-log-shipped", inv)
    assert shipped.status is Status.FAIL and "fluent-bit does not run on control-plane nodes" in shipped.message
    rotation = by_status(run_check("logging.audit-log-rotation", inv))
    assert any("--audit-log-maxage" in m for m in rotation.get(Status.FAIL, []))
    findings = run_check("logging.audit-policy-secrets", inv, inputs=policy_inputs(tmp_path, LEAKY_POLICY))
    assert any(f.status is Status.FAIL for f in findings)


def test_configmaps_that_only_mention_the_audit_api_are_not_policies():
    webhook = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: audit-webhook, namespace: kube-system}\ndata:\n" \
              "  notes: 'events arrive as audit.k8s.io/v1 EventList from the Policy in /etc/kubernetes'\n" \
              "  kubeconfig: |\n    apiVersion: v1\n    kind: Config\n    clusters: []\n"
    [f] = run_check("logging.audit-policy-secrets", inventory_from_yaml(webhook))
    assert f.status is Status.NOT_ASSESSED and f.message.startswith("the audit policy is not in the input")


def test_dropping_reads_is_tuning_but_dropping_changes_is_not(tmp_path):
    reads_dropped = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n" \
                    "- {level: None, verbs: [get, list, watch]}\n- {level: Metadata}\n"
    [f] = run_check("logging.audit-policy-default", inventory_from_yaml(EMPTY),
                    inputs=policy_inputs(tmp_path, reads_dropped))
    assert f.status is Status.PASS
    writes_dropped = reads_dropped.replace("[get, list, watch]", "[patch]")
    [f] = run_check("logging.audit-policy-default", inventory_from_yaml(EMPTY),
                    inputs=policy_inputs(tmp_path, writes_dropped))
    assert f.status is Status.FAIL and "patch nis2kube.probe.example/widgets" in f.message


# ---- upstream semantics: pflag, kube-apiserver audit options, Loki and Elasticsearch durations ---------------
def test_space_separated_stdout_path_is_a_value_not_a_bare_flag():
    inv = inventory_from_yaml(apiserver_pod("--audit-policy-file=/p.yaml", "--audit-log-path", "-"))
    [f] = run_check("logging.audit-log-rotation", inv)
    assert f.status is Status.NOT_ASSESSED and "stdout" in f.message
    [f] = run_check("logging.audit-log-enabled", inv)
    assert f.status is Status.PASS and "--audit-log-path=-" in f.message


def test_flag_parsing_follows_pflag():
    argv = ["--authorization-mode=Node", "--authorization-mode", "RBAC", "--audit_log_maxage=30",
            "--audit-log-maxbackup", "-1", "--profiling", "--", "--ignored=1"]
    assert parse_flag_values(argv)["authorization-mode"] == ["Node", "RBAC"]
    assert parse_flags(argv) == {"authorization-mode": "RBAC", "audit-log-maxage": "30",
                                 "audit-log-maxbackup": "-1", "profiling": "true"}


def test_other_programs_name_their_bool_flags_and_values_are_strconv_parse_bool():
    argv = ["--run-firewall", "false", "--profiling", "false"]
    assert parse_flag_values(argv, bool_flags={"run-firewall"}) == {"run-firewall": ["true"], "profiling": ["false"]}
    assert [parse_bool(v) for v in ("1", "T", "True", "0", "f", "FALSE", "yes", "tRuE", "")] == [
        True, True, True, False, False, False, None, None, None]


def test_repeated_slice_flag_values_are_appended():
    inv = inventory_from_yaml(apiserver_pod("--authorization-mode=Node", "--authorization-mode=RBAC"))
    [server] = apiservers(ScanContext(inv))
    assert server.list("authorization-mode") == ["Node", "RBAC"] and server.get("authorization-mode") == "RBAC"


def test_rotation_numbers_are_go_integers_and_negatives_are_refused():
    inv = inventory_from_yaml(apiserver_pod("--audit-policy-file=/p.yaml", "--audit-log-path=/a.log",
                                            "--audit-log-maxage=030", "--audit-log-maxbackup=-1",
                                            "--audit-log-maxsize=0x80"))
    found = by_status(run_check("logging.audit-log-rotation", inv))
    assert "--audit-log-maxage=24 is below the minimum 30" in found[Status.FAIL]  # leading 0: octal
    assert any(m.startswith("--audit-log-maxbackup=-1 is negative") for m in found[Status.FAIL])
    assert "--audit-log-maxsize=128 (minimum 100)" in found[Status.PASS]
    # strconv.ParseInt's int64 range: kube-apiserver refuses a larger value as it refuses a word
    huge = inventory_from_yaml(apiserver_pod("--audit-policy-file=/p.yaml", "--audit-log-path=/a.log",
                                             "--audit-log-maxage=99999999999999999999"))
    assert "--audit-log-maxage=99999999999999999999 is not a number" in by_status(
        run_check("logging.audit-log-rotation", huge))[Status.FAIL]


def test_webhook_without_policy_file_ships_nothing():
    text = fluent_bit(CP_TOLERATION, "/host/var/log/containers/*.log") + apiserver_pod(
        "--audit-webhook-config-file=/etc/k/wh.yaml", "--audit-log-path=/var/log/kubernetes/audit/audit.log")
    [f] = run_check("logging.audit-log-shipped", inventory_from_yaml(text))
    assert f.status is Status.FAIL and "webhook" not in f.message


@pytest.mark.parametrize(("text", "days"), [
    ("1d12h", 1.5), ("12h1d", None), ("1.5d", None), ("400micros", None), ("1h1h", None), ("", None), ("300y", None),
])
def test_loki_durations_are_prometheus_durations(text, days):
    value = duration_days(text)
    assert (value is None) if days is None else math.isclose(value, days)


@pytest.mark.parametrize(("text", "days"), [
    ("400d", 400), ("30D", 30), ("00", 0), ("720h", 30), ("1440m", 1), ("86400000ms", 1),
    ("86400000000micros", 1), ("30M", None), ("1y", None), ("2w", None), ("1.5d", None), ("1d12h", None),
])
def test_elasticsearch_time_values(text, days):
    value = es_time_days(text)
    assert (value is None) if days is None else math.isclose(value, days)


def test_loki_fractional_retention_is_not_a_duration():
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("loki", "config.yaml", LOKI % "400.5d")))
    assert f.status is Status.NOT_ASSESSED and "is not a duration" in f.message


def test_ilm_min_age_in_years_is_not_an_elasticsearch_time_value():
    ilm = '{"policy": {"phases": {"delete": {"min_age": "%s", "actions": {"delete": {}}}}}}\n'
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("es-ilm", "ilm.json", ilm % "1y")))
    assert f.status is Status.NOT_ASSESSED
    [f] = run_check("logging.retention", inventory_from_yaml(configmap("es-ilm", "ilm.json", ilm % "400D")))
    assert f.status is Status.PASS and "400 days" in f.message


def test_dropping_deletecollection_of_secrets_is_a_coverage_gap(tmp_path):
    text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n" \
           "- {level: None, verbs: [deletecollection]}\n- {level: Metadata}\n"
    found = by_status(run_check("logging.audit-policy-coverage", inventory_from_yaml(EMPTY),
                                inputs=policy_inputs(tmp_path, text)))
    assert any("reads and changes of Secrets are not logged: deletecollection secrets" in m
               for m in found[Status.FAIL])
