"""vulns.*: Trivy JSON goldens and Trivy Operator reports from the corpus, mapped to running containers."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest

from conftest import SHARED, inventory_from_yaml, needs_corpora, run_check, statuses
from conftest import image_deployment as deployment
from nis2kube.checks.registry import InputError, ScanContext
from nis2kube.engine import run_checks
from nis2kube.findings import Severity, Status
from nis2kube.images import canonical_image
from nis2kube.inventory.workloads import workloads
from nis2kube.trivy import ScanReport, _timestamp, index, load_trivy_reports, top_level_key

CORPORA = SHARED / "corpora"
GOLDEN = CORPORA / "trivy-golden" / "integration" / "testdata"
OPERATOR = CORPORA / "trivy-operator"
AS_OF = dt.date(2026, 11, 22)

pytestmark = needs_corpora


def operator_report_text() -> str:
    return (OPERATOR / "docs-extracted-examples" / "vulnerability-report-0.yaml").read_text()


def golden(name: str) -> str:
    return str(GOLDEN / f"{name}.json.golden")


def test_operator_report_fails_only_on_fixable_vulnerabilities():
    inv = inventory_from_yaml(deployment("nginx", "nginx:1.16") + operator_report_text())
    [finding] = run_check("vulns.fixable", inv)
    assert finding.status is Status.FAIL
    assert finding.severity is Severity.CRITICAL
    assert finding.container == "c0"
    # CVE-2018-25009 is CRITICAL too, but has no fixed version: it is not a patching finding
    assert finding.evidence["vulnerabilities"] == ["CVE-2019-20367"]
    assert "0.9.1-2+deb10u1" in finding.message


@pytest.mark.parametrize("image", ["docker.io/library/nginx:1.16", "index.docker.io/library/nginx:1.16",
                                   "registry-1.docker.io/nginx:1.16", "library/nginx:1.16"])
def test_registry_defaulting_matches_every_spelling_of_docker_hub(image):
    inv = inventory_from_yaml(deployment("nginx", image) + operator_report_text())
    assert [f.status for f in run_check("vulns.fixable", inv)] == [Status.FAIL]


def test_other_tag_is_not_assessed_not_passed():
    inv = inventory_from_yaml(deployment("nginx", "nginx:1.27") + operator_report_text())
    [finding] = run_check("vulns.fixable", inv)
    assert finding.status is Status.NOT_ASSESSED
    assert "nginx:1.27" in finding.message


def test_golden_fixable_ids_equal_what_the_golden_says():
    """The failing CVE ids are exactly the golden's HIGH+ vulnerabilities that have a FixedVersion."""
    doc = json.loads(pathlib.Path(golden("debian-buster")).read_text())
    expected = sorted({v["VulnerabilityID"] for r in doc["Results"] for v in r.get("Vulnerabilities", [])
                       if v["Severity"] in ("HIGH", "CRITICAL") and v.get("FixedVersion")})
    inv = inventory_from_yaml(deployment("hist", "ghcr.io/aquasecurity/trivy-test-images:debian-buster"))
    [finding] = run_check("vulns.fixable", inv, inputs={"trivy_report": [golden("debian-buster")]})
    assert finding.status is Status.FAIL
    assert sorted(finding.evidence["vulnerabilities"]) == expected == ["CVE-2019-18224"]


def test_threshold_is_configurable():
    inv = inventory_from_yaml(deployment("a", "ghcr.io/aquasecurity/trivy-test-images:alpine-310"))
    inputs = {"trivy_report": [golden("alpine-310")]}
    # alpine-310 has only MEDIUM vulnerabilities, all fixable
    assert [f.status for f in run_check("vulns.fixable", inv, inputs=inputs)] == [Status.PASS]
    [fail] = run_check("vulns.fixable", inv, {"vulns": {"severity_threshold": "medium"}}, inputs)
    assert fail.status is Status.FAIL and "4 MEDIUM fixable" in fail.message
    assert fail.severity is Severity.MEDIUM
    assert fail.evidence["vulnerabilities"] == ["CVE-2019-1549", "CVE-2019-1551"]
    with pytest.raises(InputError, match="severity_threshold"):
        run_check("vulns.fixable", inv, {"vulns": {"severity_threshold": "urgent"}}, inputs)


def test_digest_match_beats_tag_and_unknown_digest_is_not_matched():
    report = str(OPERATOR / "pkg/plugins/trivy/testdata/fixture/vulnerability_report.json")
    digest = "sha256:72c42ed48c3a2db31b7dafe17d275b634664a708d901ec9fd57b1529280f01fb"
    inv = inventory_from_yaml(deployment("by-digest", f"alpine@{digest}")
                              + deployment("by-tag", "alpine:3.10.2")
                              + deployment("other", "alpine@sha256:" + "0" * 64))
    findings = run_check("vulns.fixable", inv, inputs={"trivy_report": [report]})
    got = {f.resource.name: f for f in findings}
    assert got["by-digest"].status is Status.PASS and got["by-tag"].status is Status.PASS
    assert got["other"].status is Status.NOT_ASSESSED


def test_a_tag_match_is_refused_when_both_sides_know_different_digests(tmp_path):
    """The scan names nginx:1.25 and its RepoDigest; a container pinned to another digest of that tag runs
    another image, which this scan says nothing about."""
    doc = json.loads(pathlib.Path(golden("debian-buster")).read_text())
    scanned = "sha256:" + "1" * 64
    doc["Metadata"]["RepoDigests"] = [f"ghcr.io/aquasecurity/trivy-test-images@{scanned}"]
    report = tmp_path / "report.json"
    report.write_text(json.dumps(doc))
    image = "ghcr.io/aquasecurity/trivy-test-images:debian-buster"
    inv = inventory_from_yaml(deployment("same", f"{image}@{scanned}") + deployment("tag", image)
                              + deployment("moved", f"{image}@sha256:{'2' * 64}"))
    got = {f.resource.name: f for f in run_check("vulns.fixable", inv, inputs={"trivy_report": [str(report)]})}
    assert got["same"].evidence["matched_by"] == "digest" and got["tag"].evidence["matched_by"] == "tag"
    assert got["moved"].status is Status.NOT_ASSESSED


def test_operator_labels_map_a_replicaset_report_to_its_deployment_for_mirrored_images():
    """The report names ReplicaSet nginx-6d4cf56db6; the Deployment pulls the same repository via a mirror."""
    inv = inventory_from_yaml(deployment("nginx", "mirror.plant.example/library/nginx:1.16").replace("c0", "nginx")
                              + operator_report_text())
    [finding] = run_check("vulns.fixable", inv)
    assert finding.status is Status.FAIL
    assert finding.evidence["matched_by"] == "operator labels"


def test_long_workload_name_is_read_from_the_annotation_beside_the_name_hash_label():
    """A ReplicaSet name longer than a label value allows: the operator labels its hash, annotates the name."""
    deploy = "historian-aggregation-service-for-the-plant-floor-line-7"
    replicaset = f"{deploy}-6d4cf56db6"
    report = operator_report_text().replace(
        "    trivy-operator.resource.name: nginx-6d4cf56db6\n",
        "    trivy-operator.resource.name-hash: 5d7c9c6b8f\n",
    ).replace("  labels:\n", f"  annotations:\n    trivy-operator.resource.name: {replicaset}\n  labels:\n", 1)
    inv = inventory_from_yaml(deployment(deploy, "mirror.plant.example/library/nginx:1.16").replace("c0", "nginx")
                              + report)
    [finding] = run_check("vulns.fixable", inv)
    assert finding.status is Status.FAIL and finding.evidence["matched_by"] == "operator labels"


def test_operator_digest_beside_a_tag_is_the_image_id_not_a_repo_digest():
    """The operator fills artifact.digest with Trivy's Metadata.ImageID (the config digest) when the workload
    names a tag: it never equals the manifest digest a container is pinned to, and must not veto the match."""
    config_digest = "sha256:" + "c" * 64
    report = operator_report_text().replace("    tag: '1.16'\n", f"    tag: '1.16'\n    digest: {config_digest}\n")
    image = "mirror.plant.example/library/nginx:1.16@sha256:" + "e" * 64
    inv = inventory_from_yaml(deployment("nginx", image).replace("c0", "nginx") + report)
    [finding] = run_check("vulns.fixable", inv)
    assert finding.status is Status.FAIL and finding.evidence["matched_by"] == "operator labels"


ROLLOUT = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop, uid: ro-web}
spec: {template: {spec: {containers: [{name: nginx, image: "mirror.plant.example/library/nginx:1.16"}]}}}
---
"""
CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, namespace: shop, uid: cm-web}
---
"""


@pytest.mark.parametrize("owner, owner_ref", [
    # an Argo Rollout controls the ReplicaSet, but is no workload kind: the ReplicaSet is the workload
    (ROLLOUT, "{apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: web, uid: ro-web, controller: true}"),
    # a plain owner reference (no controller: true) does not manage the ReplicaSet
    (CONFIGMAP, "{apiVersion: v1, kind: ConfigMap, name: cm, uid: cm-web}"),
], ids=["rollout-controller", "plain-configmap-owner"])
def test_operator_labels_stop_where_the_workload_view_stops(owner, owner_ref):
    """The report labelled with the ReplicaSet lands on the ReplicaSet, which is what the workload view reports."""
    replicaset = f"""
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-6f7d9c
  namespace: shop
  uid: rs-web
  ownerReferences: [{owner_ref}]
spec: {{template: {{spec: {{containers: [{{name: nginx, image: "mirror.plant.example/library/nginx:1.16"}}]}}}}}}
---
"""
    report = operator_report_text().replace("nginx-6d4cf56db6", "web-6f7d9c").replace("namespace: default\n",
                                                                                       "namespace: shop\n")
    inv = inventory_from_yaml(owner + replicaset + report)
    assert [w.ref.display for w in workloads(inv)] == ["ReplicaSet/shop/web-6f7d9c"]
    assert top_level_key(inv, "ReplicaSet", "shop", "web-6f7d9c") == ("ReplicaSet", "shop", "web-6f7d9c")
    [finding] = run_check("vulns.fixable", inv)
    assert finding.resource.display == "ReplicaSet/shop/web-6f7d9c" and finding.status is Status.FAIL
    assert finding.evidence["matched_by"] == "operator labels"


@pytest.mark.parametrize("digest, status", [("sha256:" + "a" * 64, Status.FAIL), ("sha256:abc", Status.NOT_ASSESSED),
                                            ("sha256:" + "A" * 64, Status.NOT_ASSESSED)])
def test_an_invalid_digest_matches_nothing_by_digest(digest, status):
    """Container and report name the same invalid digest: it names no image, so neither the digest index nor the
    operator labels of the same workload may match it; a valid one matches by digest."""
    report = operator_report_text().replace("    tag: '1.16'\n", f"    digest: {digest}\n")
    inv = inventory_from_yaml(deployment("nginx", f"nginx@{digest}").replace("c0", "nginx") + report)
    [finding] = run_check("vulns.fixable", inv)
    assert finding.status is status
    assert status is Status.NOT_ASSESSED or finding.evidence["matched_by"] == "digest"
    # nor does an invalid digest without a tag stand for :latest
    latest = index([ScanReport("scan.json", (canonical_image("nginx:latest"),), None)])
    assert latest.find(canonical_image("nginx@sha256:abc")) == ([], "")


def test_a_tag_scan_naming_another_digest_of_the_repository_does_not_match_a_pinned_image():
    old, new = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    moved = ScanReport("scan.json", (canonical_image("nginx:1.27"), canonical_image(f"nginx@{old}")), None)
    other_repo = ScanReport("other.json", (canonical_image("nginx:1.27"), canonical_image(f"httpd@{old}")), None)
    scans = index([moved, other_repo])
    assert scans.find(canonical_image(f"nginx:1.27@{old}")) == ([moved, other_repo], "digest")
    assert scans.find(canonical_image(f"nginx:1.27@{new}")) == ([other_repo], "tag")


def test_label_mapping_ignores_a_report_of_a_previous_image():
    inv = inventory_from_yaml(deployment("nginx", "mirror.plant.example/library/nginx:1.27").replace("c0", "nginx")
                              + operator_report_text())
    assert [f.status for f in run_check("vulns.fixable", inv)] == [Status.NOT_ASSESSED]


def test_no_scan_results_at_all_is_one_not_assessed():
    inv = inventory_from_yaml(deployment("a", "nginx:1.27") + deployment("b", "redis:7"))
    for check_id in ("vulns.fixable", "vulns.report-age", "vulns.scan-coverage"):
        [finding] = run_check(check_id, inv)
        assert finding.status is Status.NOT_ASSESSED and finding.resource is None
        assert "--trivy-report" in finding.message


def test_invalid_upstream_report_is_a_load_problem_not_a_report():
    text = (OPERATOR / "docs-extracted-examples" / "vulnerability-report-1.yaml").read_text()
    inv = inventory_from_yaml(deployment("nginx", "nginx:1.16") + text)
    assert inv.problems and not inv.objects("VulnerabilityReport", "aquasecurity.github.io")
    assert [f.status for f in run_check("vulns.fixable", inv)] == [Status.NOT_ASSESSED]


@pytest.mark.parametrize("name, message", [("helm_testchart", "names no container image"),
                                           ("npm", "names no container image")])
def test_non_image_reports_are_refused_with_the_file_name(name, message):
    with pytest.raises(InputError, match=message) as err:
        load_trivy_reports([golden(name)])
    assert name in str(err.value)


def test_bad_report_files_become_not_assessed_in_the_engine(tmp_path):
    bad = tmp_path / "report.json"
    bad.write_text("{not json")
    inv = inventory_from_yaml(deployment("a", "nginx:1.27"))
    result = run_checks(ScanContext(inv, inputs={"trivy_report": [str(bad)]}), include=["vulns.*"])
    assert {f.status for f in result.findings} == {Status.NOT_ASSESSED}
    assert all(str(bad) in f.message and "not JSON" in f.message for f in result.findings)
    (tmp_path / "v1.json").write_text('{"SchemaVersion": 1, "Results": []}')
    with pytest.raises(InputError, match="SchemaVersion 2"):
        load_trivy_reports([str(tmp_path / "v1.json")])


def test_trivy_k8s_report_resources_are_read(tmp_path):
    doc = {"ClusterName": "plant", "Resources": [
        {"Namespace": "mes", "Kind": "Deployment", "Name": "api",
         "Metadata": [{"RepoTags": ["registry.plant.example/mes/api:7.3.2"]}],
         "Results": [{"Target": "x", "Vulnerabilities": [
             {"VulnerabilityID": "CVE-2024-1", "PkgName": "openssl", "InstalledVersion": "3.0.1",
              "FixedVersion": "3.0.2", "Severity": "HIGH"}]}]},
        {"Namespace": "mes", "Kind": "Role", "Name": "r", "Results": [{"Target": "cfg", "Misconfigurations": []}]},
    ]}
    path = tmp_path / "k8s.json"
    path.write_text(json.dumps(doc))
    [report] = load_trivy_reports([str(path)])
    assert report.workload == ("Deployment", "mes", "api", "")
    assert report.images[0].name == "registry.plant.example/mes/api"


def test_report_age_uses_the_scan_timestamp_and_the_configured_limit():
    inv = inventory_from_yaml(deployment("h", "ghcr.io/aquasecurity/trivy-test-images:debian-buster"))
    inputs = {"trivy_report": [golden("debian-buster")], "as_of": AS_OF}
    [stale] = run_check("vulns.report-age", inv, inputs=inputs)
    assert stale.status is Status.FAIL and "2021-08-25" in stale.message
    fresh = {**inputs, "as_of": dt.date(2021, 8, 30)}
    assert [f.status for f in run_check("vulns.report-age", inv, inputs=fresh)] == [Status.PASS]
    late = {**inputs, "as_of": dt.date(2021, 9, 4)}
    assert [f.status for f in run_check("vulns.report-age", inv, inputs=late)] == [Status.FAIL]
    assert [f.status for f in run_check("vulns.report-age", inv, {"vulns": {"max_report_age_days": 30}},
                                        late)] == [Status.PASS]


def test_operator_report_without_timestamp_is_not_assessed_for_age():
    inv = inventory_from_yaml(deployment("nginx", "nginx:1.16") + operator_report_text())
    assert [f.status for f in run_check("vulns.report-age", inv, inputs={"as_of": AS_OF})] == [Status.NOT_ASSESSED]


def test_scan_coverage_counts_images_once():
    inv = inventory_from_yaml(deployment("a", "nginx:1.16", "redis:7") + deployment("b", "nginx:1.16")
                              + operator_report_text())
    [finding] = run_check("vulns.scan-coverage", inv)
    assert finding.status is Status.FAIL
    assert finding.evidence["images"] == 2 and finding.evidence["scanned"] == 1
    assert finding.evidence["unscanned"] == ["redis:7"]
    inv = inventory_from_yaml(deployment("a", "nginx:1.16") + operator_report_text())
    assert [f.status for f in run_check("vulns.scan-coverage", inv)] == [Status.PASS]


def test_pods_owned_by_a_missing_replicaset_are_one_workload():
    pods = "".join(f"""
apiVersion: v1
kind: Pod
metadata:
  name: nginx-6d4cf56db6-{i}
  namespace: default
  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: nginx-6d4cf56db6, controller: true, uid: u1}}]
spec: {{containers: [{{name: nginx, image: "nginx:1.16"}}]}}
---
""" for i in range(3))
    inv = inventory_from_yaml(pods + operator_report_text())
    assert statuses(run_check("vulns.fixable", inv)) == {"ReplicaSet/default/nginx-6d4cf56db6[nginx]": Status.FAIL}


def test_canonical_image_and_timestamps():
    assert canonical_image("index.docker.io/nginx").name == "docker.io/library/nginx"
    for host in ("registry-1.docker.io", "Registry.Hub.Docker.com"):
        assert canonical_image(f"{host}/nginx:1.27").name == "docker.io/library/nginx"
    assert canonical_image("quay.io/prometheus/prometheus:v3.1.0").registry == "quay.io"
    assert _timestamp("2021-08-25T12:20:30.000000005Z") == dt.datetime(2021, 8, 25, 12, 20, 30, tzinfo=dt.UTC)
    assert _timestamp("garbage") is None
