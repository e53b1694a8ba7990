"""The audit Policy evaluator: kube-apiserver's first-match-wins semantics, validation, and exhaustive probing."""

from __future__ import annotations

import itertools
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nis2kube.auditpolicy import (
    AUTHENTICATED,
    GENERIC,
    Level,
    PolicyError,
    Request,
    Shape,
    load_policy_file,
    parse_policy,
    parse_policy_text,
)

CORPORA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
FALCO_POLICY = CORPORA / "falco-k8saudit/falcosecurity-plugins/plugins/k8saudit/configs/audit-policy.yaml"
DEMO_POLICY = CORPORA / "audit2rbac/testdata/demo-policy.yaml"
AUTH = frozenset({AUTHENTICATED})


def policy(*rules: dict, **extra) -> object:
    return parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **extra}, "t")


def req(verb="get", resource="pods", sub="", group="", ns="default", name="", user="alice", groups=AUTH, path=""):
    return Request(verb, user, frozenset(groups), group, resource, sub, ns, name, path)


def level(p, r) -> Level:
    return p.evaluate(r).level


def test_first_matching_rule_wins_even_when_a_later_rule_is_more_specific():
    p = policy({"level": "RequestResponse"},
               {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]})
    decision = p.evaluate(req(resource="secrets"))
    assert decision.level is Level.REQUEST_RESPONSE and decision.rule.index == 1


def test_no_matching_rule_means_level_none():
    p = policy({"level": "Metadata", "users": ["bob"]})
    decision = p.evaluate(req(user="alice"))
    assert decision.level is Level.NONE and decision.rule is None


def test_users_groups_and_verbs_are_anded_groups_match_on_any():
    p = policy({"level": "None", "users": ["alice"], "userGroups": ["ops", "dev"], "verbs": ["watch"]},
               {"level": "Metadata"})
    assert level(p, req(verb="watch", groups={"x", "dev"})) is Level.NONE
    assert level(p, req(verb="get", groups={"dev"})) is Level.METADATA
    assert level(p, req(verb="watch", groups={"x"})) is Level.METADATA
    assert level(p, req(verb="watch", user="bob", groups={"dev"})) is Level.METADATA


def test_user_conditions_never_match_a_request_without_user():
    p = policy({"level": "None", "userGroups": ["system:unauthenticated"]}, {"level": "Metadata"})
    assert level(p, req(user=None, groups=())) is Level.METADATA


def test_plain_resource_does_not_match_its_subresources():
    p = policy({"level": "None", "resources": [{"group": "", "resources": ["pods"]}]}, {"level": "Metadata"})
    assert level(p, req(resource="pods")) is Level.NONE
    assert level(p, req(resource="pods", sub="exec")) is Level.METADATA


@pytest.mark.parametrize(("spec", "resource", "sub", "expected"), [
    ("pods/exec", "pods", "exec", True),
    ("pods/exec", "pods", "log", False),
    ("*", "pods", "exec", True),  # "*" matches everything, subresources included
    ("*/status", "deployments", "status", True),
    ("*/status", "deployments", "", False),
    ("pods/*", "pods", "attach", True),
    ("pods/*", "pods", "", True),  # upstream TrimSuffix("/*") equals the resource itself
    ("pods/*", "services", "proxy", False),
])
def test_resource_wildcards(spec, resource, sub, expected):
    p = policy({"level": "RequestResponse", "resources": [{"group": "", "resources": [spec]}]})
    assert (level(p, req(resource=resource, sub=sub)) is Level.REQUEST_RESPONSE) is expected


def test_group_must_match_exactly_and_empty_resources_means_whole_group():
    p = policy({"level": "Request", "resources": [{"group": "apps"}]})
    assert level(p, req(resource="deployments", group="apps")) is Level.REQUEST
    assert level(p, req(resource="pods")) is Level.NONE


def test_resource_names_restrict_the_match():
    p = policy({"level": "None", "resources": [{"group": "", "resources": ["configmaps"],
                                                "resourceNames": ["controller-leader"]}]}, {"level": "Metadata"})
    assert level(p, req(resource="configmaps", name="controller-leader")) is Level.NONE
    assert level(p, req(resource="configmaps", name="app")) is Level.METADATA
    assert level(p, req(verb="list", resource="configmaps", name="")) is Level.METADATA


def test_namespaces_and_empty_string_for_cluster_scope():
    p = policy({"level": "None", "namespaces": [""]}, {"level": "Metadata"})
    assert level(p, req(resource="clusterroles", group="rbac.authorization.k8s.io", ns="")) is Level.NONE
    assert level(p, req(resource="pods", ns="prod")) is Level.METADATA


def test_namespace_rule_never_matches_non_resource_requests():
    p = policy({"level": "None", "namespaces": ["prod"]}, {"level": "Metadata"})
    assert level(p, req(resource="", path="/healthz", ns="")) is Level.METADATA


@pytest.mark.parametrize(("spec", "path", "expected"), [
    ("/api*", "/apis/apps/v1", True), ("/api*", "/api", True), ("/version", "/version", True),
    ("/version", "/version/x", False), ("*", "/metrics", True), ("/healthz*", "/livez", False),
])
def test_non_resource_urls(spec, path, expected):
    p = policy({"level": "None", "nonResourceURLs": [spec]}, {"level": "Metadata"})
    assert (level(p, req(resource="", path=path)) is Level.NONE) is expected


def test_non_resource_rule_never_matches_resource_requests():
    p = policy({"level": "None", "nonResourceURLs": ["*"]}, {"level": "Metadata"})
    assert level(p, req()) is Level.METADATA


def test_omit_stages_union_with_policy_level():
    p = policy({"level": "Metadata", "omitStages": ["Panic"]}, omitStages=["RequestReceived"])
    assert p.evaluate(req()).omit_stages == {"Panic", "RequestReceived"}
    p = policy({"level": "Metadata", "users": ["bob"]}, omitStages=["RequestReceived"])
    assert p.evaluate(req()).omit_stages == {"RequestReceived"}  # no rule matched: the policy's own


@pytest.mark.parametrize(("rule", "message"), [
    ({"level": "Everything"}, "unknown level"),
    ({"level": "None", "resources": [{"group": "", "resources": ["pods"]}], "nonResourceURLs": ["/x"]},
     "either resources or nonResourceURLs"),
    ({"level": "None", "nonResourceURLs": ["api*"]}, "must start with /"),
    ({"level": "None", "nonResourceURLs": ["/a*b"]}, r"may end with \* only"),
    ({"level": "None", "resources": [{"group": "apps/v1"}]}, "not a DNS subdomain"),
    ({"level": "None", "resources": [{"group": "Apps"}]}, "not a DNS subdomain"),
    ({"level": "None", "resources": [{"group": "", "resourceNames": ["x"]}]}, "requires at least one resource"),
    ({"level": "None", "omitStages": ["Later"]}, "unknown stage"),
    ({"level": "None", "users": "alice"}, "list of strings"),
])
def test_validation_errors_name_the_rule(rule, message):
    with pytest.raises(PolicyError, match=message) as info:
        policy({"level": "Metadata"}, rule)
    assert "rules[1]" in str(info.value)


def test_a_policy_without_rules_is_refused_like_the_api_server_does():
    with pytest.raises(PolicyError, match="no rules"):
        parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"]}, "p")


def test_not_a_policy_and_bad_yaml_are_clear_errors(tmp_path):
    with pytest.raises(PolicyError, match="expected kind Policy"):
        parse_policy_text("apiVersion: v1\nkind: ConfigMap\n", "cm.yaml")
    with pytest.raises(PolicyError, match=r"cm.yaml: invalid YAML \(line \d\)"):
        parse_policy_text("kind: Policy\nrules: [\n", "cm.yaml")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy_file(str(tmp_path / "missing.yaml"))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00kind")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy_file(str(binary))


def test_oversized_policy_is_refused(tmp_path, monkeypatch):
    import nis2kube.auditpolicy as mod

    monkeypatch.setattr(mod, "MAX_POLICY_BYTES", 100)
    big = tmp_path / "big.yaml"
    big.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n" + "- level: None\n" * 20)
    with pytest.raises(PolicyError, match="refused"):
        load_policy_file(str(big))


# ---- the real policies in the corpora ---------------------------------------------------------------------
@pytest.fixture
def falco_policy():
    if not FALCO_POLICY.is_file():
        pytest.skip("corpora not beside the project")
    return load_policy_file(str(FALCO_POLICY))


def test_falco_example_policy_levels(falco_policy):
    p = falco_policy
    assert len(p.rules) == 11 and p.omit_stages == {"RequestReceived"}
    assert level(p, req(verb="create", resource="pods")) is Level.REQUEST_RESPONSE
    assert level(p, req(resource="pods", sub="log")) is Level.METADATA
    assert level(p, req(resource="pods", sub="exec", verb="create")) is Level.REQUEST  # core group catch
    assert level(p, req(resource="configmaps", name="controller-leader")) is Level.NONE
    assert level(p, req(verb="update", resource="configmaps", ns="kube-system", name="x")) is Level.REQUEST
    assert level(p, req(verb="update", resource="configmaps", ns="prod", name="x")) is Level.REQUEST_RESPONSE
    assert level(p, req(verb="get", resource="secrets", ns="prod", name="x")) is Level.METADATA
    assert level(p, req(verb="watch", resource="endpoints", user="system:kube-proxy")) is Level.NONE
    assert level(p, req(verb="get", resource="endpoints", user="system:kube-proxy")) is Level.REQUEST
    assert level(p, req(resource="", path="/apis/apps", ns="")) is Level.NONE
    assert level(p, req(resource="", path="/apis/apps", ns="", user=None, groups=())) is Level.METADATA
    decision = p.evaluate(req(resource="widgets", group="example.com"))
    assert decision.level is Level.METADATA and decision.rule.is_catch_all and decision.rule.index == 11


def test_falco_example_policy_leaks_configmaps_on_probe(falco_policy):
    count, bad = falco_policy.probe(Shape(("update",), "", "configmaps"), hi=Level.METADATA)
    assert bad is not None and count >= 1
    request, decision = bad
    assert request.resource == "configmaps" and decision.level > Level.METADATA


def test_demo_policy_logs_only_named_users():
    if not DEMO_POLICY.is_file():
        pytest.skip("corpora not beside the project")
    p = load_policy_file(str(DEMO_POLICY))
    assert level(p, req(user="alice")) is Level.METADATA
    assert level(p, req(user="system:serviceaccount:ns1:sa1")) is Level.METADATA
    assert level(p, req(user="carol")) is Level.NONE
    assert p.evaluate(req(user="bob")).omit_stages == {"RequestReceived", "ResponseStarted", "Panic"}
    _, bad = p.probe(Shape(("create",), "", "pods"), lo=Level.METADATA)
    assert bad is not None and bad[0].user == f"{GENERIC}-user"


# ---- probing is exhaustive over identities ----------------------------------------------------------------
USERS = ["alice", "bob"]
GROUPS = ["ops", "dev"]
NAMESPACES = ["prod", "kube-system"]
rule_strategy = st.fixed_dictionaries(
    {"level": st.sampled_from(["None", "Metadata", "Request", "RequestResponse"])},
    optional={
        "users": st.lists(st.sampled_from(USERS), min_size=1, max_size=2, unique=True),
        "userGroups": st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True),
        "verbs": st.lists(st.sampled_from(["get", "create"]), min_size=1, max_size=2, unique=True),
        "namespaces": st.lists(st.sampled_from(NAMESPACES), min_size=1, max_size=2, unique=True),
        "resources": st.lists(st.fixed_dictionaries(
            {"group": st.just("")},
            optional={"resources": st.lists(st.sampled_from(["secrets", "pods", "*", "secrets/*"]),
                                            min_size=1, max_size=2, unique=True)}), min_size=1, max_size=2),
    },
)


@settings(max_examples=150, deadline=None)
@given(st.lists(rule_strategy, min_size=1, max_size=5), st.sampled_from([(Level.METADATA, Level.REQUEST_RESPONSE),
                                                            (Level.NONE, Level.METADATA)]))
def test_probe_finds_a_violation_exactly_when_brute_force_does(rules, bounds):
    p = policy(*rules)
    lo, hi = bounds
    shape = Shape(("get", "create"), "", "secrets")
    _, found = p.probe(shape, lo, hi)
    every_user = [*USERS, "carol"]
    every_groups = [frozenset({AUTHENTICATED, *extra}) for n in range(3) for extra in itertools.combinations(GROUPS, n)]
    brute = any(
        not lo <= level(p, Request(verb, user, groups, "", "secrets", "", ns, "")) <= hi
        for verb in shape.verbs for user in every_user for groups in every_groups for ns in [*NAMESPACES, "other"]
    )
    assert (found is not None) is brute


# ---- fields as kube-apiserver decodes them (reader.go, validation.go, checker.go) ------------------------
@pytest.mark.parametrize("rule", [{"users": ["alice"]}, {"level": None}, {"level": ""}])
def test_a_rule_without_level_is_refused_not_read_as_level_none(rule):
    with pytest.raises(PolicyError, match=r"rules\[1\]: level is required"):
        policy({"level": "Metadata"}, rule)


def test_only_audit_k8s_io_v1_is_accepted_since_1_24():
    doc = {"apiVersion": "audit.k8s.io/v1beta1", "kind": "Policy", "rules": [{"level": "Metadata"}]}
    with pytest.raises(PolicyError, match=r"audit.k8s.io/v1beta1 is refused by kube-apiserver since 1.24"):
        parse_policy(doc, "old.yaml")


def test_null_group_is_the_core_group():
    p = policy({"level": "None", "resources": [{"group": None, "resources": ["events"]}]}, {"level": "Metadata"})
    assert level(p, req(verb="watch", resource="events")) is Level.NONE


def test_omit_managed_fields_must_be_a_bool_and_changes_no_level():
    p = policy({"level": "RequestResponse", "resources": [{"group": "apps"}], "omitManagedFields": False},
               {"level": "Metadata"}, omitManagedFields=True)
    assert level(p, req(resource="deployments", group="apps")) is Level.REQUEST_RESPONSE
    with pytest.raises(PolicyError, match=r"rules\[0\].omitManagedFields must be true or false"):
        policy({"level": "Metadata", "omitManagedFields": "yes"})
    with pytest.raises(PolicyError, match="omitManagedFields must be true or false"):
        policy({"level": "Metadata"}, omitManagedFields="yes")


def test_deletecollection_is_probed_without_a_name():
    p = policy({"level": "None", "verbs": ["deletecollection"]}, {"level": "Metadata"})
    _, bad = p.probe(Shape(("deletecollection",), "", "secrets"), lo=Level.METADATA)
    assert bad is not None and bad[0].name == "" and bad[1].rule.index == 1
