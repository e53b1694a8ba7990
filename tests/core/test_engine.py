"""Engine behaviour: waivers, system namespaces, scores, exit codes, broken checks, the catalog contract."""

import datetime as dt

import pytest

from conftest import inventory_from_yaml
from nis2kube.catalog import measures
from nis2kube.checks.registry import ScanContext, all_checks
from nis2kube.config import ConfigError, config_from_dict
from nis2kube.engine import run_checks
from nis2kube.findings import Severity, Status
from nis2kube.waivers import WaiverError

WORKLOADS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: mes-frontend, namespace: mes}
spec:
  template:
    spec: {containers: [{name: web, image: nginx:latest}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system}
spec:
  template:
    spec: {containers: [{name: coredns, image: "registry.k8s.io/coredns/coredns:v1.11.3"}]}
"""


def _scan(config: dict, today=dt.date(2026, 11, 22)):
    return run_checks(ScanContext(inventory_from_yaml(WORKLOADS), config_from_dict(config)),
                      include=["images.*"], today=today)  # fmt: skip


def _status(result, check, name):
    return next(f.status for f in result.findings if f.check == check and f.resource and f.resource.name == name)


def test_waiver_applies_until_its_expiry_day_and_is_audited():
    waiver = {"check": "images.mutable-tag", "resource": {"kind": "Deployment", "name": "mes-*"},
              "justification": "vendor ships only :latest", "owner": "mes-team", "expires": "2026-11-22"}  # fmt: skip
    result = _scan({"waivers": [waiver]})
    assert _status(result, "images.mutable-tag", "mes-frontend") is Status.WAIVED
    assert result.waiver_audit[0]["state"] == "used"
    expired = _scan({"waivers": [waiver]}, today=dt.date(2026, 11, 23))
    assert _status(expired, "images.mutable-tag", "mes-frontend") is Status.FAIL
    assert expired.waiver_audit[0]["state"] == "expired"


def test_incomplete_waiver_is_an_error():
    with pytest.raises(WaiverError, match="owner"):
        _scan({"waivers": [{"check": "x", "justification": "j", "expires": "2027-01-01"}]})


def test_system_namespace_findings_are_apart_from_score_and_exit_code():
    result = _scan({"approved_registries": ["docker.io/library"], "fail_on": "medium"})
    system = [f for f in result.findings if f.system]
    assert system and all(f.resource.namespace == "kube-system" for f in system)
    assert result.counts(system=True)["fail"] >= 1
    at_or_above = [f for f in result.findings if f.status is Status.FAIL and f.severity.rank >= Severity.MEDIUM.rank]
    assert any(f.system for f in at_or_above)
    assert result.blocking_count() == len([f for f in at_or_above if not f.system]) >= 1
    assert result.exit_code == 1  # mes-frontend :latest is medium
    assert _scan({"fail_on": "critical"}).exit_code == 0


def test_not_configured_allow_list_is_not_assessed_never_pass():
    result = _scan({})
    (f,) = [f for f in result.findings if f.check == "images.approved-registry"]
    assert f.status is Status.NOT_ASSESSED


def test_score_is_severity_weighted():
    result = _scan({"approved_registries": ["registry.k8s.io"]})
    assert 0.0 <= result.score < 100.0


def test_bad_config_values_are_reported():
    with pytest.raises(ConfigError, match="fail_on"):
        config_from_dict({"fail_on": "urgent"})
    with pytest.raises(ConfigError, match="approved_registries"):
        config_from_dict({"approved_registries": "docker.io"})


def test_every_check_names_existing_measures_and_every_technical_measure_has_a_check():
    checks = all_checks()
    catalog = measures()
    covered = {m for spec in checks.values() for m in spec.measures}
    for spec in checks.values():
        assert set(spec.measures) <= set(catalog), spec.id
        assert spec.remediation and spec.title
    art21 = [m for m in catalog.values() if m.id.startswith("art21.2.") and m.kind == "technical"]
    assert {m.id for m in art21} - covered == set()
