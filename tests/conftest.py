"""Shared test helpers: build an Inventory from YAML text and run one check over it."""

from __future__ import annotations

import json
import pathlib
import textwrap

import pytest

from nis2kube.checks.registry import CheckContext, ScanContext, all_checks
from nis2kube.config import Config, config_from_dict
from nis2kube.findings import Finding, Status
from nis2kube.inventory import Inventory
from nis2kube.inventory.files import load_text

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXAMPLE = REPO / "examples" / "factory-hall"
# Tests on real third-party samples from ../shared/corpora; a clone without it skips them (and says so).
needs_corpora = pytest.mark.skipif(not (SHARED / "corpora").is_dir(),
                                   reason="../shared/corpora is not beside the project")


def inventory_from_yaml(text: str, name: str = "test.yaml") -> Inventory:
    """An Inventory from multi-document YAML text, read exactly as files are."""
    loaded = load_text(text, name)
    inv = Inventory()
    inv.problems.extend(loaded.problems)
    inv.extend(loaded.objects)
    return inv


def run_check(check_id: str, inv: Inventory, config: Config | dict | None = None, inputs: dict | None = None
              ) -> list[Finding]:
    """All findings of one check, as the engine would produce them (before waivers)."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    spec = all_checks()[check_id]
    return list(spec.func(CheckContext(ScanContext(inv, config or Config(), inputs or {}), spec)))


def statuses(findings: list[Finding]) -> dict[str, Status]:
    """resource display (plus [container]) -> status; handy for table-like assertions."""
    out = {}
    for f in findings:
        key = f.resource.display if f.resource else "(cluster)"
        if f.container:
            key += f"[{f.container}]"
        out[key] = f.status
    return out


def image_deployment(name: str, *images: str, namespace: str = "default") -> str:
    """A Deployment running these images, one container each (YAML with a trailing ---)."""
    containers = "\n".join(f"      - {{name: c{i}, image: \"{img}\"}}" for i, img in enumerate(images))
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
{containers}
---
"""


def apiserver_pod(*flags: str) -> str:
    """A kubeadm-style kube-apiserver static Pod with these command-line flags (YAML with a trailing ---)."""
    args = "".join(f"\n        - {json.dumps(flag)}" for flag in flags)
    return f"""
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver-cp1
  namespace: kube-system
  labels: {{component: kube-apiserver, tier: control-plane}}
spec:
  hostNetwork: true
  containers:
    - name: kube-apiserver
      image: registry.k8s.io/kube-apiserver:v1.35.0
      command:
        - kube-apiserver{args}
---
"""


@pytest.fixture
def shared_dir() -> pathlib.Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the project")
    return SHARED


def engine_webhook(config: str, hook: str, service_ns: str, namespace_selector: str = "",
                   object_selector: str = "", resources: str = "[pods]") -> str:
    """An engine's ValidatingWebhookConfiguration with one webhook on Pod CREATE, as a live dump holds it."""
    return textwrap.dedent(f"""\
        apiVersion: admissionregistration.k8s.io/v1
        kind: ValidatingWebhookConfiguration
        metadata: {{name: {config}}}
        webhooks:
        - name: {hook}
          failurePolicy: Fail
          clientConfig: {{service: {{name: {config}-svc, namespace: {service_ns}}}}}
          rules: [{{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: {resources}}}]
          {f"namespaceSelector: {namespace_selector}" if namespace_selector else ""}
          {f"objectSelector: {object_selector}" if object_selector else ""}
        ---
        """)


KYVERNO_HOOK = ("kyverno-resource-validating-webhook-cfg", "validate.kyverno.svc-fail", "kyverno")


def kyverno_configmap(filters: str, namespace: str = "kyverno", name: str = "kyverno") -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                       "data": {"resourceFilters": filters}}) + "\n---\n"
