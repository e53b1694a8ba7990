"""The offline RBAC model (aggregation, bindings, subjects, rule matching) and the rbac.* checks."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import inventory_from_yaml, run_check, statuses
from nis2kube.findings import Severity, Status
from nis2kube.inventory import Inventory
from nis2kube.rbac import Rule, Subject, rbac_model

GROUP = "rbac.authorization.k8s.io"


def cluster_role(
    name: str, rules: list | None = None, labels: dict | None = None, selectors: list | None = None
) -> dict:
    obj: dict = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": {"name": name}}
    if labels:
        obj["metadata"]["labels"] = labels
    if selectors is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": selectors}
    if rules is not None:
        obj["rules"] = rules
    return obj


def role(name: str, namespace: str, rules: list) -> dict:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Role", "metadata": {"name": name, "namespace": namespace},
            "rules": rules}  # fmt: skip


def user(name: str) -> dict:
    return {"kind": "User", "name": name, "apiGroup": GROUP}


def group(name: str) -> dict:
    return {"kind": "Group", "name": name, "apiGroup": GROUP}


def sa(name: str, namespace: str | None = None) -> dict:
    return {"kind": "ServiceAccount", "name": name, **({"namespace": namespace} if namespace else {})}


def crb(name: str, role_name: str, *subjects: dict) -> dict:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role_name},
        "subjects": list(subjects),
    }


def rb(name: str, namespace: str, role_kind: str, role_name: str, *subjects: dict) -> dict:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role_name},
        "subjects": list(subjects),
    }


def deployment(name: str, namespace: str = "plant-ot", sa_name: str | None = None, **pod: object) -> dict:
    spec = {"containers": [{"name": name, "image": f"registry.example.eu/{name}:2.1.0"}], **pod}
    if sa_name:
        spec["serviceAccountName"] = sa_name
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": spec}},
    }


def service_account(name: str, namespace: str = "plant-ot", automount: bool | None = None) -> dict:
    obj: dict = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
    if automount is not None:
        obj["automountServiceAccountToken"] = automount
    return obj


def inv_of(*objs: dict) -> Inventory:
    return inventory_from_yaml(yaml.safe_dump_all(objs))


def by_resource(findings) -> dict:
    return {f.resource.display if f.resource else "(cluster)": f for f in findings}


SECRETS_LIST = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]


# ---- rule semantics --------------------------------------------------------------------------------------


def rule(**raw: object) -> Rule:
    parsed = Rule.parse(raw, "test")
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(("raw", "request_", "allowed"), [
    ({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}, ("create", "", "pods/exec"), True),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}, ("create", "", "pods/exec"), False),
    ({"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}, ("create", "", "pods/exec"), True),
    ({"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}, ("create", "", "pods"), False),
    ({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}, ("get", "", "pods/exec"), True),
    ({"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}, ("get", "", "secrets"), False),
    ({"apiGroups": ["*"], "resources": ["secrets"], "verbs": ["list"]}, ("list", "", "secrets"), True),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["plc-creds"]},
     ("get", "", "secrets", "plc-creds"), True),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["plc-creds"]},
     ("get", "", "secrets", "other"), False),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"], "resourceNames": ["plc-creds"]},
     ("list", "", "secrets"), False),
])  # fmt: skip
def test_rule_allows(raw, request_, allowed):
    assert rule(**raw).allows(*request_) is allowed


NAMED = {"apiGroups": [""], "resourceNames": ["plc-creds"]}


@pytest.mark.parametrize(("raw", "request_", "granted"), [
    ({**NAMED, "resources": ["secrets"], "verbs": ["create"]}, ("create", "", "secrets"), False),
    ({**NAMED, "resources": ["secrets"], "verbs": ["deletecollection"]}, ("deletecollection", "", "secrets"), False),
    ({**NAMED, "resources": ["secrets"], "verbs": ["*"]}, ("deletecollection", "", "secrets"), False),
    ({**NAMED, "resources": ["secrets"], "verbs": ["get"]}, ("get", "", "secrets"), True),
    # a list/watch with the field selector metadata.name=plc-creds is authorised
    ({**NAMED, "resources": ["secrets"], "verbs": ["list", "watch"]}, ("watch", "", "secrets"), True),
    # TokenRequest: a create on a subresource of a named object
    ({**NAMED, "resources": ["serviceaccounts/token"], "verbs": ["create"]},
     ("create", "", "serviceaccounts/token"), True),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}, ("create", "", "secrets"), True),
    ({**NAMED, "resources": ["secrets"], "verbs": ["get"]}, ("get", "apps", "secrets"), False),
])  # fmt: skip
def test_rule_may_grant_respects_requests_that_carry_no_name(raw, request_, granted):
    assert rule(**raw).may_grant(*request_) is granted


def test_non_resource_urls():
    r = rule(nonResourceURLs=["/healthz", "/metrics/*"], verbs=["get"])
    assert r.allows_url("get", "/healthz") and r.allows_url("get", "/metrics/cadvisor")
    assert not r.allows_url("get", "/api") and not r.allows_url("post", "/healthz")
    assert not r.allows("get", "", "healthz")


def test_subjects():
    assert Subject("Group", "system:masters").is_system(["kube-system"])
    assert Subject("User", "system:kube-controller-manager").is_system(["kube-system"])
    assert Subject("ServiceAccount", "replicaset-controller", "kube-system").is_system(["kube-system"])
    assert Subject("User", "system:serviceaccount:kube-system:coredns").is_system(["kube-system"])
    assert not Subject("ServiceAccount", "grafana", "monitoring").is_system(["kube-system"])
    for everyone in (
        Subject("Group", "system:authenticated"),
        Subject("Group", "system:unauthenticated"),
        Subject("Group", "system:serviceaccounts:plant-ot"),
        Subject("User", "system:anonymous"),
    ):
        assert everyone.is_everyone and not everyone.is_system(["kube-system"])


# ---- aggregation -----------------------------------------------------------------------------------------


def test_aggregation_resolves_empty_and_missing_rules_transitively():
    inv = inv_of(
        cluster_role("plant-admin", rules=[], selectors=[{"matchLabels": {"example.eu/aggregate-to-admin": "true"}}]),
        # an aggregated role that is itself a source of plant-admin (nested), with no rules field at all
        cluster_role(
            "plant-edit",
            labels={"example.eu/aggregate-to-admin": "true"},
            selectors=[{"matchExpressions": [{"key": "example.eu/aggregate-to-edit", "operator": "Exists"}]}],
        ),
        cluster_role("historian-edit", SECRETS_LIST, labels={"example.eu/aggregate-to-edit": "true"}),
        cluster_role("unrelated", [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]),
    )
    model = rbac_model(inv)
    admin = model.role("ClusterRole", None, "plant-admin")
    assert admin.aggregated_from == ("plant-edit",)
    assert any(r.allows("list", "", "secrets") for r in admin.rules)
    assert not any(r.allows("create", "", "pods/exec") for r in admin.rules)
    assert {r.source for r in admin.rules} == {"ClusterRole/historian-edit"}


def test_aggregation_skips_itself_and_survives_cycles():
    labels = {"agg": "yes"}
    inv = inv_of(cluster_role("a", SECRETS_LIST, labels=labels, selectors=[{"matchLabels": labels}]),
                 cluster_role("b", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}], labels=labels,
                              selectors=[{"matchLabels": labels}]))  # fmt: skip
    model = rbac_model(inv)
    assert model.role("ClusterRole", None, "a").aggregated_from == ("b",)
    assert len(model.role("ClusterRole", None, "a").rules) == len(model.role("ClusterRole", None, "b").rules) == 2


def test_bound_aggregated_role_is_judged_on_the_union():
    label = {"rbac.example.eu/aggregate-to-monitoring": "true"}
    inv = inv_of(
        cluster_role("monitoring", rules=[], selectors=[{"matchLabels": label}]),
        cluster_role("monitoring-secrets", SECRETS_LIST, labels=label),
        crb("monitoring", "monitoring", sa("prometheus", "monitoring")),
    )
    found = by_resource(run_check("rbac.secrets-read", inv))
    binding = found["ClusterRoleBinding/monitoring"]
    assert binding.status is Status.FAIL and binding.severity is Severity.HIGH
    assert "ServiceAccount monitoring/prometheus" in binding.message and "ClusterRole/monitoring" in binding.message
    assert "from ClusterRole/monitoring-secrets" in binding.evidence["rules"][0]
    source = found["ClusterRole/monitoring-secrets"]
    assert source.severity is Severity.LOW and "aggregated into ClusterRole/monitoring" in source.message


# ---- bindings and scope ----------------------------------------------------------------------------------


def test_rolebinding_to_clusterrole_grants_only_in_its_namespace():
    inv = inv_of(
        cluster_role("secret-reader", SECRETS_LIST),
        rb("historian-secrets", "plant-ot", "ClusterRole", "secret-reader", sa("historian")),
    )
    (finding,) = run_check("rbac.secrets-read", inv)
    assert finding.status is Status.FAIL
    assert "in namespace plant-ot" in finding.message
    assert finding.evidence["scope"] == "plant-ot"
    assert finding.evidence["subjects"] == ["ServiceAccount plant-ot/historian"]  # namespace from the binding


def test_cluster_scoped_permissions_do_not_pass_through_a_rolebinding():
    proxy = cluster_role(
        "node-proxy",
        [
            {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
        ],
    )
    inv = inv_of(proxy, rb("debug", "plant-ot", "ClusterRole", "node-proxy", user("anna@example.eu")))
    assert statuses(run_check("rbac.escalation", inv))["RoleBinding/plant-ot/debug"] is Status.PASS
    inv = inv_of(proxy, crb("debug", "node-proxy", user("anna@example.eu")))
    finding = by_resource(run_check("rbac.escalation", inv))["ClusterRoleBinding/debug"]
    assert finding.status is Status.FAIL
    assert "nodes/proxy" in finding.message and "impersonate users" in finding.message


def test_role_binding_to_a_role():
    inv = inv_of(
        role("ops", "plant-ot", [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}]),
        rb("ops", "plant-ot", "Role", "ops", group("plant-operators")),
    )
    finding = by_resource(run_check("rbac.pod-exec", inv))["RoleBinding/plant-ot/ops"]
    assert finding.status is Status.FAIL
    assert "Group plant-operators" in finding.message and "Role/plant-ot/ops" in finding.message
    assert "get pods/exec" in finding.message


def test_missing_role_is_not_assessed_per_binding():
    inv = inv_of(rb("view", "plant-ot", "ClusterRole", "historian-reader", user("auditor@example.eu")))
    (finding,) = run_check("rbac.secrets-read", inv)
    assert finding.status is Status.NOT_ASSESSED and "not in the input" in finding.message


def test_default_admin_edit_view_are_known_without_being_in_the_input():
    """Helm output binds the bootstrap roles without containing them: edit reads Secrets and execs into pods,
    view does neither; a chart's role labelled aggregate-to-view flows into view (and so into edit and admin)."""
    crd_viewer = cluster_role("historian-crd-viewer", [{"apiGroups": ["historian.example.eu"],
                                                        "resources": ["archives"], "verbs": ["get"]}],
                              labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"})
    inv = inv_of(rb("devs", "mes", "ClusterRole", "edit", user("dev@example.eu")),
                 rb("audit", "mes", "ClusterRole", "view", user("auditor@example.eu")), crd_viewer)
    by_binding = {f.resource.name: f.status for f in run_check("rbac.secrets-read", inv)}
    assert by_binding == {"devs": Status.FAIL, "audit": Status.PASS}
    assert {f.resource.name: f.status for f in run_check("rbac.pod-exec", inv)} == {
        "devs": Status.FAIL, "audit": Status.PASS}
    model = rbac_model(inv)
    for name in ("view", "edit", "admin"):
        role = model.role("ClusterRole", None, name)
        assert role.obj is None and role.builtin
        assert any(r.allows("get", "historian.example.eu", "archives") for r in role.rules), name
    assert model.role("ClusterRole", None, "view").aggregated_from == (
        "historian-crd-viewer", "system:aggregate-to-view")
    assert not any(r.allows("create", "rbac.authorization.k8s.io", "rolebindings")
                   for r in model.role("ClusterRole", None, "edit").rules)
    assert any(r.allows("create", "rbac.authorization.k8s.io", "rolebindings")
               for r in model.role("ClusterRole", None, "admin").rules)
    # a role of the same name in the input is the one that counts
    own_view = cluster_role("view", SECRETS_LIST)
    inv = inv_of(rb("audit", "mes", "ClusterRole", "view", user("auditor@example.eu")), own_view)
    assert {f.status for f in run_check("rbac.secrets-read", inv)} == {Status.FAIL}


def test_no_bindings_is_not_assessed_not_a_pass():
    inv = inv_of(cluster_role("secret-reader", SECRETS_LIST), deployment("hmi"))
    for check_id in ("rbac.cluster-admin-binding", "rbac.wildcard", "rbac.secrets-read", "rbac.pod-exec",
                     "rbac.escalation"):  # fmt: skip
        (finding,) = run_check(check_id, inv)
        assert finding.status is Status.NOT_ASSESSED, check_id


def test_unlisted_rbac_kinds_are_not_assessed():
    inv = inv_of(crb("x", "cluster-admin", user("a")))
    inv.unlisted[(GROUP, "RoleBinding")] = "forbidden"
    (finding,) = run_check("rbac.cluster-admin-binding", inv)
    assert finding.status is Status.NOT_ASSESSED and "forbidden" in finding.message


def test_malformed_rbac_objects_are_reported_not_crashing():
    inv = inv_of(
        {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": {"name": "odd"}, "rules": "all"},
        {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "no-ref"}, "subjects": []},
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "crb-to-role"},
            "roleRef": {"kind": "Role", "name": "x"},
        },
        crb("weird-subject", "odd", {"kind": "Robot", "name": "r2"}, user("ok")),
    )
    found = run_check("rbac.wildcard", inv)
    problems = [f for f in found if f.status is Status.NOT_ASSESSED]
    assert {f.resource.name for f in problems} == {"odd", "no-ref", "crb-to-role", "weird-subject"}
    assert by_resource(found)["ClusterRoleBinding/weird-subject"].status is Status.PASS


# ---- cluster-admin ---------------------------------------------------------------------------------------


def test_cluster_admin_binding():
    inv = inv_of(
        crb("cluster-admin", "cluster-admin", group("system:masters")),
        crb("ops-admins", "cluster-admin", group("system:masters"), user("jan@example.eu")),
        crb("everyone", "cluster-admin", group("system:authenticated")),
        crb("kube-system-ci", "cluster-admin", sa("kube-ctrl", "kube-system")),
        rb("cell-admin", "plant-ot", "ClusterRole", "cluster-admin", sa("deployer", "ci")),
        rb("vendor-admin", "kube-system", "ClusterRole", "cluster-admin", user("support@cni-vendor.example")),
    )
    found = by_resource(run_check("rbac.cluster-admin-binding", inv))
    assert found["ClusterRoleBinding/cluster-admin"].status is Status.PASS
    assert found["ClusterRoleBinding/cluster-admin"].system is True
    assert found["ClusterRoleBinding/kube-system-ci"].status is Status.PASS
    ops = found["ClusterRoleBinding/ops-admins"]
    assert ops.status is Status.FAIL and ops.severity is Severity.CRITICAL and not ops.system
    assert "User jan@example.eu" in ops.message and "system:masters" not in ops.message
    everyone = found["ClusterRoleBinding/everyone"]
    assert everyone.status is Status.FAIL and not everyone.system
    cell = found["RoleBinding/plant-ot/cell-admin"]
    assert cell.status is Status.FAIL and cell.severity is Severity.HIGH and "namespace plant-ot" in cell.message
    vendor = found["RoleBinding/kube-system/vendor-admin"]
    assert vendor.status is Status.FAIL and vendor.system is False
    assert "(cluster)" not in found


def test_cluster_admin_only_system_gives_a_cluster_level_pass():
    inv = inv_of(crb("cluster-admin", "cluster-admin", group("system:masters")))
    found = by_resource(run_check("rbac.cluster-admin-binding", inv))
    assert found["(cluster)"].status is Status.PASS and found["(cluster)"].system is False


def test_falco_trace_cluster_admin_binding(shared_dir):
    """A real ClusterRoleBinding from Falco's k8s-audit test traces."""
    trace = shared_dir / "corpora/falco-k8saudit/falcosecurity-falco-2583ea9/test/trace_files/k8s_audit"
    binding = json.loads((trace / "attach_cluster_admin_role.json").read_text().splitlines()[0])["requestObject"]
    (finding,) = [f for f in run_check("rbac.cluster-admin-binding", inv_of(binding)) if f.resource]
    assert finding.status is Status.FAIL and "User minikube" in finding.message
    # cluster-admin is not in the input: its built-in definition is used
    wildcard = by_resource(run_check("rbac.wildcard", inv_of(binding)))["ClusterRoleBinding/some-reader-binding"]
    assert wildcard.status is Status.FAIL


# ---- wildcard / exec / secrets / escalation --------------------------------------------------------------


def test_falco_trace_roles(shared_dir):
    trace = shared_dir / "corpora/falco-k8saudit/falcosecurity-falco-2583ea9/test/trace_files/k8s_audit"

    def load(name: str) -> dict:
        return json.loads((trace / name).read_text().splitlines()[0])["requestObject"]

    inv = inv_of(load("create_cluster_role_wildcard_resources.json"), crb("readers", "some-reader", user("bob")))
    assert by_resource(run_check("rbac.wildcard", inv))["ClusterRoleBinding/readers"].status is Status.FAIL
    # resources ["*"] in the core group with get/list: every Secret is readable
    assert by_resource(run_check("rbac.secrets-read", inv))["ClusterRoleBinding/readers"].status is Status.FAIL

    # a binding to some other role is there, so RBAC is judged; the exec role itself is bound nowhere
    inv = inv_of(load("create_cluster_role_pod_exec.json"), crb("x", "other", user("y")))
    unbound = by_resource(run_check("rbac.pod-exec", inv))["ClusterRole/some-reader"]
    assert unbound.status is Status.FAIL and unbound.severity is Severity.LOW and "not bound" in unbound.message
    assert unbound.system is True  # labelled kubernetes.io/bootstrapping=rbac-defaults


@pytest.mark.parametrize(("rules", "failed"), [
    ([{"apiGroups": ["*"], "resources": ["deployments"], "verbs": ["get"]}], True),
    ([{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}], True),
    ([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}], True),
    ([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}], False),
])  # fmt: skip
def test_wildcard(rules, failed):
    inv = inv_of(cluster_role("r", rules), crb("b", "r", user("u")))
    assert (by_resource(run_check("rbac.wildcard", inv))["ClusterRoleBinding/b"].status is Status.FAIL) is failed


def test_non_resource_wildcard_through_rolebinding_has_no_effect():
    inv = inv_of(
        cluster_role("urls", [{"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        rb("b", "plant-ot", "ClusterRole", "urls", user("u")),
        crb("c", "urls", user("v")),
    )
    found = by_resource(run_check("rbac.wildcard", inv))
    assert found["RoleBinding/plant-ot/b"].status is Status.PASS
    assert found["ClusterRoleBinding/c"].status is Status.FAIL


@pytest.mark.parametrize(("rules", "failed"), [
    ([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}], True),
    ([{"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["get"]}], True),
    ([{"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}], True),
    ([{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}], False),
    ([{"apiGroups": ["apps"], "resources": ["pods/exec"], "verbs": ["create"]}], False),
])  # fmt: skip
def test_pod_exec(rules, failed):
    inv = inv_of(role("debug", "plant-ot", rules), rb("debug", "plant-ot", "Role", "debug", user("u")))
    found = by_resource(run_check("rbac.pod-exec", inv))["RoleBinding/plant-ot/debug"]
    assert (found.status is Status.FAIL) is failed


def test_secrets_read_severity_by_narrowing_and_subject():
    named = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["opcua-cert"]}]
    inv = inv_of(
        role("cert-reader", "plant-ot", named),
        rb("cert", "plant-ot", "Role", "cert-reader", sa("opcua-gw")),
        role("all-secrets", "plant-ot", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["watch"]}]),
        rb("all", "plant-ot", "Role", "all-secrets", user("dev@example.eu")),
        rb("anyone", "plant-ot", "Role", "all-secrets", group("system:authenticated")),
        role("pods", "plant-ot", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
        rb("pods", "plant-ot", "Role", "pods", user("viewer")),
    )
    found = by_resource(run_check("rbac.secrets-read", inv))
    cert = found["RoleBinding/plant-ot/cert"]
    assert cert.status is Status.FAIL and cert.severity is Severity.LOW and "opcua-cert" in cert.message
    assert found["RoleBinding/plant-ot/all"].severity is Severity.HIGH
    assert found["RoleBinding/plant-ot/anyone"].severity is Severity.CRITICAL
    assert found["RoleBinding/plant-ot/pods"].status is Status.PASS


def test_unbound_role_reported_low_and_bound_by_subjectless_binding_still_counts_as_unbound():
    inv = inv_of(cluster_role("leftover", SECRETS_LIST), crb("empty", "leftover"))
    found = by_resource(run_check("rbac.secrets-read", inv))
    assert found["ClusterRoleBinding/empty"].status is Status.PASS
    leftover = found["ClusterRole/leftover"]
    assert leftover.status is Status.FAIL and leftover.severity is Severity.LOW and "not bound" in leftover.message
    assert leftover.system is False


@pytest.mark.parametrize(("rules", "binding_ns", "failed"), [
    ([{"apiGroups": [GROUP], "resources": ["clusterroles"], "verbs": ["bind"]}], "plant-ot", True),
    ([{"apiGroups": [GROUP], "resources": ["roles"], "verbs": ["escalate"]}], "plant-ot", True),
    ([{"apiGroups": [GROUP], "resources": ["rolebindings"], "verbs": ["create"]}], "plant-ot", False),
    ([{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}], "plant-ot", True),
    ([{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}], "plant-ot", True),
    ([{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "create"]}], "plant-ot", False),
    ([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}], "plant-ot", False),
    ([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}], "kube-system", True),
    ([{"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["patch"]}], "kube-system", True),
    ([{"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get", "list"]}], "kube-system", False),
])  # fmt: skip
def test_escalation_table(rules, binding_ns, failed):
    inv = inv_of(cluster_role("r", rules), rb("b", binding_ns, "ClusterRole", "r", user("anna@example.eu")))
    finding = by_resource(run_check("rbac.escalation", inv))[f"RoleBinding/{binding_ns}/b"]
    assert (finding.status is Status.FAIL) is failed
    assert finding.system is False  # a person, even in kube-system, is never a system finding


def test_workload_creation_cluster_wide_reaches_kube_system():
    inv = inv_of(
        cluster_role("deployer", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}]),
        crb("ci", "deployer", sa("argocd-application-controller", "argocd")),
    )
    finding = by_resource(run_check("rbac.escalation", inv))["ClusterRoleBinding/ci"]
    assert finding.status is Status.FAIL and "deployments in kube-system" in finding.message


def test_system_grants_are_reported_apart():
    inv = inv_of(cluster_role("system:controller:generic-garbage-collector",
                              [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch", "patch"]}],
                              labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
                 crb("system:controller:generic-garbage-collector", "system:controller:generic-garbage-collector",
                     sa("generic-garbage-collector", "kube-system")))  # fmt: skip
    (finding,) = run_check("rbac.secrets-read", inv)
    assert finding.status is Status.FAIL and finding.system is True


# ---- service accounts of workloads -----------------------------------------------------------------------


def test_default_service_account():
    inv = inv_of(
        deployment("hmi"),
        deployment("historian", sa_name="historian"),
        service_account("historian"),
        deployment("batch", automountServiceAccountToken=False),
        deployment("scada", namespace="line-2"),
        role("read-cm", "line-2", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
        rb("default-cm", "line-2", "Role", "read-cm", sa("default")),
    )
    found = by_resource(run_check("rbac.default-service-account", inv))
    assert found["Deployment/plant-ot/historian"].status is Status.PASS
    hmi = found["Deployment/plant-ot/hmi"]
    assert hmi.status is Status.FAIL and hmi.severity is Severity.MEDIUM
    assert found["Deployment/plant-ot/batch"].severity is Severity.LOW  # no token mounted: less at stake
    scada = found["Deployment/line-2/scada"]
    assert scada.severity is Severity.HIGH and "Role/line-2/read-cm" in scada.message


def test_automount_token_precedence_and_need():
    inv = inv_of(
        service_account("quiet", automount=False),
        deployment("a-sa-off", sa_name="quiet"),
        deployment("b-pod-on", sa_name="quiet", automountServiceAccountToken=True),
        service_account("loud"),
        deployment("c-sa-default", sa_name="loud", automountServiceAccountToken=False),
        deployment("d-unused", sa_name="loud"),
        service_account("operator"),
        deployment("e-uses-api", sa_name="operator"),
        role("leases", "plant-ot", [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]}]),
        rb("operator", "plant-ot", "Role", "leases", user("system:serviceaccount:plant-ot:operator")),
        deployment("f-absent-sa", sa_name="ghost"),
    )
    found = by_resource(run_check("rbac.automount-token", inv))
    assert found["Deployment/plant-ot/a-sa-off"].status is Status.PASS
    assert found["Deployment/plant-ot/b-pod-on"].status is Status.FAIL  # pod field beats the SA's false
    assert found["Deployment/plant-ot/c-sa-default"].status is Status.PASS
    assert found["Deployment/plant-ot/d-unused"].status is Status.FAIL
    assert found["Deployment/plant-ot/e-uses-api"].status is Status.PASS
    assert "Role/plant-ot/leases" in found["Deployment/plant-ot/e-uses-api"].message
    ghost = found["Deployment/plant-ot/f-absent-sa"]
    assert ghost.status is Status.FAIL and "not in the input" in ghost.message


def test_group_grants_do_not_count_as_a_need_for_the_token():
    inv = inv_of(
        service_account("app"),
        deployment("app", sa_name="app"),
        cluster_role("reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
        crb("all-sas", "reader", group("system:serviceaccounts")),
    )
    (finding,) = run_check("rbac.automount-token", inv)
    assert finding.status is Status.FAIL


def test_automount_with_explicit_projected_token_and_unreadable_bindings():
    projected = {
        "name": "api-token",
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "path": "token",
                        "expirationSeconds": 600,
                        "audience": "https://kubernetes.default.svc",
                    }
                }
            ]
        },
    }
    inv = inv_of(
        service_account("scanner", automount=False),
        deployment("scanner", sa_name="scanner", volumes=[projected]),
        deployment("hmi"),
    )
    inv.unlisted[(GROUP, "ClusterRoleBinding")] = "forbidden"
    found = by_resource(run_check("rbac.automount-token", inv))
    scanner = found["Deployment/plant-ot/scanner"]
    assert scanner.status is Status.PASS and "api-token" in scanner.message
    hmi = found["Deployment/plant-ot/hmi"]
    assert hmi.status is Status.NOT_ASSESSED and "forbidden" in hmi.message


def test_who_can_follows_binding_scope_and_resource_names():
    inv = inv_of(
        cluster_role("secret-reader", SECRETS_LIST),
        role(
            "cert",
            "plant-ot",
            [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["opcua-cert"]}],
        ),
        rb("reader", "plant-ot", "ClusterRole", "secret-reader", sa("historian")),
        rb("cert", "plant-ot", "Role", "cert", user("gw")),
        crb("auditors", "secret-reader", group("auditors")),
    )
    model = rbac_model(inv)

    def who(*request) -> set[str]:
        return {s.display for s, _ in model.who_can(*request)}

    assert who("list", "", "secrets", "plant-ot") == {"ServiceAccount plant-ot/historian", "Group auditors"}
    assert who("list", "", "secrets", "line-2") == {"Group auditors"}
    assert who("list", "", "secrets") == {"Group auditors"}  # all namespaces: ClusterRoleBindings only
    assert who("get", "", "secrets", "plant-ot", "opcua-cert") == {
        "ServiceAccount plant-ot/historian",
        "Group auditors",
        "User gw",
    }
    assert who("delete", "", "secrets", "plant-ot") == set()


# ---- upstream semantics (review) -------------------------------------------------------------------------


def test_non_resource_url_trims_every_trailing_star():
    # NonResourceURLMatches: strings.TrimRight(ruleURL, "*") is the prefix
    assert rule(nonResourceURLs=["/metrics**"], verbs=["get"]).allows_url("get", "/metrics")


def test_aggregation_replaces_the_rules_written_into_the_aggregated_role():
    """The aggregation controller applies the union of the selected roles as the role's whole rule list."""
    label = {"rbac.example.eu/aggregate-to-plant-viewer": "true"}
    inv = inv_of(
        cluster_role("plant-viewer", SECRETS_LIST, selectors=[{"matchLabels": label}]),  # stale hand-written rules
        cluster_role("plant-viewer-cm", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
                     labels=label),
        crb("viewers", "plant-viewer", group("plant-operators")),
    )  # fmt: skip
    viewer = rbac_model(inv).role("ClusterRole", None, "plant-viewer")
    assert {r.source for r in viewer.rules} == {"ClusterRole/plant-viewer-cm"}
    assert by_resource(run_check("rbac.secrets-read", inv))["ClusterRoleBinding/viewers"].status is Status.PASS


def test_binding_api_groups_the_api_server_rejects():
    wrong_sa = {"kind": "ServiceAccount", "name": "historian", "apiGroup": GROUP}
    defaulted = {"kind": "User", "name": "anna@example.eu"}  # no apiGroup: defaulted to rbac.authorization.k8s.io
    bad_ref = crb("bad-ref", "secret-reader", user("bob@example.eu"))
    bad_ref["roleRef"]["apiGroup"] = "authorization.k8s.io"
    inv = inv_of(
        cluster_role("secret-reader", SECRETS_LIST),
        rb("historian", "plant-ot", "ClusterRole", "secret-reader", wrong_sa),
        rb("anna", "plant-ot", "ClusterRole", "secret-reader", defaulted),
        bad_ref,
    )
    found = run_check("rbac.secrets-read", inv)
    problems = {f.resource.name: f.message for f in found if f.status is Status.NOT_ASSESSED}
    assert set(problems) == {"historian", "bad-ref"}
    assert "apiGroup" in problems["historian"] and "rejects" in problems["bad-ref"]
    statuses_ = {f.resource.display: f.status for f in found if f.status is not Status.NOT_ASSESSED}
    assert statuses_["RoleBinding/plant-ot/historian"] is Status.PASS  # its only subject is invalid
    assert statuses_["RoleBinding/plant-ot/anna"] is Status.FAIL
    assert "ClusterRoleBinding/bad-ref" not in statuses_


def test_service_account_subject_without_namespace_in_a_cluster_role_binding():
    inv = inv_of(cluster_role("secret-reader", SECRETS_LIST), crb("x", "secret-reader", sa("historian")))
    (problem,) = [f for f in run_check("rbac.secrets-read", inv) if f.status is Status.NOT_ASSESSED]
    assert "without a namespace" in problem.message


@pytest.mark.parametrize(("verbs", "failed"), [(["patch"], True), (["update"], True), (["create", "get"], False)])
def test_ephemeral_containers_count_as_exec(verbs, failed):
    rules = [{"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": verbs}]
    inv = inv_of(role("debug", "plant-ot", rules), rb("debug", "plant-ot", "Role", "debug", user("u")))
    found = by_resource(run_check("rbac.pod-exec", inv))["RoleBinding/plant-ot/debug"]
    assert (found.status is Status.FAIL) is failed


def test_resource_names_never_authorise_create_of_an_object():
    named = {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["kube-proxy-debug"]}
    inv = inv_of(
        cluster_role("create-named", [{**named, "verbs": ["create"]}]),
        cluster_role("patch-named", [{**named, "verbs": ["patch"]}]),
        cluster_role("token-named", [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
                                      "resourceNames": ["coredns"]}]),
        rb("create", "kube-system", "ClusterRole", "create-named", user("anna@example.eu")),
        rb("patch", "kube-system", "ClusterRole", "patch-named", user("anna@example.eu")),
        rb("token", "kube-system", "ClusterRole", "token-named", user("anna@example.eu")),
    )  # fmt: skip
    found = by_resource(run_check("rbac.escalation", inv))
    assert found["RoleBinding/kube-system/create"].status is Status.PASS
    patch = found["RoleBinding/kube-system/patch"]
    assert patch.status is Status.FAIL and patch.severity is Severity.LOW
    token = found["RoleBinding/kube-system/token"]  # TokenRequest is a create on a named subresource
    assert token.status is Status.FAIL and "coredns" in token.message


def test_aggregation_null_selector_selects_every_role_and_invalid_selector_keeps_the_rules():
    inv = inventory_from_yaml(f"""
apiVersion: {GROUP}/v1
kind: ClusterRole
metadata: {{name: everything}}
aggregationRule:
  clusterRoleSelectors:
  -
---
apiVersion: {GROUP}/v1
kind: ClusterRole
metadata: {{name: broken}}
aggregationRule:
  clusterRoleSelectors:
  - matchExpressions: [{{key: example.eu/agg, operator: In}}]
rules: [{{apiGroups: [""], resources: [configmaps], verbs: [get]}}]
---
apiVersion: {GROUP}/v1
kind: ClusterRole
metadata: {{name: secret-reader}}
rules: [{{apiGroups: [""], resources: [secrets], verbs: [list]}}]
""")
    model = rbac_model(inv)
    everything = model.role("ClusterRole", None, "everything")
    # every role, the API server's defaults the input lacks included
    assert {"broken", "secret-reader", "cluster-admin", "view"} <= set(everything.aggregated_from)
    assert any(r.allows("list", "", "secrets") for r in everything.rules)
    broken = model.role("ClusterRole", None, "broken")
    assert broken.aggregated_from == () and [r.source for r in broken.rules] == ["ClusterRole/broken"]
    assert any("cannot sync" in problem for _, problem in model.problems)
