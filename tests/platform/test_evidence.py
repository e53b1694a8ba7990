"""The --evidence file contract and the evidence.* checks (presence and age of attestations)."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import inventory_from_yaml, run_check
from nis2kube.checks.registry import InputError, ScanContext
from nis2kube.engine import run_checks
from nis2kube.evidence_file import MAX_BYTES, load_evidence, parse_evidence
from nis2kube.findings import Status

AS_OF = dt.date(2026, 11, 22)
CONTRACT = """apiVersion: nis2kube.io/v1alpha1
kind: Evidence
penetration_test: {date: 2026-05-10, report: "https://wiki.plant.example/pentest-2026", by: "Example GmbH"}
incident_runbook: {location: "https://wiki.plant.example/runbooks/incident", reviewed: 2026-09-01}
on_call: {rotation: "pagerduty:ot-oncall", reviewed: 2026-10-01}
csirt_contact: {name: "CERT-Bund / BSI", portal: "https://...", email: "...", reviewed: 2026-10-01}
log_retention: {days: 400, system: "OpenSearch ILM policy audit-400d", attested_by: "j.doe", date: 2026-11-01}
etcd_backup: {schedule: "0 */6 * * *", retention_days: 35, offsite: true, last_restore_test: 2026-08-01}
"""
HEAD = "apiVersion: nis2kube.io/v1alpha1\nkind: Evidence\n"
CHECKS = ("evidence.penetration-test", "evidence.incident-runbook", "evidence.on-call", "evidence.csirt-contact")


def write(tmp_path, text: str) -> str:
    path = tmp_path / "evidence.yaml"
    path.write_text(text)
    return str(path)


def run(check_id: str, path: str | None, config: dict | None = None, as_of: dt.date = AS_OF):
    inputs = {"as_of": as_of}
    if path:
        inputs["evidence"] = path
    return run_check(check_id, inventory_from_yaml(""), config, inputs)


def test_the_contract_example_parses_with_dates_as_dates(tmp_path):
    data = load_evidence(write(tmp_path, CONTRACT))
    assert data["penetration_test"]["date"] == dt.date(2026, 5, 10)
    assert data["log_retention"]["days"] == 400
    assert data["etcd_backup"]["offsite"] is True
    assert data["csirt_contact"]["name"] == "CERT-Bund / BSI"
    assert set(data) == {"penetration_test", "incident_runbook", "on_call", "csirt_contact", "log_retention",
                         "etcd_backup"}


def test_every_section_is_optional():
    assert parse_evidence(HEAD) == {}
    assert parse_evidence(HEAD + "on_call:\n") == {}


@pytest.mark.parametrize("body, message", [
    ("penetration_tests: {date: 2026-01-01}\n", "unknown section 'penetration_tests'"),
    ("penetration_test: {date: 2026-13-01}\n", "penetration_test.date: '2026-13-01' is not a calendar date"),
    ("penetration_test: {date: 10.05.2026}\n", "penetration_test.date: must be a date YYYY-MM-DD"),
    ("penetration_test: {by: someone}\n", "penetration_test: missing required field 'date'"),
    ("on_call: {rotation: x, owner: y}\n", "on_call.owner: unknown field"),
    ("log_retention: {days: -1}\n", "log_retention.days: must be a whole number of days"),
    ("log_retention: {days: yes}\n", "log_retention.days"),  # YAML 1.1: yes is a boolean
    ("etcd_backup: {schedule: daily, offsite: maybe}\n", "etcd_backup.offsite: must be true or false"),
    ("csirt_contact: {name: ''}\n", "csirt_contact.name: must be a non-empty text"),
    ("on_call: [a, b]\n", "on_call must be a mapping"),
    ("on_call: {rotation: x}\n---\nkind: Evidence\n", "more than one YAML document"),
    ("on_call: {rotation: [\n", "invalid YAML"),
])
def test_bad_files_name_the_field(tmp_path, body, message):
    path = write(tmp_path, HEAD + body)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")) as err:
        load_evidence(path)
    assert path in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("kind: Evidence\n", "expected apiVersion"),
    ("apiVersion: v1\nkind: ConfigMap\n", "expected apiVersion"),
    ("- a\n", "top level must be a mapping"),
])
def test_wrong_kinds_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        parse_evidence(text, "e.yaml")


def test_size_encoding_and_missing_file_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(HEAD.encode() + b"#" * (MAX_BYTES + 10))
    with pytest.raises(InputError, match="larger than"):
        load_evidence(str(big))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(HEAD.encode() + "on_call: {rotation: M\xfcller}\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        load_evidence(str(latin))
    with pytest.raises(InputError, match="cannot read"):
        load_evidence(str(tmp_path / "nope.yaml"))


def test_contract_example_passes_every_evidence_check(tmp_path):
    path = write(tmp_path, CONTRACT)
    for check_id in CHECKS:
        [finding] = run(check_id, path)
        assert finding.status is Status.PASS, (check_id, finding.message)


def test_no_file_is_not_assessed_and_missing_sections_fail(tmp_path):
    for check_id in CHECKS:
        [finding] = run(check_id, None)
        assert finding.status is Status.NOT_ASSESSED
    empty = write(tmp_path, HEAD)
    for check_id in CHECKS:
        [finding] = run(check_id, empty)
        assert finding.status is Status.FAIL and "missing from the evidence file" in finding.message


def test_pentest_age_limit_and_future_dates(tmp_path):
    path = write(tmp_path, CONTRACT)
    [stale] = run("evidence.penetration-test", path, as_of=dt.date(2027, 6, 1))
    assert stale.status is Status.FAIL and "387 days ago (limit 365)" in stale.message
    [custom] = run("evidence.penetration-test", path, {"evidence": {"pentest_max_age_days": 400}},
                   as_of=dt.date(2027, 6, 1))
    assert custom.status is Status.PASS
    [future] = run("evidence.penetration-test", path, as_of=dt.date(2026, 1, 1))
    assert future.status is Status.FAIL and "in the future" in future.message
    with pytest.raises(InputError, match="pentest_max_age_days"):
        run("evidence.penetration-test", path, {"evidence": {"pentest_max_age_days": 0}})


def test_review_dates(tmp_path):
    undated = write(tmp_path, HEAD + "incident_runbook: {location: https://wiki/runbook}\n")
    [finding] = run("evidence.incident-runbook", undated)
    assert finding.status is Status.FAIL and "without a date" in finding.message
    old = write(tmp_path, HEAD + "on_call: {rotation: pagerduty:ot, reviewed: 2024-01-01}\n")
    [finding] = run("evidence.on-call", old)
    assert finding.status is Status.FAIL and "2024-01-01" in finding.message


def test_csirt_contact_needs_a_channel(tmp_path):
    path = write(tmp_path, HEAD + "csirt_contact: {name: CERT-Bund, reviewed: 2026-10-01}\n")
    [finding] = run("evidence.csirt-contact", path)
    assert finding.status is Status.FAIL and "no reporting channel" in finding.message


def test_a_bad_file_is_not_assessed_for_every_check_in_the_engine(tmp_path):
    path = write(tmp_path, HEAD + "penetration_test: {date: soon}\n")
    result = run_checks(ScanContext(inventory_from_yaml(""), inputs={"evidence": path}), include=["evidence.*"])
    assert len(result.findings) == 4
    assert all(f.status is Status.NOT_ASSESSED and "penetration_test.date" in f.message for f in result.findings)


# Realistic objects read by every part-B family, for the hostile-input test below.
HOSTILE_BASE = """apiVersion: v1
kind: Namespace
metadata:
  name: mes
  labels:
    nis2kube.io/data: personal
    istio-injection: enabled
  annotations:
    linkerd.io/inject: disabled
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: mes
spec:
  replicas: 3
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
      - name: api
        image: registry.plant.example/mes/api:7.3.2
        readinessProbe:
          httpGet:
            path: /healthz
            port: 8080
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: mes
spec:
  replicas: 2
  updateStrategy:
    type: RollingUpdate
  selector:
    matchLabels:
      app: db
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes:
      - ReadWriteOnce
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
      - name: db
        image: nginx:1.16
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: api
  namespace: mes
spec:
  minAvailable: 50%
  selector:
    matchLabels:
      app: api
    matchExpressions:
    - key: app
      operator: In
      values:
      - api
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: api
  namespace: mes
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: api
  minReplicas: 2
  maxReplicas: 4
---
apiVersion: v1
kind: Node
metadata:
  name: node-a
status:
  nodeInfo:
    kubeletVersion: v1.34.1
---
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver-cp1
  namespace: kube-system
  labels:
    component: kube-apiserver
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.34.1
    command:
    - kube-apiserver
    - --oidc-issuer-url=https://idp
    - --authorization-mode=Node
    - RBAC
    - --etcd-servers=https://e:2379
    - --tls-min-version=VersionTLS12
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: mes
spec:
  tls:
  - hosts:
    - mes.plant.example
    secretName: t
  rules:
  - host: mes.plant.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: api
            port:
              number: 80
  defaultBackend:
    service:
      name: api
      port:
        number: 80
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: mes
spec:
  mtls:
    mode: STRICT
  portLevelMtls:
    '8080':
      mode: PERMISSIVE
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: w
  namespace: mes
spec:
  selector:
    matchLabels:
      app: api
  mtls:
    mode: DISABLE
---
apiVersion: aquasecurity.github.io/v1alpha1
kind: VulnerabilityReport
metadata:
  name: replicaset-api-api
  namespace: mes
  labels:
    trivy-operator.container.name: api
    trivy-operator.resource.kind: ReplicaSet
    trivy-operator.resource.name: api-6d4cf56db6
    trivy-operator.resource.namespace: mes
report:
  artifact:
    repository: mes/api
    tag: 7.3.2
    digest: sha256:abc
  registry:
    server: registry.plant.example
  updateTimestamp: '2026-11-20T00:00:00Z'
  vulnerabilities:
  - vulnerabilityID: CVE-1
    resource: openssl
    installedVersion: '1'
    fixedVersion: '2'
    severity: HIGH
---
apiVersion: aquasecurity.github.io/v1alpha1
kind: SbomReport
metadata:
  name: replicaset-api-api
  namespace: mes
  labels:
    trivy-operator.container.name: api
    trivy-operator.resource.kind: ReplicaSet
    trivy-operator.resource.name: api-6d4cf56db6
    trivy-operator.resource.namespace: mes
report:
  artifact:
    repository: mes/api
    tag: 7.3.2
  registry:
    server: registry.plant.example
  components:
    bomFormat: CycloneDX
    components:
    - name: openssl
      version: '1'
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: verify
spec:
  validationFailureAction: Enforce
  validationFailureActionOverrides:
  - action: Audit
    namespaces:
    - lab
  rules:
  - name: r
    match:
      any:
      - resources:
          kinds:
          - Pod
          namespaces:
          - mes
          namespaceSelector:
            matchLabels:
              a: b
    exclude:
      all:
      - resources:
          namespaces:
          - x
    verifyImages:
    - imageReferences:
      - registry.plant.example/*
      skipImageReferences:
      - x
      failureAction: Enforce
      image: y
---
apiVersion: policies.kyverno.io/v1alpha1
kind: ImageValidatingPolicy
metadata:
  name: ivp
spec:
  matchImageReferences:
  - glob: registry.plant.example/*
  validationActions:
  - Deny
---
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: cip
spec:
  mode: enforce
  images:
  - glob: registry.plant.example/**
---
apiVersion: velero.io/v1
kind: Schedule
metadata:
  name: daily
  namespace: velero
spec:
  schedule: 0 2 * * *
  paused: false
  template:
    includedNamespaces:
    - '*'
    excludedNamespaces:
    - lab
    ttl: 720h0m0s
---
apiVersion: velero.io/v1
kind: Restore
metadata:
  name: drill
  namespace: velero
status:
  phase: Completed
  completionTimestamp: '2026-10-02T03:04:05Z'
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: admins
  labels:
    team: platform
subjects:
- kind: User
  name: alice
  apiGroup: rbac.authorization.k8s.io
- kind: Group
  name: system:masters
roleRef:
  kind: ClusterRole
  name: cluster-admin
  apiGroup: rbac.authorization.k8s.io
"""


def test_hostile_field_types_never_crash_part_b_checks():
    """Every field of realistic inputs, replaced one at a time by a value of the wrong type: a check may say
    less, but must never raise. Failures inside shared code (inventory, apiserver flag reader) are that
    code's business and are left out here."""
    import copy
    import traceback

    import yaml

    from nis2kube.checks.registry import all_checks
    from nis2kube.inventory import Inventory

    families = ("vulns", "supply", "resilience", "crypto", "identity", "backup", "evidence")
    ids = [c for c in all_checks() if c.split(".")[0] in families]
    skip = {("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("metadata", "namespace")}

    def paths(node, prefix=()):
        if prefix:
            yield prefix
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            yield from paths(child, (*prefix, key))

    docs = [d for d in yaml.safe_load_all(HOSTILE_BASE) if d]
    crashes, runs = [], 0
    for index, doc in enumerate(docs):
        for path in paths(doc):
            if path[:2] in skip or path[:1] in skip:
                continue
            for bad in ("x", 7):
                mutated = copy.deepcopy(docs)
                node = mutated[index]
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = bad
                inv = Inventory()
                for obj in mutated:
                    inv.add(obj)
                for check_id in ids:
                    runs += 1
                    try:
                        run_check(check_id, inv, inputs={"as_of": AS_OF})
                    except InputError:
                        pass
                    except Exception as exc:
                        frame = traceback.extract_tb(exc.__traceback__)[-1]
                        if "/inventory/" not in frame.filename and not frame.filename.endswith("apiserver.py"):
                            crashes.append((check_id, path, bad, f"{type(exc).__name__}: {exc}"))
    assert runs > 5000
    assert crashes == []
