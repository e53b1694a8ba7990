"""The live inventory against a loopback fake API server: auth, discovery, pagination, faults, secrecy."""

from __future__ import annotations

import copy
import os
import pathlib
import stat
import sys

import orjson
import pytest

from nis2kube.inventory.files import load_paths
from nis2kube.inventory.live import LiveError, LiveOptions, from_cluster, restore_snapshot, snapshot_document
from nis2kube.inventory.live_http import ClusterTarget
from nis2kube.inventory.live_kinds import LIVE_KINDS

from .fakeapi import TOKEN, FakeApiServer, Faults

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "cluster.yaml"


def fixture_objects() -> list[dict]:
    loaded = load_paths([str(FIXTURE)])
    assert not loaded.problems
    return [copy.deepcopy(obj) for obj, _ in loaded.objects]


def scan_live(api: FakeApiServer, tmp_path: pathlib.Path, **options: object):
    target = ClusterTarget(kubeconfig=api.kubeconfig(str(tmp_path / "kubeconfig")), backoff_base=0.001)
    return from_cluster(target, LiveOptions(page_size=2, **options))


def names(inv, kind: str, group: str | None = None) -> set[str]:
    return {o["metadata"]["name"] for o in inv.objects(kind, group)}


def test_lists_every_served_kind_with_pagination_and_provenance(tmp_path):
    with FakeApiServer(fixture_objects()) as api:
        inv = scan_live(api, tmp_path)
    assert names(inv, "Namespace") == {"ot-sensors", "mes", "kube-system"}
    assert names(inv, "Deployment") == {"mqtt-broker", "mes-frontend"}
    assert names(inv, "ClusterPolicy") == {"require-digest"}
    dep = inv.get("Deployment", "ot-sensors", "mqtt-broker")
    assert dep["apiVersion"] == "apps/v1" and dep["kind"] == "Deployment"
    # Owner chains resolve as offline: Pod -> ReplicaSet -> Deployment by uid.
    pod = inv.get("Pod", "ot-sensors", "mqtt-broker-7d9f8c6b5-x2k8p")
    assert inv.owner(inv.owner(pod)) is dep
    assert inv.source.type == "live" and inv.source.cluster == "plant-1"
    assert inv.source.server_version == "v1.31.2" and inv.source.captured_at.endswith("Z")
    assert inv.kind_served("PrometheusRule") is True
    assert inv.kind_served("VulnerabilityReport") is False  # Trivy Operator not installed: evidence
    assert inv.unlisted == {}
    # 3 namespaces with limit=2 took two pages, the second with the continue token.
    ns_lists = [r for r in api.requests if r.path == "/api/v1/namespaces"]
    assert [r.query.get("continue") is not None for r in ns_lists] == [False, True]
    assert all(r.query["limit"] == "2" for r in ns_lists)


def test_only_get_is_ever_sent_and_always_authenticated(tmp_path):
    with FakeApiServer(fixture_objects()) as api:
        scan_live(api, tmp_path)
    assert api.requests
    assert {r.method for r in api.requests} == {"GET"}
    assert {r.authorization for r in api.requests} == {f"Bearer {TOKEN}"}
    # Nothing asks for watch streams or writes through query parameters either.
    assert not any("watch" in r.query or "dryRun" in r.query for r in api.requests)


def test_secret_data_is_never_requested_nor_kept(tmp_path):
    with FakeApiServer(fixture_objects()) as api:
        inv = scan_live(api, tmp_path)
    secret_requests = [r for r in api.requests if "secrets" in r.path]
    assert secret_requests
    for req in secret_requests:
        assert req.path == "/api/v1/secrets"  # a list, never a GET of one Secret
        assert req.accept == "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    secret = inv.get("Secret", "ot-sensors", "mqtt-credentials")
    assert set(secret) == {"apiVersion", "kind", "metadata"}
    assert secret["metadata"]["labels"] == {"app": "mqtt-broker"}
    # kubectl's last-applied annotation would carry the value; it is dropped.
    assert "annotations" not in secret["metadata"] or not secret["metadata"]["annotations"]
    assert b"c3VwZXJzZWNyZXQ" not in orjson.dumps(snapshot_document(inv))


def test_configmaps_are_metadata_only_except_the_ones_checks_read(tmp_path):
    with FakeApiServer(fixture_objects()) as api:
        inv = scan_live(api, tmp_path)
    assert "data" not in inv.get("ConfigMap", "mes", "mes-settings")  # env settings: not a file checks read
    assert "kubernetes cluster.local" in inv.get("ConfigMap", "kube-system", "coredns")["data"]["Corefile"]
    assert "allow_anonymous false" in inv.get("ConfigMap", "ot-sensors", "mosquitto-conf")["data"]["mosquitto.conf"]
    gets = sorted(r.path for r in api.requests if "/configmaps/" in r.path)
    assert gets == ["/api/v1/namespaces/kube-system/configmaps/coredns",
                    "/api/v1/namespaces/ot-sensors/configmaps/mosquitto-conf"]
    assert all(r.accept.startswith("application/json;as=PartialObjectMetadataList")
               for r in api.requests if r.path == "/api/v1/configmaps")


def test_mounted_configmaps_are_found_in_pods_and_templates():
    from nis2kube.inventory.live import mounted_configmaps

    objects = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
         "spec": {"volumes": [{"name": "v", "configMap": {"name": "direct"}}, {"name": "e", "emptyDir": {}}]}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "b"},
         "spec": {"jobTemplate": {"spec": {"template": {"spec": {"volumes": [
             {"name": "p", "projected": {"sources": [{"configMap": {"name": "projected"}},
                                                     {"serviceAccountToken": {"path": "t"}}]}}]}}}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "c"},
         "spec": {"template": {"spec": {"containers": [{"name": "x", "envFrom": [
             {"configMapRef": {"name": "env-only"}}]}]}}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "a"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "odd", "namespace": "a"},
         "spec": {"volumes": ["not-a-volume", {"name": "x", "configMap": None}]}},
    ]
    assert mounted_configmaps(objects) == {("a", "direct"), ("b", "projected")}


def test_server_ignoring_metadata_only_is_refused(tmp_path):
    with FakeApiServer(fixture_objects(), Faults(ignore_metadata_accept=True)) as api:
        inv = scan_live(api, tmp_path)
    assert inv.objects("Secret") == []
    assert "refusing to read their contents" in inv.unlisted_reason("Secret")


def test_no_secrets_mode_never_touches_secrets(tmp_path):
    with FakeApiServer(fixture_objects()) as api:
        inv = scan_live(api, tmp_path, no_secrets=True)
    assert not any("secrets" in r.path for r in api.requests)
    assert inv.objects("Secret") == []
    assert "--no-secrets" in inv.unlisted_reason("Secret")


def test_forbidden_kind_is_unlisted_with_the_rule_to_add_and_the_scan_goes_on(tmp_path):
    with FakeApiServer(fixture_objects(), Faults(forbidden={"clusterroles", "clusterpolicies"})) as api:
        inv = scan_live(api, tmp_path)
    reason = inv.unlisted_reason("ClusterRole")
    assert reason.startswith("missing permission to list clusterroles.rbac.authorization.k8s.io (403 Forbidden)")
    assert 'apiGroups: ["rbac.authorization.k8s.io"], resources: ["clusterroles"], verbs: ["list"]' in reason
    assert "clusterpolicies.kyverno.io" in inv.unlisted_reason("ClusterPolicy")
    assert inv.objects("ClusterRole") == []
    assert names(inv, "ClusterRoleBinding") == {"ops-admin"}
    assert inv.unlisted_reason("Deployment") is None


def test_throttling_and_unavailability_are_retried(tmp_path):
    faults = Faults(throttle={"deployments": 3}, unavailable={"pods": 2})
    with FakeApiServer(fixture_objects(), faults) as api:
        inv = scan_live(api, tmp_path)
    assert names(inv, "Deployment") == {"mqtt-broker", "mes-frontend"}
    assert names(inv, "Pod") == {"mqtt-broker-7d9f8c6b5-x2k8p"}
    deployment_lists = [r for r in api.requests if r.path == "/apis/apps/v1/deployments"]
    assert len(deployment_lists) == 3 + 1  # three 429s, then the single page
    assert inv.unlisted == {}


def test_persistent_failure_gives_up_with_a_clear_error(tmp_path):
    with FakeApiServer(fixture_objects(), Faults(unavailable={"pods": 100})) as api:
        target = ClusterTarget(kubeconfig=api.kubeconfig(str(tmp_path / "kc")), attempts=3, backoff_base=0.001)
        inv = from_cluster(target, LiveOptions(page_size=2))
    assert "HTTP 503" in inv.unlisted_reason("Pod") and "etcd leader changed" in inv.unlisted_reason("Pod")
    assert names(inv, "Deployment") == {"mqtt-broker", "mes-frontend"}


def test_expired_continue_token_restarts_the_list_without_duplicates(tmp_path):
    with FakeApiServer(fixture_objects(), Faults(expire_once={"namespaces"})) as api:
        inv = scan_live(api, tmp_path)
    assert sorted(o["metadata"]["name"] for o in inv.objects("Namespace")) == ["kube-system", "mes", "ot-sensors"]
    ns_lists = [r for r in api.requests if r.path == "/api/v1/namespaces"]
    assert [r.query.get("continue") is not None for r in ns_lists] == [False, True, False, True]


def test_slow_response_within_timeout_is_waited_for(tmp_path):
    with FakeApiServer(fixture_objects(), Faults(slow={"deployments": 0.3})) as api:
        target = ClusterTarget(kubeconfig=api.kubeconfig(str(tmp_path / "kc")), request_timeout=5)
        inv = from_cluster(target, LiveOptions(page_size=2))
    assert names(inv, "Deployment") == {"mqtt-broker", "mes-frontend"}


def test_response_slower_than_the_timeout_is_retried(tmp_path):
    with FakeApiServer(fixture_objects(), Faults(slow={"deployments": 1.0})) as api:
        target = ClusterTarget(kubeconfig=api.kubeconfig(str(tmp_path / "kc")), request_timeout=0.3,
                               backoff_base=0.001)
        inv = from_cluster(target, LiveOptions(page_size=2))
    assert names(inv, "Deployment") == {"mqtt-broker", "mes-frontend"}
    assert len([r for r in api.requests if r.path == "/apis/apps/v1/deployments"]) == 2  # timed out, then answered


def test_broken_aggregated_api_is_a_warning_not_a_failure(tmp_path):
    objects = fixture_objects()
    with FakeApiServer(objects, Faults(broken_discovery={"/apis/monitoring.coreos.com/v1"})) as api:
        inv = scan_live(api, tmp_path)
    assert inv.kind_served("PrometheusRule") is False
    assert any("monitoring.coreos.com/v1" in p.message and p.level == "warning" for p in inv.problems)
    assert names(inv, "Deployment") == {"mqtt-broker", "mes-frontend"}


def test_namespace_scope_lists_only_that_namespace(tmp_path):
    with FakeApiServer(fixture_objects()) as api:
        inv = scan_live(api, tmp_path, namespace="ot-sensors")
    assert names(inv, "Namespace") == {"ot-sensors"}
    assert names(inv, "Deployment") == {"mqtt-broker"}
    assert names(inv, "ClusterRoleBinding") == {"ops-admin"}  # cluster-scoped kinds still matter for RBAC
    assert "/apis/apps/v1/namespaces/ot-sensors/deployments" in {r.path for r in api.requests}
    assert "/apis/apps/v1/deployments" not in {r.path for r in api.requests}


def test_wrong_token_is_a_clear_error(tmp_path):
    with FakeApiServer(fixture_objects()) as api:
        target = ClusterTarget(kubeconfig=api.kubeconfig(str(tmp_path / "kc"), token="wrong"))
        with pytest.raises(LiveError, match="authentication refused"):
            from_cluster(target)


def test_missing_kubeconfig_is_a_clear_error(tmp_path):
    with pytest.raises(LiveError, match=r"cannot load cluster credentials from .*nope"):
        from_cluster(ClusterTarget(kubeconfig=str(tmp_path / "nope")))


def test_unknown_context_is_a_clear_error(tmp_path):
    with FakeApiServer([]) as api:
        target = ClusterTarget(kubeconfig=api.kubeconfig(str(tmp_path / "kc")), context="prod-plant-9")
        with pytest.raises(LiveError, match="prod-plant-9"):
            from_cluster(target)


def test_several_kubeconfig_files_and_an_exec_plugin(tmp_path, monkeypatch):
    """KUBECONFIG with two files; the user's token comes from an exec credential plugin."""
    plugin = tmp_path / "token-plugin"
    plugin.write_text(
        f"#!{sys.executable}\nimport json\nprint(json.dumps({{'apiVersion': 'client.authentication.k8s.io/v1', "
        f"'kind': 'ExecCredential', 'status': {{'token': '{TOKEN}'}}}}))\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    with FakeApiServer(fixture_objects()) as api:
        clusters = tmp_path / "clusters.yaml"
        clusters.write_text(f"apiVersion: v1\nkind: Config\nclusters:\n- name: hall\n  cluster:\n"
                            f"    server: {api.url}\n")
        users = tmp_path / "users.yaml"
        users.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: hall-sso\nusers:\n- name: sso\n  user:\n    exec:\n"
            f"      apiVersion: client.authentication.k8s.io/v1\n      command: {plugin}\n"
            "      interactiveMode: Never\ncontexts:\n- name: hall-sso\n  context: {cluster: hall, user: sso}\n")
        monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(clusters), str(users)]))
        inv = from_cluster(ClusterTarget(backoff_base=0.001), LiveOptions())
    assert inv.source.cluster == "hall-sso"
    assert names(inv, "Deployment") == {"mqtt-broker", "mes-frontend"}


def test_snapshot_round_trip_restores_provenance_and_gaps(tmp_path):
    with FakeApiServer(fixture_objects(), Faults(forbidden={"roles"})) as api:
        inv = scan_live(api, tmp_path)
    dump = tmp_path / "dump.json"
    dump.write_bytes(orjson.dumps(snapshot_document(inv)))
    from nis2kube.inventory import from_paths

    offline = from_paths([str(dump)])
    restore_snapshot(offline, [str(dump)])
    assert offline.problems == []
    assert offline.source.cluster == "plant-1" and offline.source.server_version == "v1.31.2"
    assert offline.served_kinds == inv.served_kinds
    assert offline.unlisted == inv.unlisted
    assert {(g, k): len(offline.objects(k, g)) for g, k in offline.kinds()} == \
        {(g, k): len(inv.objects(k, g)) for g, k in inv.kinds()}


def test_restore_ignores_plain_files(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text('{"apiVersion": "v1", "kind": "List", "items": []}')
    from nis2kube.inventory import from_paths

    inv = from_paths([str(plain)])
    restore_snapshot(inv, [str(plain), str(tmp_path / "missing.json")])
    assert inv.served_kinds is None and inv.source.cluster is None


def test_every_live_kind_is_unique():
    keys = [(k.group, k.kind) for k in LIVE_KINDS]
    assert len(keys) == len(set(keys))


def test_connection_failures_for_one_kind_do_not_abort_the_scan(tmp_path):
    with FakeApiServer(fixture_objects(), Faults(slow={"pods": 2.0})) as api:
        target = ClusterTarget(kubeconfig=api.kubeconfig(str(tmp_path / "kc")), request_timeout=0.2, attempts=1)
        inv = from_cluster(target, LiveOptions(page_size=2))
    assert "listing pods failed" in inv.unlisted_reason("Pod") and "ReadTimeoutError" in inv.unlisted_reason("Pod")
    assert names(inv, "Deployment") == {"mqtt-broker", "mes-frontend"}


def test_in_cluster_service_account_is_used_when_no_kubeconfig_exists(tmp_path, monkeypatch):
    from kubernetes.config import incluster_config

    from nis2kube.inventory.live_http import connect

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("projected-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    transport = connect(ClusterTarget())
    assert transport.cluster == "in-cluster" and transport.host == "https://10.96.0.1:443"
    scheme, _, credential = transport._auth_headers()["authorization"].partition(" ")
    assert scheme.lower() == "bearer" and credential == "projected-token"  # the scheme is case-insensitive
    # An explicit kubeconfig always wins over the mounted account.
    with pytest.raises(LiveError, match="cannot load cluster credentials"):
        connect(ClusterTarget(kubeconfig=str(tmp_path / "absent")))
