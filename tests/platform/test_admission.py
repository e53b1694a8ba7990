"""admission.*: enforcement modes read with each engine's precedence, per namespace; failurePolicy; exclusions."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from conftest import KYVERNO_HOOK, engine_webhook, inventory_from_yaml, kyverno_configmap, run_check, statuses
from nis2kube.findings import Status

NAMESPACES = "".join(
    f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {labels}}}\n---\n"
    for name, labels in [("mes", "{zone: it}"), ("scada", "{zone: ot}"), ("historian", "{zone: ot}"),
                         ("kube-system", "{}")]
)


def kyverno(name: str, spec_extra: str = "", validate: str = "", kind: str = "ClusterPolicy", namespace: str = "",
            match: str = "{any: [{resources: {kinds: [Pod]}}]}", exclude: str = "") -> str:
    """A Kyverno policy built from YAML snippets (JSON is YAML, so the document needs no indentation care)."""
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    body = yaml.safe_load("{" + validate + "}")
    rule = {"name": f"{name}-rule", "match": yaml.safe_load(match), "validate": {"message": f"policy {name}", **body}}
    if exclude:
        rule["exclude"] = yaml.safe_load(exclude)
    spec = {**(yaml.safe_load("{" + spec_extra + "}") or {}), "rules": [rule]}
    return json.dumps({"apiVersion": "kyverno.io/v1", "kind": kind, "metadata": meta, "spec": spec}) + "\n---\n"


REGISTRY = 'pattern: {spec: {containers: [{image: "registry.plant.example/* | ghcr.io/plant/*"}]}}'
NONROOT = "pattern: {spec: {securityContext: {runAsNonRoot: true}}}"
LIMITS = 'pattern: {spec: {containers: [{resources: {limits: {memory: "?*", cpu: "?*"}}}]}}'
LATEST = 'pattern: {spec: {containers: [{image: "!*:latest"}]}}'


def result(check_id: str, text: str) -> dict:
    return statuses(run_check(check_id, inventory_from_yaml(NAMESPACES + text)))


def test_kyverno_policy_level_enforce_and_default_audit():
    enforce = kyverno("restrict-registries", "validationFailureAction: Enforce", validate=REGISTRY)
    assert result("admission.registry-enforced", enforce) == {
        "Namespace/mes": Status.PASS, "Namespace/scada": Status.PASS, "Namespace/historian": Status.PASS}
    findings = run_check("admission.registry-enforced", inventory_from_yaml(NAMESPACES + kyverno(
        "restrict-registries", validate=REGISTRY)))
    assert all(f.status is Status.FAIL and "only reports in Audit mode" in f.message for f in findings)


def test_lowercase_legacy_action_and_rule_level_failure_action_wins():
    legacy = kyverno("r", "validationFailureAction: enforce", validate=REGISTRY)
    assert set(result("admission.registry-enforced", legacy).values()) == {Status.PASS}
    rule_audit = kyverno("r", "validationFailureAction: Enforce", validate=REGISTRY + ", failureAction: Audit")
    assert set(result("admission.registry-enforced", rule_audit).values()) == {Status.FAIL}
    rule_enforce = kyverno("r", "validationFailureAction: Audit", validate=REGISTRY + ", failureAction: Enforce")
    assert set(result("admission.registry-enforced", rule_enforce).values()) == {Status.PASS}


def test_per_namespace_overrides():
    spec = "validationFailureAction: Enforce, validationFailureActionOverrides: [{action: Audit, namespaces: [sca*]}]"
    assert result("admission.registry-enforced", kyverno("r", spec, validate=REGISTRY)) == {
        "Namespace/mes": Status.PASS, "Namespace/scada": Status.FAIL, "Namespace/historian": Status.PASS}
    rule = REGISTRY + ", failureAction: Audit, failureActionOverrides: " \
        "[{action: Enforce, namespaceSelector: {matchLabels: {zone: ot}}}]"
    assert result("admission.registry-enforced", kyverno("r", validate=rule)) == {
        "Namespace/mes": Status.FAIL, "Namespace/scada": Status.PASS, "Namespace/historian": Status.PASS}


def test_match_and_exclude_scope():
    by_selector = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                          match="{any: [{resources: {kinds: [Pod], namespaceSelector: {matchLabels: {zone: ot}}}}]}")
    assert result("admission.non-root-enforced", by_selector) == {
        "Namespace/mes": Status.FAIL, "Namespace/scada": Status.PASS, "Namespace/historian": Status.PASS}
    excluded = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                       exclude="{any: [{resources: {namespaces: [historian]}}]}")
    assert result("admission.non-root-enforced", excluded)["Namespace/historian"] is Status.FAIL
    # excluding a user group is not a namespace exclusion
    by_user = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                      exclude="{any: [{clusterRoles: [cluster-admin]}]}")
    assert set(result("admission.non-root-enforced", by_user).values()) == {Status.PASS}
    # a rule that only matches Deployments, or only some users, does not cover the namespace's Pods
    partial = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                      match="{any: [{resources: {kinds: [Pod]}, subjects: [{kind: User, name: dev}]}]}")
    assert set(result("admission.non-root-enforced", partial).values()) == {Status.FAIL}


def test_namespaced_kyverno_policy_and_background_only():
    own = kyverno("r", "validationFailureAction: Enforce", validate=LIMITS, kind="Policy", namespace="mes")
    assert result("admission.limits-enforced", own) == {
        "Namespace/mes": Status.PASS, "Namespace/scada": Status.FAIL, "Namespace/historian": Status.FAIL}
    background = kyverno("r", "validationFailureAction: Enforce, admission: false", validate=LIMITS)
    assert set(result("admission.limits-enforced", background).values()) == {Status.FAIL}


def test_registry_by_deny_conditions():
    deny = ('deny: {conditions: {any: [{key: "{{ images.containers.*.registry }}", operator: AnyNotIn, '
            'value: [registry.plant.example]}]}}')
    assert set(result("admission.registry-enforced", kyverno("r", "validationFailureAction: Enforce",
                                                             validate=deny)).values()) == {Status.PASS}
    pull_secrets = 'pattern: {spec: {imagePullSecrets: [{name: "registry-credentials"}]}}'
    assert set(result("admission.registry-enforced", kyverno("r", "validationFailureAction: Enforce",
                                                             validate=pull_secrets)).values()) == {Status.FAIL}


def test_tag_policy_is_not_a_registry_policy_and_pod_security_restricted_is_non_root():
    assert set(result("admission.registry-enforced", kyverno("r", "validationFailureAction: Enforce",
                                                             validate=LATEST)).values()) == {Status.FAIL}
    pss = kyverno("pss", "validationFailureAction: Enforce",
                  validate="podSecurity: {level: restricted, version: latest}")
    assert set(result("admission.non-root-enforced", pss).values()) == {Status.PASS}
    baseline = kyverno("pss", "validationFailureAction: Enforce",
                       validate="podSecurity: {level: baseline, version: latest}")
    assert set(result("admission.non-root-enforced", baseline).values()) == {Status.FAIL}


VERIFY = textwrap.dedent("""\
    apiVersion: kyverno.io/v1
    kind: ClusterPolicy
    metadata: {name: verify-signatures}
    spec:
      webhookConfiguration: {failurePolicy: Fail}
      rules:
      - name: cosign
        match: {any: [{resources: {kinds: [Pod]}}]}
        verifyImages:
        - imageReferences: ["registry.plant.example/*"]
          failureAction: %s
          attestors:
          - entries:
            - keys: {publicKeys: "-----BEGIN PUBLIC KEY-----\\nMFkw...\\n-----END PUBLIC KEY-----"}
    ---
    """)


def test_verify_images_enforce_and_audit():
    assert set(result("admission.signature-enforced", VERIFY % "Enforce").values()) == {Status.PASS}
    assert set(result("admission.signature-enforced", VERIFY % "Audit").values()) == {Status.FAIL}


def test_psa_labels_count_for_non_root_only_when_restricted():
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: mes, labels: " \
           "{pod-security.kubernetes.io/enforce: restricted}}\n---\n" \
           "apiVersion: v1\nkind: Namespace\nmetadata: {name: scada, labels: " \
           "{pod-security.kubernetes.io/enforce: baseline, pod-security.kubernetes.io/warn: restricted}}\n"
    findings = {f.resource.name: f for f in run_check("admission.non-root-enforced", inventory_from_yaml(text))}
    assert findings["mes"].status is Status.PASS and "Pod Security Admission" in findings["mes"].message
    assert findings["scada"].status is Status.FAIL and "only reports in Warn mode" in findings["scada"].message


def gatekeeper(kind: str, name: str, spec: str) -> str:
    return f"apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: {kind}\nmetadata: {{name: {name}}}\n" \
           f"spec:\n{textwrap.indent(textwrap.dedent(spec), '  ')}---\n"


def test_gatekeeper_enforcement_actions_and_scope():
    deny = gatekeeper("K8sAllowedRepos", "repos", """\
        match:
          kinds: [{apiGroups: [""], kinds: [Pod]}]
          excludedNamespaces: [kube-*, historian]
        parameters: {repos: [registry.plant.example/]}
        """)
    assert result("admission.registry-enforced", deny) == {
        "Namespace/mes": Status.PASS, "Namespace/scada": Status.PASS, "Namespace/historian": Status.FAIL}
    dryrun = gatekeeper("K8sContainerLimits", "limits", "enforcementAction: dryrun\nparameters: {cpu: '2'}\n")
    assert set(result("admission.limits-enforced", dryrun).values()) == {Status.FAIL}
    scoped = gatekeeper("K8sPSPAllowedUsers", "users", """\
        enforcementAction: scoped
        scopedEnforcementActions:
        - action: deny
          enforcementPoints: [{name: validation.gatekeeper.sh}]
        parameters: {runAsUser: {rule: MustRunAsNonRoot}}
        """)
    assert set(result("admission.non-root-enforced", scoped).values()) == {Status.PASS}
    only_audit_point = scoped.replace("validation.gatekeeper.sh", "audit.gatekeeper.sh")
    assert set(result("admission.non-root-enforced", only_audit_point).values()) == {Status.FAIL}


VAP = textwrap.dedent("""\
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingAdmissionPolicy
    metadata: {name: require-limits}
    spec:
      failurePolicy: %s
      matchConstraints:
        resourceRules:
        - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}
      validations:
      - expression: "object.spec.containers.all(c, has(c.resources.limits) && has(c.resources.limits.memory))"
    ---
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingAdmissionPolicyBinding
    metadata: {name: require-limits-ot}
    spec:
      policyName: require-limits
      validationActions: %s
      matchResources: {namespaceSelector: {matchLabels: {zone: ot}}}
    ---
    """)


def test_vap_binding_actions_and_namespace_selector():
    assert result("admission.limits-enforced", VAP % ("Fail", "[Deny]")) == {
        "Namespace/mes": Status.FAIL, "Namespace/scada": Status.PASS, "Namespace/historian": Status.PASS}
    assert set(result("admission.limits-enforced", VAP % ("Fail", "[Warn, Audit]")).values()) == {Status.FAIL}
    unbound = VAP.split("---")[0] % "Fail"
    assert set(result("admission.limits-enforced", unbound).values()) == {Status.FAIL}
    [f] = run_check("admission.webhook-failure-policy", inventory_from_yaml(VAP % ("Ignore", "[Deny]")))
    assert f.status is Status.FAIL and "CEL error" in f.message


GATEKEEPER_WEBHOOK = textwrap.dedent("""\
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingWebhookConfiguration
    metadata: {name: gatekeeper-validating-webhook-configuration}
    webhooks:
    - name: validation.gatekeeper.sh
      failurePolicy: Ignore
      clientConfig: {service: {name: gatekeeper-webhook-service, namespace: gatekeeper-system}}
    - name: check-ignore-label.gatekeeper.sh
      failurePolicy: Fail
      clientConfig: {service: {name: gatekeeper-webhook-service, namespace: gatekeeper-system}}
    ---
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingWebhookConfiguration
    metadata: {name: cert-manager-webhook}
    webhooks:
    - name: webhook.cert-manager.io
      failurePolicy: Ignore
      clientConfig: {service: {name: cert-manager-webhook, namespace: cert-manager}}
    ---
    """)


def test_webhook_failure_policy():
    findings = run_check("admission.webhook-failure-policy", inventory_from_yaml(GATEKEEPER_WEBHOOK))
    assert [(f.status, f.evidence.get("webhook")) for f in findings] == [
        (Status.FAIL, "validation.gatekeeper.sh"), (Status.PASS, None)]  # cert-manager is not a policy engine
    ignore = kyverno("r", "validationFailureAction: Enforce, failurePolicy: Ignore", validate=REGISTRY)
    [f] = run_check("admission.webhook-failure-policy", inventory_from_yaml(NAMESPACES + ignore))
    assert f.status is Status.FAIL and "failurePolicy: Ignore" in f.message
    audit_only = kyverno("r", "validationFailureAction: Audit, failurePolicy: Ignore", validate=REGISTRY)
    [f] = run_check("admission.webhook-failure-policy", inventory_from_yaml(NAMESPACES + audit_only))
    assert f.status is Status.NOT_ASSESSED  # an Audit-mode policy blocks nothing, Ignore changes nothing
    [f] = run_check("admission.webhook-failure-policy", inventory_from_yaml(NAMESPACES))
    assert f.status is Status.NOT_ASSESSED


def test_namespace_exclusions():
    wide = kyverno("no-priv", "validationFailureAction: Enforce", validate=NONROOT,
                   exclude="{any: [{resources: {namespaces: [kube-system, scada, 'ot-*']}}]}")
    [f] = run_check("admission.namespace-exclusions", inventory_from_yaml(NAMESPACES + wide))
    assert f.status is Status.FAIL and "scada" in f.message and "ot-*" in f.message
    narrow = kyverno("no-priv", "validationFailureAction: Enforce", validate=NONROOT,
                     exclude="{any: [{resources: {namespaces: [kube-system]}}]}")
    [f] = run_check("admission.namespace-exclusions", inventory_from_yaml(NAMESPACES + narrow))
    assert f.status is Status.PASS
    [f] = run_check("admission.namespace-exclusions", inventory_from_yaml(NAMESPACES))
    assert f.status is Status.NOT_ASSESSED


def test_controller_present():
    [f] = run_check("admission.controller-present", inventory_from_yaml(NAMESPACES))
    assert f.status is Status.FAIL
    findings = run_check("admission.controller-present", inventory_from_yaml(
        NAMESPACES + VERIFY % "Enforce" + VAP % ("Fail", "[Deny]")))
    assert {f.evidence["engine"] for f in findings} == {"Kyverno", "ValidatingAdmissionPolicy"}
    assert all(f.status is Status.PASS for f in findings)


def test_system_namespaces_are_not_judged_and_no_namespaces_is_not_assessed():
    findings = run_check("admission.registry-enforced", inventory_from_yaml(NAMESPACES))
    assert "Namespace/kube-system" not in statuses(findings)
    [f] = run_check("admission.registry-enforced", inventory_from_yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n"))
    assert f.status is Status.NOT_ASSESSED


def test_factory_hall_story():
    from conftest import EXAMPLE
    from nis2kube.inventory import from_paths

    if not EXAMPLE.is_dir():
        pytest.skip("examples/factory-hall not present")
    inv = from_paths([str(EXAMPLE)])
    registry = run_check("admission.registry-enforced", inv)
    assert registry and all(f.status is Status.FAIL and "Audit mode" in f.message for f in registry)
    [exclusion] = run_check("admission.namespace-exclusions", inv)
    assert exclusion.status is Status.FAIL and "falco, scada" in exclusion.message
    non_root = statuses(run_check("admission.non-root-enforced", inv))
    assert non_root["Namespace/historian"] is Status.PASS and non_root["Namespace/scada"] is Status.FAIL


def test_live_scan_without_permission_to_list_policies_is_not_assessed():
    inv = inventory_from_yaml(NAMESPACES)
    inv.unlisted[("kyverno.io", "ClusterPolicy")] = "forbidden: cannot list clusterpolicies.kyverno.io"
    findings = run_check("admission.registry-enforced", inv)
    assert findings and all(f.status is Status.NOT_ASSESSED and "could not list ClusterPolicy" in f.message
                            for f in findings)
    [f] = run_check("admission.controller-present", inv)
    assert f.status is Status.NOT_ASSESSED
    psa = inventory_from_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: mes, labels: "
                              "{pod-security.kubernetes.io/enforce: restricted}}\n")
    psa.unlisted[("kyverno.io", "ClusterPolicy")] = "forbidden"
    [f] = run_check("admission.non-root-enforced", psa)
    assert f.status is Status.PASS  # what is seen to enforce still counts


def test_kyverno_override_without_namespaces_or_with_empty_selector_covers_every_namespace():
    # pkg/engine/api matchOverride and pkg/policycache: no namespaces and no selector is every namespace;
    # an empty selector {} matches every namespace (LabelSelectorAsSelector)
    blanket = kyverno("r", "validationFailureAction: Enforce, validationFailureActionOverrides: [{action: Audit}]",
                      validate=REGISTRY)
    assert set(result("admission.registry-enforced", blanket).values()) == {Status.FAIL}
    empty = kyverno("r", "validationFailureAction: Enforce, validationFailureActionOverrides: "
                    "[{action: Audit, namespaceSelector: {}}]", validate=REGISTRY)
    assert set(result("admission.registry-enforced", empty).values()) == {Status.FAIL}


def test_kyverno_enforce_override_needs_names_and_selector_and_rule_action_beats_policy_override():
    # the engine needs a matching name AND the selector when both are set; the policy cache needs either
    both = kyverno("r", "validationFailureAction: Audit, validationFailureActionOverrides: [{action: Enforce, "
                   "namespaces: [mes, scada], namespaceSelector: {matchLabels: {zone: ot}}}]", validate=REGISTRY)
    assert result("admission.registry-enforced", both) == {
        "Namespace/mes": Status.FAIL, "Namespace/scada": Status.PASS, "Namespace/historian": Status.FAIL}
    # the engine resolves the rule's own failureAction before the policy's overrides: Audit never blocks
    rule_audit = kyverno("r", "validationFailureActionOverrides: [{action: Enforce, namespaces: [scada]}]",
                         validate=REGISTRY + ", failureAction: Audit")
    assert set(result("admission.registry-enforced", rule_audit).values()) == {Status.FAIL}


def test_kyverno_action_values_are_case_sensitive():
    shouting = kyverno("r", "validationFailureAction: ENFORCE", validate=REGISTRY)  # not Enforce/enforce
    assert set(result("admission.registry-enforced", shouting).values()) == {Status.FAIL}


def test_verify_images_rule_action_and_attestations():
    doc = yaml.safe_load((VERIFY % "Enforce").split("\n---\n")[0])
    doc["spec"]["validationFailureActionOverrides"] = [{"action": "Audit", "namespaces": ["scada"]}]
    # a failureAction on a verifyImages entry is the rule's action: the policy's overrides do not apply
    assert set(result("admission.signature-enforced", json.dumps(doc) + "\n---\n").values()) == {Status.PASS}
    entry = doc["spec"]["rules"][0]["verifyImages"][0]
    entry["attestations"] = [{"type": "https://slsa.dev/provenance/v0.2", "attestors": entry.pop("attestors")}]
    assert set(result("admission.signature-enforced", json.dumps(doc) + "\n---\n").values()) == {Status.PASS}


def test_gatekeeper_action_case_kinds_groups_and_exemptions():
    repos = gatekeeper("K8sAllowedRepos", "repos", """\
        enforcementAction: %s
        match:
          kinds: [{apiGroups: [""]}]
        parameters: {repos: [registry.plant.example/]}
        """)
    assert set(result("admission.registry-enforced", repos % "deny").values()) == {Status.PASS}  # kinds: [] is all
    assert set(result("admission.registry-enforced", repos % "Deny").values()) == {Status.FAIL}  # unrecognized
    apps_only = repos.replace('apiGroups: [""]', "apiGroups: [apps], kinds: [Pod]") % "deny"
    assert set(result("admission.registry-enforced", apps_only).values()) == {Status.FAIL}
    config = textwrap.dedent("""\
        apiVersion: config.gatekeeper.sh/v1alpha1
        kind: Config
        metadata: {name: config, namespace: gatekeeper-system}
        spec:
          match:
          - {excludedNamespaces: [kube-*, scada], processes: [webhook]}
          - {excludedNamespaces: [mes], processes: [audit]}
        ---
        """)
    exempt = result("admission.registry-enforced", config + repos % "deny")
    assert (exempt["Namespace/mes"], exempt["Namespace/scada"]) == (Status.PASS, Status.FAIL)
    # the Config's exemptions escape every constraint: reported once, on the Config, not on each constraint
    second = repos.replace("name: repos", "name: repos-2") % "deny"
    exclusions = run_check("admission.namespace-exclusions", inventory_from_yaml(NAMESPACES + config + repos % "deny"
                                                                                 + second))
    [on_config] = [f for f in exclusions if f.resource.kind == "Config"]
    assert on_config.status is Status.FAIL and "scada" in on_config.message and "kube-*" in on_config.message
    assert all(f.resource.kind == "Config" for f in exclusions)
    # it is one Enforcement among the cached ones, applying nowhere and enforcing no control
    from nis2kube.checks.admission import enforcements

    [on_cfg] = [e for e in enforcements(inventory_from_yaml(config + repos % "deny" + second)) if not e.controls]
    assert on_cfg.excluded == ("kube-*", "scada") and on_cfg.action("scada", {}) is None
    ignored = NAMESPACES.replace("{name: historian, labels: {zone: ot}}",
                                 "{name: historian, labels: {zone: ot, admission.gatekeeper.sh/ignore: 'yes'}}")
    statuses_ = statuses(run_check("admission.registry-enforced", inventory_from_yaml(ignored + repos % "deny")))
    assert statuses_["Namespace/historian"] is Status.FAIL and statuses_["Namespace/mes"] is Status.PASS
    scoped_warn = gatekeeper("K8sAllowedRepos", "repos", """\
        enforcementAction: scoped
        scopedEnforcementActions:
        - {action: warn, enforcementPoints: [{name: "*"}]}
        parameters: {repos: [registry.plant.example/]}
        """)
    findings = run_check("admission.registry-enforced", inventory_from_yaml(NAMESPACES + scoped_warn))
    assert all(f.status is Status.FAIL and "Warn mode" in f.message for f in findings)


def test_vap_match_resources_narrowing():
    policy, binding = (VAP % ("Fail", "[Deny]")).split("---\n")[:2]
    every = policy.replace("resources: [pods]", "resources: ['*/*']")
    assert result("admission.limits-enforced", every + "---\n" + binding + "---\n")["Namespace/scada"] is Status.PASS
    excluded = policy.replace("  validations:", "    excludeResourceRules:\n"
                              "    - {apiGroups: [''], apiVersions: ['*'], operations: ['*'], resources: [pods]}\n"
                              "  validations:")
    assert set(result("admission.limits-enforced", excluded + "---\n" + binding + "---\n").values()) == {Status.FAIL}
    some_pods = binding.replace("matchResources: {", "matchResources: {objectSelector: {matchLabels: {tier: web}}, ")
    assert set(result("admission.limits-enforced", policy + "---\n" + some_pods + "---\n").values()) == {Status.FAIL}
    # matchConditions are CEL (typically "not a system: user", which spares every controller-made Pod)
    conditioned = policy.replace("  validations:", "  matchConditions:\n  - {name: humans-only, expression: "
                                 "\"!request.userInfo.username.startsWith('system:')\"}\n  validations:")
    assert set(result("admission.limits-enforced", conditioned + "---\n" + binding + "---\n").values()) == {
        Status.FAIL}


def test_v1beta1_webhook_without_failure_policy_fails_open():
    hook = textwrap.dedent("""\
        apiVersion: admissionregistration.k8s.io/%s
        kind: ValidatingWebhookConfiguration
        metadata: {name: gatekeeper-validating-webhook-configuration}
        webhooks:
        - name: validation.gatekeeper.sh
          clientConfig: {service: {name: gatekeeper-webhook-service, namespace: gatekeeper-system}}
        """)
    [f] = run_check("admission.webhook-failure-policy", inventory_from_yaml(hook % "v1beta1"))
    assert f.status is Status.FAIL  # v1beta1 defaults failurePolicy to Ignore
    [f] = run_check("admission.webhook-failure-policy", inventory_from_yaml(hook % "v1"))
    assert f.status is Status.PASS


def test_psa_invalid_enforce_level_evaluates_as_restricted():
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: mes, labels: " \
           "{pod-security.kubernetes.io/enforce: Restricted}}\n"  # not a valid level: PSA falls back to restricted
    [f] = run_check("admission.non-root-enforced", inventory_from_yaml(text))
    assert f.status is Status.PASS


def test_kyverno_exclude_with_empty_namespace_selector_excludes_everything():
    everything = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                         exclude="{any: [{resources: {namespaceSelector: {}}}]}")
    assert set(result("admission.non-root-enforced", everything).values()) == {Status.FAIL}


@pytest.mark.parametrize("mode, status", [(None, Status.PASS), ("enforce", Status.PASS), ("warn", Status.FAIL),
                                          ("Enforce", Status.FAIL)])
def test_sigstore_cluster_image_policy_mode(mode, status):
    """policy-controller takes spec.mode `enforce` (the default) or `warn`; its webhook refuses anything else."""
    spec = {"images": [{"glob": "**"}], "authorities": [{"keyless": {"url": "https://fulcio.sigstore.dev"}}]}
    cip = {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy", "metadata": {"name": "all"},
           "spec": {**spec, **({"mode": mode} if mode else {})}}
    namespace = ("apiVersion: v1\nkind: Namespace\n"
                 "metadata: {name: plc, labels: {policy.sigstore.dev/include: 'true'}}\n")
    inv = inventory_from_yaml(json.dumps(cip) + "\n---\n" + namespace)
    assert statuses(run_check("admission.signature-enforced", inv)) == {"Namespace/plc": status}


def test_kyverno_namespace_patterns_are_kyverno_wildcards_not_shell_globs():
    literal = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                      exclude="{any: [{resources: {namespaces: ['[hs]*']}}]}")
    assert set(result("admission.non-root-enforced", literal).values()) == {Status.PASS}
    one_char = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                       exclude="{any: [{resources: {namespaces: ['?es']}}]}")
    assert result("admission.non-root-enforced", one_char) == {
        "Namespace/mes": Status.FAIL, "Namespace/scada": Status.PASS, "Namespace/historian": Status.PASS}


def test_gatekeeper_excluded_namespaces_are_prefix_suffix_wildcards():
    constraint = gatekeeper("K8sAllowedRepos", "repos", """\
        match:
          kinds: [{apiGroups: [""], kinds: [Pod]}]
          excludedNamespaces: [kube-*, "*rian", "sc?da"]
        parameters: {repos: [registry.plant.example/]}
        """)
    assert result("admission.registry-enforced", constraint) == {
        "Namespace/mes": Status.PASS, "Namespace/scada": Status.PASS, "Namespace/historian": Status.FAIL}
    [f] = run_check("admission.namespace-exclusions", inventory_from_yaml(NAMESPACES + constraint))
    assert f.status is Status.FAIL and "historian" in f.message and "scada" not in f.message.split("pattern")[0]


def test_kyverno_exclude_of_every_pod_and_empty_exclude_filter():
    every_pod = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                        exclude="{any: [{resources: {kinds: [Pod]}}]}")
    assert set(result("admission.non-root-enforced", every_pod).values()) == {Status.FAIL}
    [f] = run_check("admission.namespace-exclusions", inventory_from_yaml(NAMESPACES + every_pod))
    assert f.status is Status.FAIL and "mes" in f.message and "wildcard pattern(s) *" in f.message
    updates_only = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                           exclude="{any: [{resources: {kinds: [Pod], operations: [UPDATE]}}]}")
    assert set(result("admission.non-root-enforced", updates_only).values()) == {Status.PASS}
    empty = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT, exclude="{any: [{resources: {}}]}")
    assert set(result("admission.non-root-enforced", empty).values()) == {Status.PASS}


def test_an_engine_webhook_namespace_selector_leaves_namespaces_unchecked():
    policy = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT)
    skips_ot = engine_webhook(*KYVERNO_HOOK, namespace_selector="{matchExpressions: [{key: kubernetes.io/metadata."
                              "name, operator: NotIn, values: [kube-system, scada]}]}")
    found = {f.resource.name: f for f in run_check("admission.non-root-enforced",
                                                   inventory_from_yaml(NAMESPACES + policy + skips_ot))}
    assert {n: f.status for n, f in found.items()} == {"mes": Status.PASS, "scada": Status.FAIL,
                                                       "historian": Status.PASS}
    assert "validate.kyverno.svc-fail leaves it out" in found["scada"].message
    # a webhook that only sees labelled pods checks no namespace completely; one on other resources says nothing
    labelled = engine_webhook(*KYVERNO_HOOK, object_selector="{matchLabels: {team: a}}")
    assert set(result("admission.non-root-enforced", policy + labelled).values()) == {Status.FAIL}
    not_pods = engine_webhook(*KYVERNO_HOOK, resources="[configmaps]")
    assert set(result("admission.non-root-enforced", policy + not_pods).values()) == {Status.PASS}


def test_gatekeeper_webhook_selector_in_the_input_replaces_the_default_ignore_label():
    constraint = gatekeeper("K8sAllowedRepos", "repos", """\
        match:
          kinds: [{apiGroups: [""], kinds: [Pod]}]
        parameters: {repos: [registry.plant.example/]}
        """)
    hook = engine_webhook("gatekeeper-validating-webhook-configuration", "validation.gatekeeper.sh",
                          "gatekeeper-system", namespace_selector="{matchLabels: {zone: ot}}")
    assert result("admission.registry-enforced", constraint + hook) == {
        "Namespace/mes": Status.FAIL, "Namespace/scada": Status.PASS, "Namespace/historian": Status.PASS}


# Kyverno's Helm defaults, abridged: `Node/*` is Node with any subresource, not any kind
DEFAULT_FILTERS = "[Event,*,*][*/*,kube-system,*][*/*,kube-public,*][*/*,kube-node-lease,*][Node,*,*]" \
                  "[Node/*,*,*][APIService,*,*][APIService/*,*,*][*/*,kyverno,*][ReplicaSet,*,*][ReplicaSet/*,*,*]"


@pytest.mark.parametrize(("extra", "skipped"), [
    ("", set()),
    ("[*,scada,*]", {"scada"}),
    ("[Pod,hist*,*]", {"historian"}),
    ("[v1/Pod,mes,*]", {"mes"}),
    ("[Pod/exec,mes,*][Pod,scada,debug-*][Deployment,historian,*]", set()),  # subresource, some pods, other kind
    ("[Pod][Pod,mes][Pod, scada, *]", set()),  # missing fields are "", nothing is trimmed (" scada" is no name)
    ("[Pod/*,mes,*][v1/Pod/status,scada,*]", {"mes"}),
])  # fmt: skip
def test_kyverno_resource_filters_skip_namespaces_before_any_policy(extra, skipped):
    policy = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT)
    docs = policy + kyverno_configmap(DEFAULT_FILTERS + extra)
    found = result("admission.non-root-enforced", docs)
    # (the ConfigMap brings Kyverno's own namespace into the input; it is judged like any other)
    assert {n.split("/")[1] for n, s in found.items() if s is Status.FAIL} - {"kyverno"} == skipped
    [f] = run_check("admission.namespace-exclusions", inventory_from_yaml(NAMESPACES + docs))
    if skipped:
        assert f.status is Status.FAIL and f.resource.kind == "ConfigMap" and all(n in f.message for n in skipped)
    else:  # the defaults skip system namespaces and Kyverno's own
        assert f.status is Status.PASS


def test_kyverno_config_map_named_by_init_config():
    controller = json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kyverno-admission-controller",
                                                                    "namespace": "policy"},
        "spec": {"selector": {"matchLabels": {"app": "k"}}, "template": {"metadata": {"labels": {"app": "k"}}, "spec": {
            "containers": [{"name": "kyverno", "image": "ghcr.io/kyverno/kyverno:v1.13.2",
                            "env": [{"name": "INIT_CONFIG", "value": "kyverno-config"}]}]}}}}) + "\n---\n"
    policy = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT)
    docs = policy + controller + kyverno_configmap("[*,scada,*]", "policy", "kyverno-config")
    assert result("admission.non-root-enforced", docs)["Namespace/scada"] is Status.FAIL
    # a stale ConfigMap in the default place is not the one Kyverno reads
    stale = docs + kyverno_configmap("[*,mes,*]")
    found = result("admission.non-root-enforced", stale)
    assert found["Namespace/mes"] is Status.PASS and found["Namespace/scada"] is Status.FAIL


# VAP with its parameters in a ConfigMap: the binding names them instead of narrowing by namespace
PARAM_VAP = (VAP % ("Fail", "[Deny]")).replace("  failurePolicy: Fail\n", "  failurePolicy: Fail\n  paramKind: "
                                               "{apiVersion: v1, kind: ConfigMap}\n").replace(
    "matchResources: {namespaceSelector: {matchLabels: {zone: ot}}}", "paramRef: %s")


def configmap(name: str, namespace: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\ndata: {{}}\n---\n"


@pytest.mark.parametrize(("ref", "params", "enforced"), [
    ("{name: limits, parameterNotFoundAction: Allow}", ["mes"], {"mes"}),  # looked up in the request's namespace
    ("{name: limits, namespace: policy, parameterNotFoundAction: Allow}", ["policy"], {"mes", "scada", "historian"}),
    ("{name: limits, namespace: policy, parameterNotFoundAction: Allow}", ["mes"], set()),
    ("{name: limits, parameterNotFoundAction: Deny}", [], {"mes", "scada", "historian"}),  # refuses every Pod
    ("{selector: {matchLabels: {}}, parameterNotFoundAction: Allow}", ["scada"], {"scada"}),
])  # fmt: skip
def test_vap_parameters_not_found_with_allow_admit_unchecked(ref, params, enforced):
    docs = PARAM_VAP % ref + "".join(configmap("limits", ns) for ns in params)
    found = result("admission.limits-enforced", docs)
    assert {n.split("/")[1] for n, s in found.items() if s is Status.PASS} - {"policy"} == enforced


def test_vap_parameters_of_a_kind_a_live_scan_does_not_list_are_not_taken_as_missing():
    docs = PARAM_VAP.replace("{apiVersion: v1, kind: ConfigMap}", "{apiVersion: plant.example/v1, kind: Limits}") \
        % "{name: limits, parameterNotFoundAction: Allow}"
    inv = inventory_from_yaml(NAMESPACES + docs)
    assert set(statuses(run_check("admission.limits-enforced", inv)).values()) == {Status.FAIL}  # offline: missing
    inv = inventory_from_yaml(NAMESPACES + docs)
    inv.served_kinds = {("plant.example", "Limits")}
    assert set(statuses(run_check("admission.limits-enforced", inv)).values()) == {Status.PASS}


@pytest.mark.parametrize(("selector", "parsed"), [
    ("Pod", ("Pod", "")), ("Pod/exec", ("Pod", "exec")), ("v1/Pod", ("Pod", "")), ("*/*", ("*", "")),
    ("Node/*", ("Node", "*")), ("apps/v1/Deployment", ("Deployment", "")), ("v1/Pod/status", ("Pod", "status")),
    ("apps/v1/Deployment/scale", ("Deployment", "scale")),
])  # fmt: skip
def test_kyverno_kind_selectors(selector, parsed):
    from nis2kube.checks.admission import kind_selector

    assert kind_selector(selector) == parsed


def test_kyverno_exclude_of_a_kind_with_subresources_is_not_every_kind_and_empty_any_falls_back_to_all():
    replicasets = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                          exclude="{any: [{resources: {kinds: [ReplicaSet/*]}}]}")
    assert set(result("admission.non-root-enforced", replicasets).values()) == {Status.PASS}
    fallback = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT,
                       match="{any: [], all: [{resources: {kinds: [Pod], namespaces: [mes]}}]}")
    assert result("admission.non-root-enforced", fallback)["Namespace/mes"] is Status.PASS


def test_rules_scoped_to_the_cluster_and_webhook_match_conditions_do_not_cover_pods():
    policy = kyverno("r", "validationFailureAction: Enforce", validate=NONROOT)
    conditioned = engine_webhook(*KYVERNO_HOOK).replace(
        "failurePolicy: Fail\n", "failurePolicy: Fail\n  matchConditions: [{name: not-system, expression: "
        "\"!request.userInfo.username.startsWith('system:')\"}]\n")
    assert "matchConditions" in conditioned
    assert set(result("admission.non-root-enforced", policy + conditioned).values()) == {Status.FAIL}
    cluster_vap = VAP.replace("resources: [pods]}", "resources: [pods], scope: Cluster}")
    assert set(result("admission.limits-enforced", cluster_vap % ("Fail", "[Deny]")).values()) == {Status.FAIL}
    namespaced_vap = VAP.replace("resources: [pods]}", "resources: [pods], scope: Namespaced}")
    assert result("admission.limits-enforced", namespaced_vap % ("Fail", "[Deny]"))["Namespace/scada"] is Status.PASS
