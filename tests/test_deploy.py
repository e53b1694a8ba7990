"""deploy/ passes nis2kube's own scan, and its ClusterRole grants exactly what the live scanner lists.

No kustomize binary exists here, so `render` applies the subset of kustomize the bundle uses (resources,
components' resources and JSON 6902 patches, namespace, images, labels) and fails on anything else, so a
new kustomize feature in deploy/ cannot slip past the test unrendered.
"""

from __future__ import annotations

import copy
import pathlib

import yaml

from nis2kube.checks.registry import ScanContext
from nis2kube.config import config_from_dict
from nis2kube.engine import run_checks
from nis2kube.findings import Status
from nis2kube.images import parse_image
from nis2kube.inventory import Inventory
from nis2kube.inventory.files import load_paths
from nis2kube.inventory.kinds import group_of, is_namespaced
from nis2kube.inventory.live_kinds import CONFIGMAPS_WITH_DATA, kinds_without_secrets
from nis2kube.inventory.workloads import POD_TEMPLATE_PATHS

DEPLOY = pathlib.Path(__file__).resolve().parents[1] / "deploy"
KNOWN_KEYS = {"apiVersion", "kind", "resources", "components", "images", "labels", "patches"}
# Everything the bundle offers; the optional engines (Kyverno, prometheus-operator, Velero) are assumed present.
RECOMMENDED = ("serve", "verify-signatures", "monitoring", "backup")
# What only an optional component can satisfy, because it needs a tool the base cannot assume.
NEEDS_A_COMPONENT = {"admission.signature-enforced", "alerting.api-denied-alert", "alerting.falco-critical-alert",
                     "alerting.alertmanager-route", "backup.namespaces"}
# velero is where the backup component must put its Schedule: infrastructure we place an object in, not a
# namespace we run, so it is a system namespace for this scan (reported apart, like kube-system).
CONFIG = {"approved_registries": ["registry.example.eu"],
          "system_namespaces": ["kube-system", "kube-public", "kube-node-lease", "velero"]}
# Verdicts about what people did, which no manifest can show (a restore was actually tested).
ORGANISATIONAL = {"backup.restore-tested"}


def _objects(folder: pathlib.Path, names: list[str]) -> list[dict]:
    loaded = load_paths([str(folder / name) for name in names])
    assert not loaded.problems, loaded.problems
    return [obj for obj, _ in loaded.objects]


def _kustomization(folder: pathlib.Path) -> dict:
    doc = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert set(doc) <= KNOWN_KEYS, f"{folder}: kustomize features this test does not render: {set(doc) - KNOWN_KEYS}"
    return doc


def _json_patch(obj: dict, ops: list[dict]) -> None:
    for op in ops:
        assert op["op"] == "replace", "only `replace` patches are rendered"
        *parents, last = [int(p) if p.isdigit() else p for p in op["path"].strip("/").split("/")]
        node = obj
        for part in parents:
            node = node[part]
        assert last in node if isinstance(node, dict) else last < len(node), f"patch path {op['path']} missing"
        node[last] = op["value"]


def render(components: tuple[str, ...] = ()) -> list[dict]:
    base = _kustomization(DEPLOY)
    objects = _objects(DEPLOY, base["resources"])
    for name in components:
        folder = DEPLOY / "components" / name
        comp = _kustomization(folder)
        assert comp["kind"] == "Component"
        objects += _objects(folder, comp.get("resources") or [])
        for patch in comp.get("patches") or []:
            target = patch["target"]
            for obj in objects:
                if obj["kind"] == target["kind"] and obj["metadata"]["name"] == target["name"]:
                    _json_patch(obj, yaml.safe_load(patch["patch"]))
    images = {rule["name"]: rule for rule in base.get("images") or []}
    for obj in objects:
        if is_namespaced(group_of(obj["apiVersion"]), obj["kind"]):
            assert obj["metadata"].get("namespace"), f"{obj['kind']} {obj['metadata']['name']} names no namespace"
        for label_set in base.get("labels") or []:
            obj["metadata"].setdefault("labels", {}).update(label_set["pairs"])
        path = POD_TEMPLATE_PATHS.get((group_of(obj["apiVersion"]), obj["kind"]))
        if path is None:
            continue
        template = obj
        for part in path:
            template = template[part]
        for container in template["spec"]["containers"]:
            rule = images.get(parse_image(container["image"]).raw.split("@")[0].split(":")[0])
            assert rule is not None, f"image {container['image']} is not set through kustomize `images:`"
            container["image"] = f"{rule['newName']}@{rule['digest']}"
    return objects


def scan(objects: list[dict]):
    inv = Inventory()
    inv.extend((copy.deepcopy(o), None) for o in objects)
    return run_checks(ScanContext(inv, config_from_dict(CONFIG), {}))


def _failures(components: tuple[str, ...]) -> list[str]:
    result = scan(render(components))
    return [f"{f.check} {f.resource.display if f.resource else '(cluster)'}: {f.message}"
            for f in result.findings if f.status is Status.FAIL]


def test_our_own_scan_of_deploy_has_no_failing_finding():
    result = scan(render(RECOMMENDED))
    failures = [f"{f.check} {f.resource.display if f.resource else '(cluster)'}: {f.message}"
                for f in result.findings if f.status is Status.FAIL and not f.system and f.check not in ORGANISATIONAL]
    assert failures == []
    passed = {f.check for f in result.findings if f.status is Status.PASS}
    # The verdicts that matter for a scanner's own footprint were reached, not skipped.
    assert {"images.approved-registry", "images.digest-pinned", "rbac.wildcard", "admission.limits-enforced",
            "admission.registry-enforced", "admission.signature-enforced"} <= passed


def test_base_fails_only_where_an_optional_tool_is_needed():
    """`kubectl apply -k deploy/` must work on any cluster, so Kyverno/Velero/prometheus-operator objects are
    components; without them only the verdicts that need those tools fail."""
    result = scan(render())
    failed = {f.check for f in result.findings if f.status is Status.FAIL and not f.system}
    assert failed <= NEEDS_A_COMPONENT | ORGANISATIONAL
    assert "admission.signature-enforced" in failed


def test_admission_policy_allows_exactly_our_registry():
    base = _kustomization(DEPLOY)
    policy = next(o for o in render() if o["kind"] == "ValidatingAdmissionPolicy")
    prefix = base["images"][0]["newName"].rsplit("/", 1)[0] + "/"
    assert any(f"startsWith('{prefix}')" in v["expression"] for v in policy["spec"]["validations"])


def test_the_image_is_set_in_one_place_only():
    raw = [c["image"] for o in _objects(DEPLOY, _kustomization(DEPLOY)["resources"]) +
           _objects(DEPLOY / "components" / "serve", _kustomization(DEPLOY / "components" / "serve")["resources"])
           for c in _containers(o)]
    assert raw and set(raw) == {"nis2kube"}
    rendered = {c["image"] for o in render(("serve",)) for c in _containers(o)}
    assert len(rendered) == 1 and parse_image(rendered.pop()).digest.startswith("sha256:")


def _containers(obj: dict) -> list[dict]:
    path = POD_TEMPLATE_PATHS.get((group_of(obj["apiVersion"]), obj["kind"]))
    if path is None:
        return []
    template = obj
    for part in path:
        template = template[part]
    return template["spec"]["containers"]


def _rules(objects: list[dict], name: str) -> list[dict]:
    return next(o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == name)["rules"]


def test_clusterrole_grants_exactly_what_the_scanner_lists():
    rules = _rules(render(), "nis2kube-scanner")
    listed = {(g, r) for rule in rules if rule["verbs"] == ["list"] for g in rule["apiGroups"]
              for r in rule["resources"]}
    assert listed == {(k.group, k.resource) for k in kinds_without_secrets()}
    assert all(set(rule["verbs"]) <= {"get", "list"} for rule in rules)
    assert not any("*" in rule.get("resources", []) + rule["apiGroups"] + rule["verbs"] for rule in rules)
    gets = [rule for rule in rules if rule["verbs"] == ["get"]]
    # get: the one Namespace of `-n`, and the ConfigMaps read in full (mounted ones plus CONFIGMAPS_WITH_DATA).
    assert CONFIGMAPS_WITH_DATA
    assert sorted((tuple(r["apiGroups"]), tuple(r["resources"])) for r in gets) == [
        (("",), ("configmaps",)), (("",), ("namespaces",))]


def test_no_secrets_mode_by_default_and_metadata_mode_as_a_component():
    base = render()
    args = _containers(next(o for o in base if o["kind"] == "CronJob"))[0]["args"]
    assert args[0] == "scan" and "--no-secrets" in args
    assert {"--exit-zero", "--metrics"} <= set(args)  # a failed Job means a failed scan; findings go to metrics
    assert not any("secrets" in rule["resources"] for o in base if o["kind"] == "ClusterRole" for rule in o["rules"])
    opted = render(("secret-metadata",))
    args = _containers(next(o for o in opted if o["kind"] == "CronJob"))[0]["args"]
    assert args[0] == "scan" and "--no-secrets" not in args
    assert {"--exit-zero", "--metrics"} <= set(args)
    assert _rules(opted, "nis2kube-scanner-secret-metadata") == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]


def test_scanner_may_only_reach_the_api_server():
    objects = render()
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    deny = next(p for p in policies if p["spec"]["podSelector"] == {})
    assert sorted(deny["spec"]["policyTypes"]) == ["Egress", "Ingress"] and "ingress" not in deny["spec"]
    egress = [rule for p in policies if p["spec"]["podSelector"] for rule in p["spec"].get("egress") or []]
    assert egress and all("ipBlock" in peer and peer["ipBlock"]["cidr"].endswith("/32")
                          for rule in egress for peer in rule["to"])
    assert {port["port"] for rule in egress for port in rule["ports"]} == {443, 6443}


def test_dockerfile_is_multi_stage_non_root_and_digest_pinned():
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    froms = [line for line in lines if line.upper().startswith("FROM ")]
    assert len(froms) >= 2 and all("@sha256:" in line for line in froms)
    user = [line for line in lines if line.upper().startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("root", "0")
