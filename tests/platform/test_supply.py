"""supply.*: SBOM formats from the corpus, SBOM coverage per image, signature-verification policy coverage."""

from __future__ import annotations

import json

import pytest

from conftest import (
    KYVERNO_HOOK,
    SHARED,
    engine_webhook,
    inventory_from_yaml,
    kyverno_configmap,
    needs_corpora,
    run_check,
    statuses,
)
from conftest import image_deployment as deployment
from nis2kube.checks.registry import InputError
from nis2kube.findings import Status
from nis2kube.sbom import load_sbom, load_sboms, parse_sbom

CORPORA = SHARED / "corpora"
SYFT = CORPORA / "sbom-examples" / "syft" / "syft" / "format"
TRIVY_SBOM = CORPORA / "trivy-golden" / "integration" / "testdata" / "fixtures" / "sbom"
OPERATOR = CORPORA / "trivy-operator" / "docs-extracted-examples"
CENTOS = "ghcr.io/aquasecurity/trivy-test-images:centos-7"

pytestmark = needs_corpora


# ---- SBOM reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, fmt, components", [
    (SYFT / "cyclonedxjson/testdata/identify/1.6.json", "CycloneDX 1.6 JSON", 1),
    (SYFT / "cyclonedxxml/testdata/identify/1.3.xml", "CycloneDX 1.3 XML", 1),
    (SYFT / "spdxjson/testdata/identify/2.3.json", "SPDX-2.3 JSON", 2),
    (SYFT / "spdxjson/testdata/identify/3.0.json", "SPDX-3 JSON-LD", 1),
    (SYFT / "spdxtagvalue/testdata/identify/2.2.sbom", "SPDX-2.2 tag-value", 2),
    (SYFT / "testdata/alpine-syft.json", "syft JSON", 14),
    (CORPORA / "sbom-examples/cyclonedx-bom-examples/SBOM/laravel-7.12.0/bom.1.4.json", "CycloneDX 1.4 JSON", 62),
])
def test_formats_are_detected_from_content(path, fmt, components):
    sbom = load_sbom(str(path))
    assert (sbom.format, sbom.components) == (fmt, components)


@pytest.mark.parametrize("name", ["centos-7-cyclonedx.json", "centos-7-spdx.json", "centos-7-spdx.txt",
                                  "centos-7-cyclonedx.intoto.jsonl"])
def test_trivy_sboms_name_their_image(name):
    sbom = load_sbom(str(TRIVY_SBOM / name))
    assert "ghcr.io/aquasecurity/trivy-test-images" in {i.name for i in sbom.images} or name.endswith("jsonl")
    assert sbom.purls and all(p.startswith("pkg:") for p in sbom.purls)


def test_in_toto_subject_gives_the_digest_with_docker_hub_alias_normalised():
    sbom = load_sbom(str(TRIVY_SBOM / "centos-7-cyclonedx.intoto.jsonl"))
    digests = {(i.name, i.digest) for i in sbom.images if i.digest}
    assert ("docker.io/library/centos",
            "sha256:be65f488b7764ad3638f236b7b515b3678369a5124c47b8d32916d6487418ea4") in digests


def test_syft_image_sbom_names_user_input_and_manifest_digest():
    sbom = load_sbom(str(SYFT / "testdata/alpine-syft.json"))
    assert {(i.name, i.tag) for i in sbom.images} >= {("docker.io/library/alpine", "latest")}
    assert any(i.digest and i.digest.startswith("sha256:69704ef3") for i in sbom.images)


@pytest.mark.parametrize("path", [SYFT / "cyclonedxjson/testdata/bad-sbom", SYFT / "spdxtagvalue/testdata/bad-sbom",
                                  SYFT / "spdxjson/testdata/spdx/bad/bad-sbom"])
def test_bad_sboms_are_refused_naming_the_file(path):
    with pytest.raises(InputError, match="not an SBOM") as err:
        load_sbom(str(path))
    assert str(path) in str(err.value)


def test_xml_with_entities_is_refused_and_other_json_is_not_an_sbom(tmp_path):
    bomb = b'<?xml version="1.0"?><!DOCTYPE bom [<!ENTITY a "aaaa">]><bom xmlns="http://cyclonedx.org/schema/bom/1.5">&a;</bom>'
    with pytest.raises(InputError, match="DTD"):
        parse_sbom(bomb, "bomb.xml")
    with pytest.raises(InputError, match="JSON but not an SBOM"):
        parse_sbom(b'{"apiVersion": "v1"}', "x.json")
    with pytest.raises(InputError, match="not a CycloneDX BOM"):
        parse_sbom(b"<html/>", "x.html")
    with pytest.raises(InputError, match="cannot read"):
        load_sbom(str(tmp_path / "missing.json"))


SYFT_DIGEST = "sha256:2731251dc34951c0e50fcc643b4c5f74922dad1a5d98f302b504cf46cd5d9368"


def test_syft_cyclonedx_container_component_names_the_image_by_its_version_digest(tmp_path):
    """syft writes the image's manifest digest as metadata.component.version (type container), no purl."""
    golden = SYFT / "cyclonedxjson/testdata/snapshot/TestCycloneDxImageEncoder.golden"
    assert load_sbom(str(golden)).images == ()  # "sha256:redacted" is no digest
    sbom = tmp_path / "bom.json"
    sbom.write_text(golden.read_text().replace('"version": "sha256:redacted"', f'"version": "{SYFT_DIGEST}"'))
    inv = inventory_from_yaml(deployment("a", f"registry.plant.example/ot/user-image-input@{SYFT_DIGEST}"))
    [finding] = run_check("supply.sbom-coverage", inv, inputs={"sbom": [str(sbom)]})
    assert finding.status is Status.PASS and finding.evidence["matched_by"] == "digest"


def test_spdx_container_package_names_the_image_by_its_checksum():
    doc = json.loads((SYFT / "spdxjson/testdata/snapshot/TestSPDXJSONImageEncoder.golden").read_text())
    [container] = [p for p in doc["packages"] if p.get("primaryPackagePurpose") == "CONTAINER"]
    del container["externalRefs"], container["versionInfo"]  # only the SHA256 checksum is left to say it
    sbom = parse_sbom(json.dumps(doc).encode(), "spdx")
    assert [i.digest for i in sbom.images] == [SYFT_DIGEST]


def test_image_equals_file_names_an_sbom_that_does_not_say_its_image():
    path = str(SYFT / "cyclonedxjson/testdata/identify/1.6.json")
    [sbom] = load_sboms([f"registry.plant.example/ot/line-analytics:5.1.0={path}"])
    assert [i.name for i in sbom.images] == ["registry.plant.example/ot/line-analytics"]


# ---- supply.sbom-coverage -----------------------------------------------------------------------------


def test_sbom_coverage_per_container():
    inv = inventory_from_yaml(deployment("hist", CENTOS, "redis:7"))
    findings = run_check("supply.sbom-coverage", inv, inputs={"sbom": [str(TRIVY_SBOM / "centos-7-spdx.txt")]})
    assert statuses(findings) == {"Deployment/default/hist[c0]": Status.PASS,
                                  "Deployment/default/hist[c1]": Status.FAIL}
    assert "SPDX-2.2 tag-value" in findings[0].message


def test_sbom_coverage_from_operator_sbom_report():
    pod = """
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver-kind-control-plane
  namespace: kube-system
  labels: {component: kube-apiserver}
spec: {containers: [{name: kube-apiserver, image: "k8s.gcr.io/kube-apiserver:v1.21.1"}]}
---
"""
    inv = inventory_from_yaml(pod + (OPERATOR / "sbom-report-0.yaml").read_text())
    [finding] = run_check("supply.sbom-coverage", inv)
    assert finding.status is Status.PASS and "SbomReport" in finding.message


def test_no_sbom_evidence_is_not_assessed_and_unnamed_sbom_says_how_to_name_it():
    inv = inventory_from_yaml(deployment("a", "nginx:1.27"))
    [none] = run_check("supply.sbom-coverage", inv)
    assert none.status is Status.NOT_ASSESSED and "--sbom" in none.message
    unnamed = str(SYFT / "cyclonedxjson/testdata/identify/1.6.json")
    [hint] = run_check("supply.sbom-coverage", inv, inputs={"sbom": [unnamed]})
    assert hint.status is Status.NOT_ASSESSED and "IMAGE=FILE" in hint.message


# ---- supply.signature-policy --------------------------------------------------------------------------


def verify_policy(refs: list[str], action: str = "Enforce", kind: str = "ClusterPolicy", namespace: str = "",
                  extra: str = "") -> str:
    meta_ns = f", namespace: {namespace}" if namespace else ""
    return f"""
apiVersion: kyverno.io/v1
kind: {kind}
metadata: {{name: verify-signatures{meta_ns}}}
spec:
  validationFailureAction: {action}
  rules:
    - name: cosign
      match:
        any:
          - resources: {{kinds: [Pod]}}
{extra}
      verifyImages:
        - imageReferences: [{", ".join(refs)}]
          attestors: [{{entries: [{{keys: {{publicKeys: "-----BEGIN PUBLIC KEY-----"}}}}]}}]
---
"""


def test_enforced_policy_covers_registry_and_others_fail():
    inv = inventory_from_yaml(deployment("api", "registry.plant.example/mes/api:7.3.2", "quay.io/x/y:1")
                              + verify_policy(['"registry.plant.example/*"']))
    findings = run_check("supply.signature-policy", inv)
    assert statuses(findings) == {"Deployment/default/api[c0]": Status.PASS, "Deployment/default/api[c1]": Status.FAIL}
    assert "quay.io" in findings[1].message


def test_audit_mode_is_reported_as_not_refusing():
    inv = inventory_from_yaml(deployment("api", "registry.plant.example/mes/api:7.3.2")
                              + verify_policy(['"registry.plant.example/*"'], action="Audit"))
    [finding] = run_check("supply.signature-policy", inv)
    assert finding.status is Status.FAIL and "Audit mode" in finding.message


def test_per_rule_failure_action_overrides_the_policy_default():
    policy = verify_policy(['"registry.plant.example/*"'], action="Audit").replace(
        "- imageReferences:", "- failureAction: Enforce\n          imageReferences:")
    inv = inventory_from_yaml(deployment("api", "registry.plant.example/mes/api:7.3.2") + policy)
    assert [f.status for f in run_check("supply.signature-policy", inv)] == [Status.PASS]


@pytest.mark.parametrize("image", ["nginx:1.27", "docker.io/library/nginx:1.27"])
def test_docker_hub_images_match_docker_io_patterns(image):
    inv = inventory_from_yaml(deployment("web", image) + verify_policy(['"docker.io/library/nginx*"']))
    assert [f.status for f in run_check("supply.signature-policy", inv)] == [Status.PASS]


@pytest.mark.parametrize("image, pattern", [
    # Kyverno keeps index.docker.io as written: a docker.io pattern does not reach it
    ("index.docker.io/nginx:1.27", "docker.io/library/nginx*"),
    # the image is always matched with its registry and its tag (or digest): no bare or tagless spelling
    ("nginx:1.27", "nginx*"),
    ("registry.plant.example/mes/api:7.3.2", "registry.plant.example/mes/api"),
    # with a digest Kyverno matches `repo@digest`, the tag is not part of it
    ("registry.plant.example/mes/api:7.3.2@sha256:" + "a" * 64, "registry.plant.example/mes/api:7.*"),
])
def test_kyverno_matches_only_its_own_spelling_of_the_image(image, pattern):
    inv = inventory_from_yaml(deployment("api", image) + verify_policy([f'"{pattern}"']))
    [finding] = run_check("supply.signature-policy", inv)
    assert finding.status is Status.FAIL and "no signature-verification policy" in finding.message


def test_kyverno_refs_keep_the_host_as_written_and_default_only_a_missing_one():
    from nis2kube.checks.supply import kyverno_refs

    assert kyverno_refs("nginx") == ("docker.io/nginx:latest", "docker.io/library/nginx:latest")
    assert kyverno_refs("index.docker.io/nginx:1.27") == ("index.docker.io/nginx:1.27",
                                                          "index.docker.io/library/nginx:1.27")
    assert kyverno_refs("reg:5000/a/b:1@sha256:" + "c" * 64) == ("reg:5000/a/b@sha256:" + "c" * 64,)


def test_containers_sharing_namespace_and_image_share_one_verdict():
    docs = "".join(deployment(n, "registry.plant.example/a:1", namespace=ns)
                   for n, ns in (("a", "mes"), ("b", "mes"), ("c", "scada")))
    exclude = "      exclude:\n        any:\n          - resources: {namespaces: [scada]}"
    inv = inventory_from_yaml(docs + verify_policy(['"registry.plant.example/*"'], extra=exclude))
    assert statuses(run_check("supply.signature-policy", inv)) == {
        "Deployment/mes/a[c0]": Status.PASS, "Deployment/mes/b[c0]": Status.PASS,
        "Deployment/scada/c[c0]": Status.FAIL}


def test_kyverno_skip_is_matched_on_the_same_spelling():
    skip = '- skipImageReferences: ["docker.io/*"]\n          imageReferences:'
    policy = verify_policy(['"index.docker.io/*"']).replace("- imageReferences:", skip)
    inv = inventory_from_yaml(deployment("a", "index.docker.io/library/busybox:1.36") + policy)
    assert [f.status for f in run_check("supply.signature-policy", inv)] == [Status.PASS]


def image_validating_policy(match: str) -> str:
    return f"""
apiVersion: policies.kyverno.io/v1alpha1
kind: ImageValidatingPolicy
metadata: {{name: verify-all}}
spec:
  validationActions: [Deny]
  matchConstraints: {{resourceRules: [{{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}]}}
{match}
  attestors: [{{name: cosign, cosign: {{key: {{data: "-----BEGIN PUBLIC KEY-----"}}}}}}]
  validations:
    - expression: "images.containers.map(i, verifyImageSignatures(i, [attestors.cosign])).all(e, e > 0)"
---
"""


def test_image_validating_policy_without_match_image_references_covers_every_image():
    inv = inventory_from_yaml(deployment("a", "quay.io/x/y:1") + image_validating_policy(""))
    assert [f.status for f in run_check("supply.signature-policy", inv)] == [Status.PASS]
    scoped = image_validating_policy('  matchImageReferences: [{glob: "ghcr.io/*"}]')
    inv = inventory_from_yaml(deployment("a", "quay.io/x/y:1") + scoped)
    assert [f.status for f in run_check("supply.signature-policy", inv)] == [Status.FAIL]


def test_namespaced_policy_and_exclusions_limit_coverage():
    docs = (deployment("a", "registry.plant.example/a:1", namespace="mes")
            + deployment("b", "registry.plant.example/b:1", namespace="scada")
            + verify_policy(['"registry.plant.example/*"'], kind="Policy", namespace="mes"))
    assert statuses(run_check("supply.signature-policy", inventory_from_yaml(docs))) == {
        "Deployment/mes/a[c0]": Status.PASS, "Deployment/scada/b[c0]": Status.FAIL}
    exclude = "      exclude:\n        any:\n          - resources: {namespaces: [scada]}"
    docs = (deployment("a", "registry.plant.example/a:1", namespace="mes")
            + deployment("b", "registry.plant.example/b:1", namespace="scada")
            + verify_policy(['"registry.plant.example/*"'], extra=exclude))
    assert statuses(run_check("supply.signature-policy", inventory_from_yaml(docs))) == {
        "Deployment/mes/a[c0]": Status.PASS, "Deployment/scada/b[c0]": Status.FAIL}


def test_skip_image_references_are_not_covered():
    skip = '- skipImageReferences: ["registry.plant.example/mirror/*"]\n          imageReferences:'
    policy = verify_policy(['"registry.plant.example/*"']).replace("- imageReferences:", skip)
    inv = inventory_from_yaml(deployment("a", "registry.plant.example/mirror/busybox:1.36") + policy)
    assert [f.status for f in run_check("supply.signature-policy", inv)] == [Status.FAIL]


def test_sigstore_policy_applies_only_to_opted_in_namespaces():
    cip = """
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: plant}
spec:
  images: [{glob: "registry.plant.example/**"}]
  authorities: [{keyless: {url: "https://fulcio.sigstore.dev"}}]
---
apiVersion: v1
kind: Namespace
metadata: {name: mes, labels: {policy.sigstore.dev/include: "true"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: scada}
---
"""
    docs = (deployment("a", "registry.plant.example/mes/a:1", namespace="mes")
            + deployment("b", "registry.plant.example/b:1", namespace="scada") + cip)
    assert statuses(run_check("supply.signature-policy", inventory_from_yaml(docs))) == {
        "Deployment/mes/a[c0]": Status.PASS, "Deployment/scada/b[c0]": Status.FAIL}


def cluster_image_policy(glob: str) -> str:
    return f"""
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {{name: plant}}
spec:
  images: [{{glob: "{glob}"}}]
  authorities: [{{keyless: {{url: "https://fulcio.sigstore.dev"}}}}]
---
apiVersion: v1
kind: Namespace
metadata: {{name: mes, labels: {{policy.sigstore.dev/include: "true"}}}}
---
"""


@pytest.mark.parametrize("image, glob, status", [
    # `*` stops at `/`; `**` crosses it
    ("registry.plant.example/mes/api:7.3.2", "registry.plant.example/*", Status.FAIL),
    ("registry.plant.example/mes/api:7.3.2", "registry.plant.example/**", Status.PASS),
    # go-containerregistry names Docker Hub index.docker.io, with library/ for official images
    ("nginx:1.27", "index.docker.io/library/*", Status.PASS),
    ("nginx:1.27", "docker.io/library/*", Status.FAIL),
    ("nginx:1.27", "*", Status.PASS),
    ("bitnami/redis:7", "*/*", Status.PASS),
    # characters outside policy-controller's glob alphabet make the glob invalid
    ("registry.plant.example/mes/api:7.3.2", "registry.plant.example/mes/ap?:*", Status.FAIL),
])
def test_sigstore_glob_semantics(image, glob, status):
    inv = inventory_from_yaml(deployment("a", image, namespace="mes") + cluster_image_policy(glob))
    assert [f.status for f in run_check("supply.signature-policy", inv)] == [status]


def test_no_policy_engine_in_an_offline_dump_is_not_assessed_but_kyverno_without_verify_fails():
    [finding] = run_check("supply.signature-policy", inventory_from_yaml(deployment("a", "nginx:1.27")))
    assert finding.status is Status.NOT_ASSESSED
    validate_only = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: require-limits}
spec:
  validationFailureAction: Enforce
  rules: [{name: limits, match: {any: [{resources: {kinds: [Pod]}}]}, validate: {pattern: {spec: {}}}}]
---
"""
    findings = run_check("supply.signature-policy", inventory_from_yaml(deployment("a", "nginx:1.27") + validate_only))
    assert [f.status for f in findings] == [Status.FAIL]


def test_validation_failure_action_overrides_per_namespace():
    overrides = "\n  validationFailureActionOverrides: [{action: Audit, namespaces: [lab-*]}]"
    policy = verify_policy(['"registry.plant.example/*"']).replace(
        "  validationFailureAction: Enforce", "  validationFailureAction: Enforce" + overrides)
    docs = (deployment("a", "registry.plant.example/a:1", namespace="mes")
            + deployment("b", "registry.plant.example/b:1", namespace="lab-3") + policy)
    findings = run_check("supply.signature-policy", inventory_from_yaml(docs))
    assert statuses(findings) == {"Deployment/mes/a[c0]": Status.PASS, "Deployment/lab-3/b[c0]": Status.FAIL}
    assert "Audit mode" in findings[0].message or "Audit mode" in findings[1].message


# ---- one reading of enforcement with admission.* -------------------------------------------------------


def test_kyverno_actions_are_case_sensitive_like_admission():
    """Kyverno's Enforce() is true for `Enforce` and the legacy `enforce` only: ENFORCE reports."""
    inv = inventory_from_yaml(deployment("api", "registry.plant.example/mes/api:7.3.2")
                              + verify_policy(['"registry.plant.example/*"'], action="ENFORCE"))
    [finding] = run_check("supply.signature-policy", inv)
    assert finding.status is Status.FAIL and "Audit mode" in finding.message
    [admission] = run_check("admission.signature-enforced", inv)  # judged per namespace
    assert admission.status is Status.FAIL and "Audit mode" in admission.message


def test_kyverno_override_by_namespace_selector_and_rule_action_from_any_entry():
    overrides = ("\n  validationFailureActionOverrides:"
                 "\n    - {action: Audit, namespaceSelector: {matchLabels: {zone: lab}}}")
    policy = verify_policy(['"registry.plant.example/*"']).replace(
        "  validationFailureAction: Enforce", "  validationFailureAction: Enforce" + overrides)
    namespaces = """
apiVersion: v1
kind: Namespace
metadata: {name: mes, labels: {zone: plant}}
---
apiVersion: v1
kind: Namespace
metadata: {name: lab-3, labels: {zone: lab}}
---
"""
    docs = (deployment("a", "registry.plant.example/a:1", namespace="mes")
            + deployment("b", "registry.plant.example/b:1", namespace="lab-3") + policy + namespaces)
    assert statuses(run_check("supply.signature-policy", inventory_from_yaml(docs))) == {
        "Deployment/mes/a[c0]": Status.PASS, "Deployment/lab-3/b[c0]": Status.FAIL}
    # the action belongs to the rule: one entry set to Enforce makes the whole rule enforce, overrides and all
    second = ('        - imageReferences: ["quay.io/*"]\n          failureAction: Enforce\n'
              '          attestors: [{entries: [{keys: {publicKeys: "-----BEGIN PUBLIC KEY-----"}}]}]\n---\n')
    docs = deployment("b", "registry.plant.example/b:1", namespace="lab-3") + namespaces + \
        policy.rstrip().removesuffix("---") + second
    assert [f.status for f in run_check("supply.signature-policy", inventory_from_yaml(docs))] == [Status.PASS]


@pytest.mark.parametrize("mode, status", [("enforce", Status.PASS), ("warn", Status.FAIL), ("Enforce", Status.FAIL)])
def test_sigstore_mode_is_exactly_enforce_or_warn(mode, status):
    """policy-controller accepts spec.mode `enforce` (default) or `warn` only; `Enforce` is refused."""
    docs = deployment("a", "registry.plant.example/mes/a:1", namespace="mes") + \
        cluster_image_policy("registry.plant.example/**").replace("spec:\n", f"spec:\n  mode: {mode}\n", 1)
    assert [f.status for f in run_check("supply.signature-policy", inventory_from_yaml(docs))] == [status]


def _with_match(match: str) -> str:
    return verify_policy(['"registry.plant.example/*"']).replace("        any:\n          - resources: {kinds: [Pod]}",
                                                                 match)


@pytest.mark.parametrize(
    ("match", "covered"),
    [
        # `all`: every filter must take the pod in; two namespace lists are an AND, not the last one
        ("        all:\n          - resources: {kinds: [Pod], namespaces: [mes]}\n"
         "          - resources: {kinds: [Pod], namespaces: [scada]}", set()),
        ("        all:\n          - resources: {kinds: [Pod], namespaces: ['m*']}\n"
         "          - resources: {kinds: [Pod], namespaces: ['?es']}", {"mes"}),
        # a rule on one controller kind does not check the pods of others
        ("        any:\n          - resources: {kinds: [CronJob]}", set()),
        # a rule on some pods only (by name) is no namespace's coverage
        ("        any:\n          - resources: {kinds: [Pod], names: ['api-*']}", set()),
        ("        resources: {kinds: [Pod], namespaces: [scada]}", {"scada"}),  # the legacy single filter
    ],
)
def test_kyverno_match_blocks_read_as_admission_reads_them(match, covered):
    docs = "".join(deployment(n, "registry.plant.example/a:1", namespace=n) for n in ("mes", "scada"))
    policy = _with_match(match)
    assert match in policy
    found = statuses(run_check("supply.signature-policy", inventory_from_yaml(docs + policy)))
    assert {k.split("/")[1] for k, v in found.items() if v is Status.PASS} == covered


def test_kyverno_webhook_namespace_selector_limits_signature_coverage():
    docs = "".join(deployment(n, "registry.plant.example/a:1", namespace=n) for n in ("mes", "scada"))
    hook = engine_webhook(*KYVERNO_HOOK, namespace_selector="{matchExpressions: [{key: kubernetes.io/metadata.name,"
                          " operator: NotIn, values: [scada]}]}")
    found = statuses(run_check("supply.signature-policy", inventory_from_yaml(
        docs + verify_policy(['"registry.plant.example/*"']) + hook)))
    assert found == {"Deployment/mes/mes[c0]": Status.PASS, "Deployment/scada/scada[c0]": Status.FAIL}


def test_kyverno_resource_filters_limit_signature_coverage():
    docs = "".join(deployment(n, "registry.plant.example/a:1", namespace=n) for n in ("mes", "scada"))
    found = statuses(run_check("supply.signature-policy", inventory_from_yaml(
        docs + verify_policy(['"registry.plant.example/*"']) + kyverno_configmap("[*,sca*,*]"))))
    assert found == {"Deployment/mes/mes[c0]": Status.PASS, "Deployment/scada/scada[c0]": Status.FAIL}


@pytest.mark.parametrize(("constraints", "covered"), [
    ('{resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]}',
     {"mes", "scada"}),
    ('{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: mes}}, resourceRules: [{apiGroups: [""], '
     'apiVersions: [v1], operations: [CREATE], resources: [pods]}]}', {"mes"}),
    ('{resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]}',
     set()),
])  # fmt: skip
def test_image_validating_policy_match_constraints_narrow_it(constraints, covered):
    docs = "".join(deployment(n, "quay.io/x/y:1", namespace=n) for n in ("mes", "scada"))
    policy = image_validating_policy("").replace(
        '{resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]}',
        constraints)
    found = statuses(run_check("supply.signature-policy", inventory_from_yaml(docs + policy)))
    assert {k.split("/")[1] for k, v in found.items() if v is Status.PASS} == covered
    conditioned = policy.replace("  validations:", "  matchConditions: [{name: humans, expression: 'true'}]\n"
                                                   "  validations:")
    found = statuses(run_check("supply.signature-policy", inventory_from_yaml(docs + conditioned)))
    assert Status.PASS not in found.values()


def test_a_verify_images_rule_on_a_controller_kind_covers_that_kind_only():
    docs = deployment("api", "registry.plant.example/a:1", namespace="mes") + """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: mes}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c0, image: "registry.plant.example/a:1"}]}
---
"""
    policy = verify_policy(['"registry.plant.example/*"']).replace("kinds: [Pod]", "kinds: [Deployment]")
    assert statuses(run_check("supply.signature-policy", inventory_from_yaml(docs + policy))) == {
        "Deployment/mes/api[c0]": Status.PASS, "StatefulSet/mes/db[c0]": Status.FAIL}
