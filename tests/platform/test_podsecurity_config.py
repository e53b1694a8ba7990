"""Pod Security defaults from the API server's AdmissionConfiguration (--admission-config)."""

from __future__ import annotations

import pytest

from conftest import inventory_from_yaml, run_check
from nis2kube.checks.registry import InputError
from nis2kube.findings import Status
from nis2kube.podsecurity_config import load_admission_config

NAMESPACES = "".join(
    f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {labels}}}\n---\n"
    for name, labels in [("mes", "{}"), ("scada", "{pod-security.kubernetes.io/enforce: privileged}"),
                         ("historian", "{}"), ("lab", "{pod-security.kubernetes.io/enforce: baseline}")]
)

# RKE2's CIS profile, in the shape its docs give
RKE2_CIS = """apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1beta1
    kind: PodSecurityConfiguration
    defaults: {enforce: "restricted", enforce-version: "latest", audit: "restricted", warn: "restricted"}
    exemptions:
      usernames: []
      runtimeClasses: []
      namespaces: [kube-system, cis-operator-system, tigera-operator, historian]
"""


def non_root(tmp_path, config_text: str | None, name: str = "admission.yaml") -> dict:
    inputs = {}
    if config_text is not None:
        path = tmp_path / name
        path.write_text(config_text)
        inputs["admission_config"] = str(path)
    findings = run_check("admission.non-root-enforced", inventory_from_yaml(NAMESPACES), inputs=inputs)
    return {f.resource.name: f for f in findings}


def test_defaults_cover_unlabelled_namespaces_labels_win_and_exemptions_escape(tmp_path):
    found = non_root(tmp_path, RKE2_CIS)
    assert found["mes"].status is Status.PASS and "PodSecurity default enforce=restricted" in found["mes"].message
    assert found["scada"].status is Status.FAIL  # its own enforce label (privileged) wins over the default
    # baseline enforce label, but the restricted audit/warn defaults still apply: reported, not refused
    assert found["lab"].status is Status.FAIL and "only reports in Warn mode" in found["lab"].message
    assert found["historian"].status is Status.FAIL and "exempt from Pod Security Admission" in found[
        "historian"].message
    # without the file every unlabelled namespace is privileged, as in kube-apiserver
    assert non_root(tmp_path, None)["mes"].status is Status.FAIL


def test_podsecurity_path_is_read_beside_the_admission_configuration(tmp_path):
    inline = RKE2_CIS.split("  configuration:\n")[1]
    psa = "\n".join(line[4:] for line in inline.splitlines())
    (tmp_path / "psa.yaml").write_text(psa)
    by_path = RKE2_CIS.split("  configuration:")[0] + "  path: /etc/rancher/rke2/psa.yaml\n"
    assert non_root(tmp_path, by_path)["mes"].status is Status.PASS
    relative = by_path.replace("/etc/rancher/rke2/psa.yaml", "psa.yaml")
    assert non_root(tmp_path, relative)["mes"].status is Status.PASS
    (tmp_path / "psa.yaml").unlink()
    with pytest.raises(InputError, match="put a copy at"):
        load_admission_config(str(tmp_path / "admission.yaml"))


def test_a_bare_podsecurity_configuration_and_no_podsecurity_entry(tmp_path):
    bare = tmp_path / "psa.yaml"
    bare.write_text("apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\n"
                    "defaults: {enforce: baseline}\n")
    assert load_admission_config(str(bare)).levels == {"enforce": "baseline", "audit": "privileged",
                                                       "warn": "privileged"}
    other = tmp_path / "other.yaml"
    other.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\n"
                     "plugins: [{name: EventRateLimit, path: erl.yaml}]\n")
    assert set(load_admission_config(str(other)).levels.values()) == {"privileged"}


@pytest.mark.parametrize(("text", "error"), [
    (RKE2_CIS.replace('enforce: "restricted"', 'enforce: "Restricted"'), "is not one of"),
    (RKE2_CIS.replace("namespaces: [kube-system", "namespaces: [1"), "list of strings"),
    ("kind: Policy\napiVersion: audit.k8s.io/v1\n", "not an AdmissionConfiguration"),
    ("plugins: [", "invalid YAML"),
])  # fmt: skip
def test_files_kube_apiserver_refuses_are_input_errors(tmp_path, text, error):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=error):
        load_admission_config(str(path))


def test_the_check_is_not_assessed_when_the_file_is_unusable(tmp_path):
    from nis2kube.checks.registry import ScanContext
    from nis2kube.engine import run_checks

    path = tmp_path / "bad.yaml"
    path.write_text("kind: Nope\n")
    result = run_checks(ScanContext(inventory_from_yaml(NAMESPACES), inputs={"admission_config": str(path)}),
                        include=["admission.non-root-enforced"])
    assert {f.status for f in result.findings} == {Status.NOT_ASSESSED}
    assert "--admission-config" in result.findings[0].message


def test_a_restricted_default_counts_as_an_admission_controller(tmp_path):
    path = tmp_path / "admission.yaml"
    path.write_text(RKE2_CIS)
    unlabelled = "apiVersion: v1\nkind: Namespace\nmetadata: {name: mes}\n"
    assert {f.status for f in run_check("admission.controller-present", inventory_from_yaml(unlabelled))} == {
        Status.FAIL}
    [f] = run_check("admission.controller-present", inventory_from_yaml(unlabelled),
                    inputs={"admission_config": str(path)})
    assert f.status is Status.PASS and "default enforce=restricted" in f.message


def test_an_admission_configuration_the_api_server_reads_but_the_scan_lacks(tmp_path):
    from conftest import apiserver_pod

    inv = inventory_from_yaml(NAMESPACES + apiserver_pod("--admission-control-config-file=/etc/rancher/psa.yaml"))
    found = {f.resource.name: f for f in run_check("admission.non-root-enforced", inv)}
    assert found["mes"].status is Status.NOT_ASSESSED and "--admission-config" in found["mes"].message
    assert found["scada"].status is Status.FAIL  # its own enforce label decides, whatever the defaults
    path = tmp_path / "psa.yaml"
    path.write_text(RKE2_CIS)
    given = {f.resource.name: f.status for f in run_check("admission.non-root-enforced", inv,
                                                          inputs={"admission_config": str(path)})}
    assert given["mes"] is Status.PASS


@pytest.mark.parametrize("labels", ["{pod-security.kubernetes.io/warn: restricted}",
                                    "{pod-security.kubernetes.io/audit: baseline}"])
def test_only_the_enforce_label_decides_without_the_admission_configuration(labels):
    from conftest import apiserver_pod

    ns = f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: mes, labels: {labels}}}\n---\n"
    inv = inventory_from_yaml(ns + apiserver_pod("--admission-control-config-file=/etc/rancher/psa.yaml"))
    [f] = run_check("admission.non-root-enforced", inv)
    assert f.status is Status.NOT_ASSESSED and "--admission-config" in f.message
