"""backup.*: Velero Schedule coverage and TTL, attested etcd backups, restore tests."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import inventory_from_yaml, run_check, statuses
from nis2kube.checks.backup import go_duration
from nis2kube.checks.registry import InputError
from nis2kube.findings import Status

AS_OF = dt.date(2026, 11, 22)
EVIDENCE = """apiVersion: nis2kube.io/v1alpha1
kind: Evidence
etcd_backup: {schedule: "0 */6 * * *", retention_days: %d, offsite: %s, last_restore_test: %s}
"""


def namespaces(*names: str) -> str:
    return "".join(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}\n---\n" for n in names)


def schedule(name: str, template: str, paused: bool = False) -> str:
    return f"""
apiVersion: velero.io/v1
kind: Schedule
metadata: {{name: {name}, namespace: velero}}
spec:
  schedule: "0 2 * * *"
  paused: {str(paused).lower()}
  template: {template}
---
"""


def evidence_file(tmp_path, retention: int = 35, offsite: str = "true", restore: str = "2026-08-01") -> str:
    path = tmp_path / "evidence.yaml"
    path.write_text(EVIDENCE % (retention, offsite, restore))
    return str(path)


APISERVER = """
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver-cp1, namespace: kube-system, labels: {component: kube-apiserver}}
spec: {containers: [{name: kube-apiserver, image: "registry.k8s.io/kube-apiserver:v1.35.0", command: [kube-apiserver]}]}
---
"""


@pytest.mark.parametrize("text, days", [("720h0m0s", 30), ("168h", 7), ("1h30m", 0), ("2160h", 90), ("0", 0)])
def test_go_durations(text, days):
    assert go_duration(text).days == days


@pytest.mark.parametrize("text", ["30d", "h", "10", "1h x", ""])
def test_invalid_go_durations(text):
    assert go_duration(text) is None


def test_schedule_coverage_wildcards_exclusions_ttl_and_pause():
    docs = (namespaces("mes", "scada", "historian", "lab", "velero", "kube-system")
            + schedule("all", "{includedNamespaces: ['*'], excludedNamespaces: [lab, 'hist*'], ttl: 720h0m0s}")
            + schedule("short", "{includedNamespaces: [historian], ttl: 168h}")
            + schedule("paused", "{includedNamespaces: [lab]}", paused=True))
    got = statuses(run_check("backup.namespaces", inventory_from_yaml(docs)))
    assert got == {"Namespace/mes": Status.PASS, "Namespace/scada": Status.PASS, "Namespace/velero": Status.PASS,
                   "Namespace/historian": Status.FAIL, "Namespace/lab": Status.FAIL}


def test_velero_glob_patterns_and_patterns_velero_refuses():
    docs = (namespaces("mes", "scada", "historian", "lab")
            + schedule("globs", "{includedNamespaces: [mes, 'sca*', 'l?b', 'h[aeiou]st*'], "
                                "excludedNamespaces: ['hist[a-z]rian']}"))
    assert statuses(run_check("backup.namespaces", inventory_from_yaml(docs))) == {
        "Namespace/mes": Status.PASS, "Namespace/scada": Status.PASS, "Namespace/lab": Status.PASS,
        "Namespace/historian": Status.FAIL, "Namespace/velero": Status.FAIL}
    for bad in ("'hist**'", "'(mes|lab)'", "'{mes,lab}'", "'ns[a'", "'[!m]es'"):
        refused = namespaces("mes") + schedule("bad", f"{{includedNamespaces: [mes, {bad}]}}")
        f = {f.resource.name: f for f in run_check("backup.namespaces", inventory_from_yaml(refused))}["mes"]
        assert f.status is Status.FAIL and "is not a Velero glob" in f.message, bad


def test_default_velero_ttl_is_30_days_and_retention_is_configurable():
    docs = namespaces("mes") + schedule("daily", "{includedNamespaces: [mes, velero]}")
    inv = inventory_from_yaml(docs)
    assert {f.status for f in run_check("backup.namespaces", inv)} == {Status.PASS}
    short = run_check("backup.namespaces", inv, {"backup": {"retention_days": 90}})
    assert {f.status for f in short} == {Status.FAIL} and "only 30 days" in short[0].message
    with pytest.raises(InputError, match="retention_days"):
        run_check("backup.namespaces", inv, {"backup": {"retention_days": "90d"}})


def test_without_velero_an_etcd_backup_covers_objects_but_not_volumes(tmp_path):
    pvc = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: historian}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Gi}}}
---
"""
    inv = inventory_from_yaml(namespaces("mes", "historian") + pvc)
    bare = statuses(run_check("backup.namespaces", inv))
    assert bare == {"Namespace/mes": Status.FAIL, "Namespace/historian": Status.FAIL}
    findings = run_check("backup.namespaces", inv, inputs={"evidence": evidence_file(tmp_path)})
    got = {f.resource.name: f for f in findings}
    assert got["mes"].status is Status.PASS and "not persistent volume data" in got["mes"].message
    assert got["historian"].status is Status.FAIL and "1 persistent volume claim" in got["historian"].message
    too_short = run_check("backup.namespaces", inv, inputs={"evidence": evidence_file(tmp_path, retention=7)})
    assert {f.status for f in too_short} == {Status.FAIL}


def test_unreadable_schedules_in_live_mode_are_not_assessed():
    inv = inventory_from_yaml(namespaces("mes"))
    inv.unlisted[("velero.io", "Schedule")] = "forbidden: cannot list schedules.velero.io"
    [finding] = run_check("backup.namespaces", inv)
    assert finding.status is Status.NOT_ASSESSED and "forbidden" in finding.message


def test_etcd_backup_attestation(tmp_path):
    self_managed = inventory_from_yaml(APISERVER)
    managed = inventory_from_yaml(namespaces("mes"))
    assert [f.status for f in run_check("backup.etcd", self_managed)] == [Status.NOT_ASSESSED]
    [ok] = run_check("backup.etcd", self_managed, inputs={"evidence": evidence_file(tmp_path)})
    assert ok.status is Status.PASS
    [bad] = run_check("backup.etcd", self_managed, inputs={"evidence": evidence_file(tmp_path, 7, "false")})
    assert bad.status is Status.FAIL and "retention 7 days" in bad.message and "off-site" in bad.message
    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: nis2kube.io/v1alpha1\nkind: Evidence\n")
    assert [f.status for f in run_check("backup.etcd", self_managed, inputs={"evidence": str(empty)})] == [
        Status.FAIL]
    assert [f.status for f in run_check("backup.etcd", managed, inputs={"evidence": str(empty)})] == [
        Status.NOT_ASSESSED]


def test_restore_tests_from_velero_restores_or_attestation(tmp_path):
    restore = """
apiVersion: velero.io/v1
kind: Restore
metadata: {name: drill-2026-10, namespace: velero}
spec: {backupName: daily-20261001}
status: {phase: Completed, completionTimestamp: "2026-10-02T03:04:05Z"}
---
"""
    inv = inventory_from_yaml(namespaces("mes") + restore)
    [finding] = run_check("backup.restore-tested", inv, inputs={"as_of": AS_OF})
    assert finding.status is Status.PASS and "drill-2026-10" in finding.message
    stale = {"evidence": evidence_file(tmp_path, restore="2024-01-10"), "as_of": AS_OF}
    [old] = run_check("backup.restore-tested", inventory_from_yaml(namespaces("mes")), inputs=stale)
    assert old.status is Status.FAIL and "2024-01-10" in old.message
    [na] = run_check("backup.restore-tested", inventory_from_yaml(namespaces("mes")))
    assert na.status is Status.NOT_ASSESSED
    [custom] = run_check("backup.restore-tested", inventory_from_yaml(namespaces("mes")),
                         {"backup": {"restore_test_max_age_days": 1200}}, stale)
    assert custom.status is Status.PASS


def test_factory_hall_example_tells_the_platform_story():
    """The bundled example: Trivy Operator reports, no Velero, an Ingress host without TLS."""
    from conftest import EXAMPLE
    from nis2kube.inventory import from_paths

    if not EXAMPLE.is_dir():
        pytest.skip("examples/factory-hall not present")
    inv = from_paths([str(EXAMPLE)])
    backups = run_check("backup.namespaces", inv)
    assert backups and {f.status for f in backups} == {Status.FAIL}
    assert Status.FAIL in {f.status for f in run_check("crypto.ingress-tls", inv)}
    vulns = run_check("vulns.fixable", inv, inputs={"as_of": AS_OF})
    assert Status.FAIL in {f.status for f in vulns} and Status.NOT_ASSESSED in {f.status for f in vulns}


@pytest.mark.parametrize("text, seconds", [("1.5h", 5400), (".5h", 1800), ("-1h", -3600), ("+90m", 5400),
                                           ("1μs", 1e-6), ("-0", 0)])
def test_go_duration_grammar(text, seconds):
    assert go_duration(text).total_seconds() == pytest.approx(seconds)


def test_zero_ttl_means_the_velero_default_and_idle_schedules_do_not_count():
    """Velero's backup controller replaces TTL 0 with --default-backup-ttl (720h); a Schedule in phase
    FailedValidation, without a cron expression or with namespace lists Velero rejects makes no backups."""
    docs = (namespaces("mes", "scada", "lab", "historian")
            + schedule("zero", "{includedNamespaces: [mes], ttl: 0s}")
            + schedule("broken", "{includedNamespaces: [scada]}").replace("---",
                                                                          "status: {phase: FailedValidation}\n---")
            + schedule("nocron", "{includedNamespaces: [lab]}").replace('schedule: "0 2 * * *"', 'schedule: ""')
            + schedule("clash", "{includedNamespaces: ['*', historian]}"))
    got = {f.resource.name: f for f in run_check("backup.namespaces", inventory_from_yaml(docs))}
    assert got["mes"].status is Status.PASS and "30 days" in got["mes"].message
    assert got["scada"].status is Status.FAIL and "failed validation" in got["scada"].message
    assert got["lab"].status is Status.FAIL and "failed validation" in got["lab"].message
    assert got["historian"].status is Status.FAIL and "invalid namespace lists" in got["historian"].message


def test_paused_must_be_a_real_boolean():
    docs = namespaces("mes") + schedule("daily", "{includedNamespaces: [mes]}").replace("paused: false",
                                                                                       'paused: "false"')
    got = statuses(run_check("backup.namespaces", inventory_from_yaml(docs)))
    assert got["Namespace/mes"] is Status.PASS
