"""resilience.*: rollout budgets with upstream defaulting, replicas, probes, PDBs, Kubernetes support window."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from conftest import inventory_from_yaml, run_check, statuses
from nis2kube.checks.registry import InputError
from nis2kube.checks.resilience import parse_version, pdb_blocks_all, release_table, rollout_budget
from nis2kube.findings import Severity, Status
from nis2kube.inventory.inventory import SourceInfo

AS_OF = dt.date(2026, 11, 22)


def deploy(name: str = "api", namespace: str = "mes", replicas: int | None = 2, strategy: str = "",
           probe: bool = True, labels: str = "{app: api}") -> str:
    reps = f"  replicas: {replicas}\n" if replicas is not None else ""
    ready = "\n          readinessProbe: {httpGet: {path: /healthz, port: 8080}}" if probe else ""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
{reps}{strategy}  selector: {{matchLabels: {labels}}}
  template:
    metadata: {{labels: {labels}}}
    spec:
      containers:
        - name: app
          image: registry.plant.example/mes/api:7.3.2{ready}
---
"""


def pdb(name: str, spec: str, namespace: str = "mes") -> str:
    return f"""
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: {name}, namespace: {namespace}}}
spec: {spec}
---
"""


@pytest.mark.parametrize("replicas, rolling, expected", [
    (1, "", (1, 0, 1)),  # 25% of 1: maxUnavailable rounds down to 0, maxSurge up to 1
    (4, "", (4, 1, 1)),
    (10, "", (10, 2, 3)),
    (3, "{maxUnavailable: 0, maxSurge: 1}", (3, 0, 1)),
    (3, "{maxUnavailable: '50%', maxSurge: 0}", (3, 1, 0)),
    (1, "{maxUnavailable: '10%', maxSurge: '0%'}", (1, 1, 0)),  # both resolve to 0: the controller uses 1
])
def test_rollout_budget_uses_upstream_defaults_and_rounding(replicas, rolling, expected):
    strategy = f"  strategy: {{type: RollingUpdate, rollingUpdate: {rolling}}}\n" if rolling else ""
    obj = inventory_from_yaml(deploy(replicas=replicas, strategy=strategy)).objects("Deployment")[0]
    kind, count, unavailable, surge = rollout_budget(obj)
    assert (kind, count, unavailable, surge) == ("RollingUpdate", *expected)


def test_rolling_update_verdicts():
    docs = (deploy("zero", replicas=3, strategy="  strategy: {rollingUpdate: {maxUnavailable: 0}}\n")
            + deploy("default4", replicas=4)
            + deploy("recreate", replicas=2, strategy="  strategy: {type: Recreate}\n")
            + deploy("all", replicas=2, strategy="  strategy: {rollingUpdate: {maxUnavailable: '100%'}}\n"))
    findings = {f.resource.name: f for f in run_check("resilience.rolling-update", inventory_from_yaml(docs))}
    assert findings["zero"].status is Status.PASS
    assert (findings["default4"].status, findings["default4"].severity) == (Status.FAIL, Severity.LOW)
    assert (findings["recreate"].status, findings["recreate"].severity) == (Status.FAIL, Severity.HIGH)
    assert "every update is an outage" in findings["recreate"].message
    assert (findings["all"].status, findings["all"].severity) == (Status.FAIL, Severity.HIGH)


def test_statefulset_on_delete_fails():
    sts = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: historian}
spec:
  replicas: 2
  updateStrategy: {type: OnDelete}
  selector: {matchLabels: {app: db}}
  template: {metadata: {labels: {app: db}}, spec: {containers: [{name: db, image: timescale:2}]}}
---
"""
    [finding] = run_check("resilience.rolling-update", inventory_from_yaml(sts))
    assert finding.status is Status.FAIL and "OnDelete" in finding.message


def test_production_scope_by_names_or_label_and_system_namespaces_are_skipped():
    docs = (deploy("a", namespace="mes", replicas=1) + deploy("b", namespace="lab", replicas=1)
            + deploy("c", namespace="kube-system", replicas=1)
            + "apiVersion: v1\nkind: Namespace\nmetadata: {name: lab, labels: {env: prod}}\n---\n")
    inv = inventory_from_yaml(docs)
    assert set(statuses(run_check("resilience.replicas", inv))) == {"Deployment/mes/a", "Deployment/lab/b"}
    by_name = run_check("resilience.replicas", inv, {"resilience": {"production_namespaces": ["me*"]}})
    assert set(statuses(by_name)) == {"Deployment/mes/a"}
    by_label = run_check("resilience.replicas", inv, {"resilience": {"production_label": "env=prod"}})
    assert set(statuses(by_label)) == {"Deployment/lab/b"}
    assert "production" not in by_label[0].message  # the scope note only appears when nothing is configured
    with pytest.raises(InputError, match="production_namespaces"):
        run_check("resilience.replicas", inv, {"resilience": {"production_namespaces": "mes"}})


def test_replicas_default_to_one_and_hpa_min_counts():
    hpa = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hpa, namespace: mes}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: scaled}, minReplicas: 2, maxReplicas: 5}
---
"""
    docs = deploy("single", replicas=None) + deploy("scaled", replicas=1) + hpa
    assert statuses(run_check("resilience.replicas", inventory_from_yaml(docs))) == {
        "Deployment/mes/single": Status.FAIL, "Deployment/mes/scaled": Status.PASS}


def test_readiness_probe_per_container_and_jobs_are_exempt():
    job = """
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: mes}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: migrate:1}]}}}
---
"""
    docs = deploy("with", probe=True) + deploy("without", probe=False) + job
    assert statuses(run_check("resilience.readiness-probe", inventory_from_yaml(docs))) == {
        "Deployment/mes/with": Status.PASS, "Deployment/mes/without[app]": Status.FAIL}


@pytest.mark.parametrize("spec, expected", [
    ("{maxUnavailable: 0, selector: {matchLabels: {app: api}}}", "maxUnavailable 0"),
    ("{maxUnavailable: '0%', selector: {matchLabels: {app: api}}}", "maxUnavailable 0%"),
    ("{maxUnavailable: '10%', selector: {matchLabels: {app: api}}}", None),  # rounds up to 1
    ("{minAvailable: 2, selector: {matchLabels: {app: api}}}", "minAvailable 2 of 2 pods"),
    ("{minAvailable: '60%', selector: {matchLabels: {app: api}}}", "minAvailable 60% of 2 pods"),  # ceil(1.2)
    ("{minAvailable: '50%', selector: {matchLabels: {app: api}}}", None),
    ("{minAvailable: 1, selector: {matchLabels: {app: api}}}", None),
])
def test_pdb_blocking_rules(spec, expected):
    obj = inventory_from_yaml(pdb("p", spec)).objects("PodDisruptionBudget", "policy")[0]
    assert pdb_blocks_all(obj, 2) == expected


def test_pdb_verdicts():
    docs = (deploy("ok", labels="{app: ok}") + pdb("ok", "{maxUnavailable: 1, selector: {matchLabels: {app: ok}}}")
            + deploy("none", labels="{app: none}")
            + deploy("blocked", labels="{app: blocked}")
            + pdb("blocked", "{maxUnavailable: 0, selector: {matchLabels: {app: blocked}}}")
            + deploy("twice", labels="{app: twice}")
            + pdb("t1", "{maxUnavailable: 1, selector: {matchLabels: {app: twice}}}")
            + pdb("t2", "{minAvailable: 1, selector: {matchExpressions: [{key: app, operator: In, values: [twice]}]}}")
            + deploy("single", replicas=1, labels="{app: single}"))
    findings = {f.resource.name: f for f in run_check("resilience.pdb", inventory_from_yaml(docs))}
    assert findings["ok"].status is Status.PASS
    assert findings["none"].status is Status.FAIL and "no PodDisruptionBudget" in findings["none"].message
    assert findings["blocked"].status is Status.FAIL and "allows no eviction" in findings["blocked"].message
    assert findings["twice"].status is Status.FAIL and "2 PodDisruptionBudgets" in findings["twice"].message
    assert "single" not in findings


def test_pdb_empty_selector_selects_all_pods_and_missing_selector_none():
    everything = deploy("a", labels="{app: a}") + pdb("all", "{maxUnavailable: 1, selector: {}}")
    assert [f.status for f in run_check("resilience.pdb", inventory_from_yaml(everything))] == [Status.PASS]
    nothing = deploy("a", labels="{app: a}") + pdb("none", "{maxUnavailable: 1}")
    assert [f.status for f in run_check("resilience.pdb", inventory_from_yaml(nothing))] == [Status.FAIL]


# ---- Kubernetes versions ------------------------------------------------------------------------------


def node(name: str, version: str) -> str:
    return f"""
apiVersion: v1
kind: Node
metadata: {{name: {name}}}
status: {{nodeInfo: {{kubeletVersion: {version}}}}}
---
"""


APISERVER = """
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver-cp1, namespace: kube-system, labels: {component: kube-apiserver, tier: control-plane}}
spec: {containers: [{name: kube-apiserver, image: "registry.k8s.io/kube-apiserver:%s", command: [kube-apiserver]}]}
---
"""


def test_release_table_is_consistent_and_dated():
    table = release_table()
    assert table.as_of >= dt.date(2026, 11, 1)
    assert table.end_of_life[(1, 27)] == dt.date(2024, 7, 16)
    assert table.end_of_life[(1, 34)] == dt.date(2026, 10, 27)
    # dates upstream moved off the usual 28th (kubernetes/website data/releases/eol.yaml), and the newest minor
    assert table.end_of_life[(1, 31)] == dt.date(2025, 11, 11)
    assert table.end_of_life[(1, 28)] == dt.date(2024, 10, 22)
    assert table.end_of_life[(1, 22)] == dt.date(2022, 12, 8)
    assert table.end_of_life[(1, 37)] == dt.date(2027, 10, 28)
    minors = sorted(table.end_of_life)
    assert all(table.end_of_life[a] < table.end_of_life[b] for a, b in itertools.pairwise(minors))


def test_versions_against_the_support_window():
    docs = (APISERVER % "v1.35.2" + node("new", "v1.35.2") + node("old", "v1.27.16")
            + node("eks", "v1.33.5-eks-113cf36") + node("ancient", "v1.18.20"))
    findings = run_check("resilience.k8s-version", inventory_from_yaml(docs), inputs={"as_of": AS_OF})
    got = {(f.resource.name if f.resource and f.resource.kind == "Node" else "api"): f for f in findings}
    assert got["api"].status is Status.PASS and "2027-02-28" in got["api"].message
    assert got["new"].status is Status.PASS
    assert got["old"].status is Status.FAIL
    assert "end of life on 2024-07-16" in got["old"].message and "as of 2026-" in got["old"].message
    assert got["eks"].status is Status.FAIL and "2026-06-28" in got["eks"].message
    assert got["ancient"].status is Status.FAIL and "older than 1.19" in got["ancient"].message


def test_version_skew_and_unknown_versions():
    docs = APISERVER % "v1.34.1" + node("ahead", "v1.35.0") + node("far", "v1.30.0") + node("future", "v1.99.0")
    findings = run_check("resilience.k8s-version", inventory_from_yaml(docs), inputs={"as_of": dt.date(2025, 1, 1)})
    got = {f.resource.name: f for f in findings if f.resource and f.resource.kind == "Node"}
    assert got["ahead"].status is Status.FAIL and "skew" in got["ahead"].message
    assert got["far"].status is Status.FAIL and "skew" in got["far"].message
    assert got["future"].status is Status.NOT_ASSESSED and "newer than the release table" in got["future"].message


def test_live_server_version_is_used_and_no_version_is_not_assessed():
    inv = inventory_from_yaml(node("node-a", "v1.35.1"))
    inv.source = SourceInfo("live", server_version="v1.35.1")
    findings = run_check("resilience.k8s-version", inv, inputs={"as_of": AS_OF})
    assert [f.status for f in findings] == [Status.PASS, Status.PASS]
    [na] = run_check("resilience.k8s-version", inventory_from_yaml(deploy()))
    assert na.status is Status.NOT_ASSESSED
    assert parse_version("v1.29.3+k3s1") == (1, 29) and parse_version("garbage") is None


def test_eol_warning_inside_sixty_days():
    findings = run_check("resilience.k8s-version", inventory_from_yaml(node("node-a", "v1.35.0")),
                         inputs={"as_of": dt.date(2027, 1, 15)})
    assert findings[0].status is Status.PASS and "support ends in 44 days" in findings[0].message


def test_kinds_that_could_not_be_listed_make_absence_no_evidence():
    """Live scan without permission to list a kind: the checks that rely on its absence say so."""
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: mes, labels: {nis2kube.io/data: plant}}\n"
    inv = inventory_from_yaml(deploy("api", replicas=3) + APISERVER % "v1.35.0" + namespace)
    denied = {("policy", "PodDisruptionBudget"): "pdb", ("", "Node"): "node",
              ("kyverno.io", "ClusterPolicy"): "kyverno", ("security.istio.io", "PeerAuthentication"): "istio",
              ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "crb", ("velero.io", "Restore"): "restore",
              ("networking.k8s.io", "Ingress"): "ingress"}
    inv.unlisted.update({key: f"forbidden ({tag})" for key, tag in denied.items()})
    inv.served_kinds = set()
    for check_id, tag in [("resilience.pdb", "pdb"), ("supply.signature-policy", "kyverno"),
                          ("crypto.mtls-sensitive", "istio"), ("identity.cert-admin", "crb"),
                          ("backup.restore-tested", "restore"), ("crypto.ingress-tls", "ingress")]:
        [finding] = run_check(check_id, inv)
        assert finding.status is Status.NOT_ASSESSED and f"forbidden ({tag})" in finding.message, check_id
    versions = run_check("resilience.k8s-version", inv, inputs={"as_of": AS_OF})
    assert [f.status for f in versions] == [Status.NOT_ASSESSED, Status.PASS]


# ---- upstream semantics: defaulting of null fields, StatefulSet partitions, DaemonSets, probes, skew ----------


def test_null_rolling_update_fields_take_the_api_defaults():
    """maxSurge: null is a nil pointer, which defaulting fills with 25% (not 0)."""
    strategy = "  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: null, maxUnavailable: 0}}\n"
    obj = inventory_from_yaml(deploy(replicas=4, strategy=strategy)).objects("Deployment")[0]
    assert rollout_budget(obj) == ("RollingUpdate", 4, 0, 1)
    [finding] = run_check("resilience.rolling-update", inventory_from_yaml(deploy(replicas=4, strategy=strategy)))
    assert finding.status is Status.PASS


def test_max_unavailable_is_capped_at_replicas_and_zero_when_scaled_to_zero():
    obj = inventory_from_yaml(deploy(replicas=2, strategy="  strategy: {rollingUpdate: {maxUnavailable: 5}}\n"))
    assert rollout_budget(obj.objects("Deployment")[0])[2] == 2
    [idle] = run_check("resilience.rolling-update", inventory_from_yaml(deploy(replicas=0)))
    assert idle.status is Status.PASS


def sts(name: str, strategy: str, replicas: int = 3) -> str:
    return f"""
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}, namespace: historian}}
spec:
  replicas: {replicas}
  updateStrategy: {strategy}
  selector: {{matchLabels: {{app: {name}}}}}
  template: {{metadata: {{labels: {{app: {name}}}}}, spec: {{containers: [{{name: db, image: timescale:2}}]}}}}
---
"""


def test_statefulset_partition_and_max_unavailable():
    docs = (sts("staged", "{type: RollingUpdate, rollingUpdate: {partition: 2}}")
            + sts("plain", "{type: RollingUpdate, rollingUpdate: {partition: 0}}")
            + sts("all", "{rollingUpdate: {maxUnavailable: '100%'}}")
            + sts("small", "{rollingUpdate: {maxUnavailable: '10%'}}"))  # rounds down to 0, then at least 1
    got = {f.resource.name: f for f in run_check("resilience.rolling-update", inventory_from_yaml(docs))}
    assert got["staged"].status is Status.FAIL and "partition 2" in got["staged"].message
    assert got["plain"].status is Status.PASS
    assert got["all"].status is Status.FAIL and "3 of 3" in got["all"].message
    assert got["small"].status is Status.PASS


def test_daemonset_on_delete_fails_and_rolling_update_passes():
    def ds(name: str, strategy: str) -> str:
        return f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}, namespace: mes}}
spec:
  updateStrategy: {strategy}
  selector: {{matchLabels: {{app: {name}}}}}
  template: {{metadata: {{labels: {{app: {name}}}}}, spec: {{containers: [{{name: a, image: agent:1}}]}}}}
---
"""
    docs = ds("manual", "{type: OnDelete}") + ds("rolling", "{}")
    got = statuses(run_check("resilience.rolling-update", inventory_from_yaml(docs)))
    assert got == {"DaemonSet/mes/manual": Status.FAIL, "DaemonSet/mes/rolling": Status.PASS}


def test_readiness_probe_needs_a_handler():
    empty = deploy("empty", probe=False).replace("image: registry.plant.example/mes/api:7.3.2",
                                                  "image: registry.plant.example/mes/api:7.3.2\n"
                                                  "          readinessProbe: {periodSeconds: 5}")
    grpc = deploy("grpc", probe=False).replace("image: registry.plant.example/mes/api:7.3.2",
                                                "image: registry.plant.example/mes/api:7.3.2\n"
                                                "          readinessProbe: {grpc: {port: 9090}}")
    assert statuses(run_check("resilience.readiness-probe", inventory_from_yaml(empty + grpc))) == {
        "Deployment/mes/empty[app]": Status.FAIL, "Deployment/mes/grpc": Status.PASS}


def test_pdb_null_max_unavailable_falls_back_to_min_available_and_v1beta1_empty_selector_selects_none():
    obj = inventory_from_yaml(pdb("p", "{maxUnavailable: null, minAvailable: 2, selector: {}}"))
    assert pdb_blocks_all(obj.objects("PodDisruptionBudget", "policy")[0], 2) == "minAvailable 2 of 2 pods"
    legacy = deploy("a", labels="{app: a}") + pdb("all", "{maxUnavailable: 1, selector: {}}").replace(
        "policy/v1", "policy/v1beta1")
    assert [f.status for f in run_check("resilience.pdb", inventory_from_yaml(legacy))] == [Status.FAIL]


def test_kubelets_before_1_25_may_only_be_two_minors_behind():
    docs = APISERVER % "v1.23.1" + node("three", "v1.20.15") + node("two", "v1.21.14")
    findings = run_check("resilience.k8s-version", inventory_from_yaml(docs), inputs={"as_of": dt.date(2022, 1, 10)})
    got = {f.resource.name: f for f in findings if f.resource and f.resource.kind == "Node"}
    assert got["three"].status is Status.FAIL and "up to 2 minor" in got["three"].message
    assert got["two"].status is Status.PASS


def test_ha_api_servers_are_each_judged_and_kubelet_skew_uses_the_oldest():
    docs = APISERVER % "v1.35.1" + APISERVER.replace("cp1", "cp2") % "v1.34.3" + node("ahead", "v1.35.1")
    findings = run_check("resilience.k8s-version", inventory_from_yaml(docs), inputs={"as_of": dt.date(2026, 3, 1)})
    [kubelet] = [f for f in findings if f.resource and f.resource.kind == "Node"]
    assert kubelet.status is Status.FAIL and "v1.34.3" in kubelet.message
    assert sorted(f.evidence["version"] for f in findings if f is not kubelet) == ["v1.34.3", "v1.35.1"]


def test_mirror_pod_is_recognised_by_its_name_without_the_component_label():
    unlabelled = APISERVER.replace("component: kube-apiserver, ", "") % "v1.35.2"
    [api] = run_check("resilience.k8s-version", inventory_from_yaml(unlabelled), inputs={"as_of": AS_OF})
    assert api.status is Status.PASS and api.evidence["version"] == "v1.35.2"


def test_apiserver_image_pinned_by_digest():
    image = "v1.35.2@sha256:" + "a" * 64
    [api] = run_check("resilience.k8s-version", inventory_from_yaml(APISERVER % image), inputs={"as_of": AS_OF})
    assert api.status is Status.PASS and api.evidence["version"] == "v1.35.2"
