"""Reading manifests from files, directories, Lists and stdin, and refusing hostile input cleanly."""

import json
import os

from nis2kube.inventory import from_paths
from nis2kube.inventory.files import load_paths, load_text, split_documents

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers: [{name: c, image: nginx:1.27}]
"""


def test_multi_document_yaml_with_comments_and_helm_sources(tmp_path):
    text = (
        "# Source: plant/templates/web.yaml\n" + DEPLOY + "---\n# Source: plant/templates/svc.yaml\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: mes}\n---\n---\n"
    )
    loaded = load_text(text, "chart.yaml")
    assert [o["kind"] for o, _ in loaded.objects] == ["Deployment", "Service"]
    (_, dep_loc), (_, svc_loc) = loaded.objects
    assert (dep_loc.document, dep_loc.line, dep_loc.helm_source) == (1, 2, "plant/templates/web.yaml")
    assert (svc_loc.document, svc_loc.line, svc_loc.helm_source) == (2, 12, "plant/templates/svc.yaml")
    assert loaded.problems == []


def test_missing_namespace_defaults_and_cluster_scoped_kinds_stay_without(tmp_path):
    (tmp_path / "a.yaml").write_text(
        DEPLOY + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n"
    )
    inv = from_paths([str(tmp_path)])
    assert inv.get("Deployment", "default", "web") is not None
    assert inv.get("ClusterRole", None, "r") is not None


def test_one_bad_document_does_not_hide_the_others(tmp_path):
    path = tmp_path / "mixed.yaml"
    broken = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n"
    path.write_text(DEPLOY + "---\n" + broken + "---\n" + DEPLOY.replace("web", "api"))
    loaded = load_paths([str(path)])
    assert sorted(o["metadata"]["name"] for o, _ in loaded.objects) == ["api", "web"]
    (problem,) = loaded.problems
    assert problem.level == "error" and problem.document == 2 and problem.file == str(path)
    assert problem.line is not None and 10 <= problem.line <= 14
    assert "invalid YAML" in str(problem)


def test_non_kubernetes_documents_are_skipped_with_a_warning():
    loaded = load_text("foo: bar\n---\n- a\n- b\n---\n" + DEPLOY, "x.yaml")
    assert len(loaded.objects) == 1
    assert [p.level for p in loaded.problems] == ["warning", "warning"]
    assert "no apiVersion/kind" in loaded.problems[0].message


def test_kubectl_list_dump_json_and_raw_api_lists(tmp_path):
    dump = {
        "apiVersion": "v1", "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mes"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "mes"}},
        ],
    }  # fmt: skip
    raw = {"apiVersion": "v1", "kind": "PodList", "items": [{"metadata": {"name": "p", "namespace": "mes"}}]}
    (tmp_path / "dump.json").write_text(json.dumps(dump))
    (tmp_path / "pods.json").write_text(json.dumps(raw))
    inv = from_paths([str(tmp_path)])
    assert inv.get("Deployment", "mes", "d") is not None
    pod = inv.get("Pod", "mes", "p")
    assert pod is not None and pod["apiVersion"] == "v1"
    assert inv.location(inv.get("Deployment", "mes", "d")).item == 2


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "apiVersion": "v1",\n  "kind": "Pod",\n  oops\n}')
    loaded = load_paths([str(path)])
    assert loaded.objects == []
    assert loaded.problems[0].line == 4


def test_binary_unreadable_missing_and_oversized_inputs(tmp_path):
    (tmp_path / "blob.yaml").write_bytes(b"\x00\x01\x02binary")
    big = tmp_path / "big.yaml"
    big.write_text(DEPLOY * 10)
    secret = tmp_path / "locked.yaml"
    secret.write_text(DEPLOY)
    secret.chmod(0)
    loaded = load_paths([str(tmp_path / "blob.yaml"), str(tmp_path / "nope.yaml"), str(big)], max_document_bytes=100)
    messages = [p.message for p in loaded.problems]
    assert any("binary" in m for m in messages)
    assert any("no such file" in m for m in messages)
    assert any("limit" in m for m in messages)
    assert loaded.objects == []
    if os.geteuid() != 0:  # root reads anything
        assert "cannot read" in load_paths([str(secret)]).problems[0].message


def test_symlink_loops_do_not_hang(tmp_path):
    sub = tmp_path / "a"
    sub.mkdir()
    (sub / "d.yaml").write_text(DEPLOY)
    os.symlink(tmp_path, sub / "loop")
    loaded = load_paths([str(tmp_path)])
    assert len(loaded.objects) == 1
    assert any("twice" in p.message for p in loaded.problems)


def test_directory_scan_ignores_our_own_config_and_kustomization(tmp_path):
    (tmp_path / "nis2kube.yaml").write_text("approved_registries: [r.example]\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [d.yaml]\n")
    (tmp_path / "d.yaml").write_text(DEPLOY)
    loaded = load_paths([str(tmp_path)])
    assert len(loaded.objects) == 1 and loaded.problems == []


def test_split_documents_keeps_inline_content_and_line_numbers():
    parts = list(split_documents("a: 1\n--- {b: 2}\n...\n---\nc: 3\n"))
    assert [(line, text.strip()) for line, text in parts] == [(1, "a: 1"), (2, "{b: 2}"), (4, ""), (4, "c: 3")]


def test_document_separator_inside_block_scalar_still_splits():
    # YAML forbids `---` at column 0 inside a document; Kubernetes' decoder splits there too.
    loaded = load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  x: |\n    line\n---\n" + DEPLOY)
    assert [o["kind"] for o, _ in loaded.objects] == ["ConfigMap", "Deployment"]


def test_unquoted_boolean_namespace_is_refused_and_own_documents_are_skipped_quietly():
    text = DEPLOY.replace("  name: web\n", "  name: web\n  namespace: y\n")
    flows = "apiVersion: nis2kube.io/v1alpha1\nkind: FlowSpec\nflows: []\n"
    loaded = load_text(text + "---\n" + flows, "x.yaml")
    assert loaded.objects == []
    (problem,) = loaded.problems
    assert "metadata.namespace is not a string" in problem.message


def test_an_object_given_twice_keeps_the_last_copy_its_location_and_one_shared_ref(tmp_path):
    """A manifest and a dump naming the same object: the last one read wins, findings point at its file,
    and every check reporting on it shares one ResourceRef (encoded once in the report)."""
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plc, namespace: ot}\n")
    (tmp_path / "b.yaml").write_text("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: plc, namespace: ot}\n"
                                     "data: {mode: safe}\n")
    inv = from_paths([str(tmp_path)])
    (obj,) = inv.objects("ConfigMap")
    assert obj["data"] == {"mode": "safe"}
    ref = inv.ref(obj)
    assert ref.location.file.endswith("b.yaml") and ref.location.line == 2
    assert inv.ref(obj) is ref
    assert inv.namespaces() == ["ot"]
    assert inv.ref({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ot"}}).location \
        is None  # an object the inventory does not hold gets no location, whatever its id


def test_loading_leaves_what_it_loaded_out_of_the_cyclic_collector(tmp_path):
    """Loaded documents hold no cycles: left in the youngest generation, every object would be walked by the
    next collection (and by the full one at exit) for nothing - at 100k objects that was half the load time."""
    import gc

    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plc, namespace: ot}\n"
                                      "data: {mode: safe}\n")
    enabled = gc.isenabled()
    inv = from_paths([str(tmp_path)])
    (obj,) = inv.objects("ConfigMap")
    assert gc.isenabled() == enabled  # the collector's state is restored
    assert gc.is_tracked(obj) and not any(o is obj for o in gc.get_objects())  # frozen: in no generation


def test_json_is_read_from_bytes_and_everything_else_keeps_the_text_path(tmp_path):
    """A dump parses straight from its bytes (BOM or not); bytes that are not valid UTF-8, and YAML flow
    documents that start like JSON, still get the text path's verdicts."""
    cm = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plc", "namespace": "ot"}}'
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf\n  " + cm)
    (tmp_path / "flow.yaml").write_bytes(b"{apiVersion: v1, kind: ConfigMap, metadata: {name: hmi, namespace: ot}}")
    (tmp_path / "latin1.json").write_bytes(cm.replace(b"plc", b"pl\xe9"))
    inv = from_paths([str(tmp_path)])
    assert sorted(o["metadata"]["name"] for o in inv.objects("ConfigMap")) == ["hmi", "plc"]
    (problem,) = inv.problems
    assert problem.file.endswith("latin1.json") and "not valid UTF-8" in problem.message
