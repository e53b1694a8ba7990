"""Pod Security Standards (v1.37) and pod hardening checks: upstream semantics, reporting, conformance."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from conftest import inventory_from_yaml, run_check, statuses
from nis2kube.catalog import measures
from nis2kube.checks.registry import ScanContext, all_checks
from nis2kube.engine import run_checks
from nis2kube.findings import Severity, Status

HERE = pathlib.Path(__file__).resolve().parent
SHARED = pathlib.Path(__file__).resolve().parents[2].parent / "shared"
CONFORMANCE = SHARED / "conformance" / "pss"

PSS_IDS = {
    "pss.baseline.host-namespaces", "pss.baseline.privileged", "pss.baseline.capabilities",
    "pss.baseline.host-path-volumes", "pss.baseline.host-ports", "pss.baseline.apparmor", "pss.baseline.selinux",
    "pss.baseline.proc-mount", "pss.baseline.seccomp", "pss.baseline.sysctls", "pss.baseline.host-process",
    "pss.baseline.host-probes", "pss.restricted.volume-types", "pss.restricted.privilege-escalation",
    "pss.restricted.run-as-non-root", "pss.restricted.run-as-user", "pss.restricted.seccomp",
    "pss.restricted.capabilities", "pss.restricted.proc-mount",
}


def pod(spec: str, *, annotations: str = "{}", name: str = "p") -> str:
    """A bare Pod manifest around a YAML flow-style spec."""
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: line-1, annotations: {annotations}}}\n" \
           f"spec: {spec}\n"


def deployment(pod_spec: str, *, annotations: str = "{}", name: str = "app") -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: line-1}}\n"
            f"spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n"
            f"  template:\n    metadata: {{labels: {{app: {name}}}, annotations: {annotations}}}\n"
            f"    spec: {pod_spec}\n")


def check(check_id: str, manifest: str) -> list:
    return run_check(check_id, inventory_from_yaml(manifest))


def fails(check_id: str, manifest: str) -> list[str]:
    """Messages of the failing findings (asserting there is no pass for the same workload)."""
    found = check(check_id, manifest)
    failed = [f.message for f in found if f.status is Status.FAIL]
    if failed:
        assert all(f.status is Status.FAIL for f in found)
    return failed


def passes(check_id: str, manifest: str) -> bool:
    found = check(check_id, manifest)
    return len(found) == 1 and found[0].status is Status.PASS


RESTRICTED_SC = "{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}"
RESTRICTED_POD = ("{securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}, "
                  f"containers: [{{name: app, image: r/app:1, securityContext: {RESTRICTED_SC}}}]}}")


# ---- registry -----------------------------------------------------------------------------------------
def test_every_control_is_registered_with_known_measures_and_severity():
    checks = all_checks()
    assert PSS_IDS | {"pods.resource-limits", "pods.read-only-root-fs"} <= set(checks)
    known = measures()
    for check_id in [*PSS_IDS, "pods.resource-limits", "pods.read-only-root-fs"]:
        spec = checks[check_id]
        assert set(spec.measures) <= set(known), check_id
        assert spec.description, check_id
    assert checks["pss.baseline.privileged"].severity is Severity.CRITICAL
    assert checks["pss.baseline.host-namespaces"].severity is Severity.CRITICAL
    assert checks["pss.baseline.selinux"].severity is Severity.HIGH
    assert all(checks[i].severity is Severity.MEDIUM for i in PSS_IDS if i.startswith("pss.restricted."))
    assert {"art21.2.c", "art21.2.g"} <= set(checks["pods.resource-limits"].measures)


# ---- baseline -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["hostNetwork", "hostPID", "hostIPC"])
def test_host_namespaces(field):
    spec = f"{{{field}: true, containers: [{{name: app, image: r/app:1}}]}}"
    (finding,) = check("pss.baseline.host-namespaces", deployment(spec))
    assert finding.status is Status.FAIL and finding.severity is Severity.CRITICAL
    assert finding.message == f"spec.{field} is true" and finding.container is None
    assert finding.resource.kind == "Deployment"
    assert passes("pss.baseline.host-namespaces", deployment(f"{{{field}: false, containers: [{{name: a}}]}}"))


def test_privileged_names_the_init_container_and_its_field():
    (finding,) = check("pss.baseline.privileged", deployment(
        "{initContainers: [{name: opc, securityContext: {privileged: true}}], containers: [{name: app}]}"))
    assert finding.status is Status.FAIL
    assert finding.message == "container opc (initContainers) securityContext.privileged is true"
    assert finding.container == "opc"
    assert finding.evidence == {"field": "spec.initContainers[0].securityContext.privileged", "value": True}
    assert passes("pss.baseline.privileged", deployment(
        "{containers: [{name: app, securityContext: {privileged: false}}]}"))


def test_privileged_ephemeral_container_counts():
    (message,) = fails("pss.baseline.privileged", pod(
        "{containers: [{name: app}], ephemeralContainers: [{name: debug, securityContext: {privileged: true}}]}"))
    assert message == "container debug (ephemeralContainers) securityContext.privileged is true"


def test_baseline_capabilities_exact_names():
    assert passes("pss.baseline.capabilities", deployment(
        "{containers: [{name: app, securityContext: {capabilities: {add: [CHOWN, NET_BIND_SERVICE, KILL]}}}]}"))
    for bad in ("NET_RAW", "chown", "CAP_CHOWN", "SYS_ADMIN"):
        (message,) = fails("pss.baseline.capabilities", deployment(
            f"{{containers: [{{name: app, securityContext: {{capabilities: {{add: [CHOWN, {bad}]}}}}}}]}}"))
        assert f'["{bad}"]' in message and "container app (containers)" in message


def test_host_path_volume():
    (message,) = fails("pss.baseline.host-path-volumes", deployment(
        "{volumes: [{name: cache, emptyDir: {}}, {name: dev, hostPath: {path: /dev/ttyUSB0}}], "
        "containers: [{name: app}]}"))
    assert message == 'volume dev is a hostPath volume (path "/dev/ttyUSB0")'
    assert passes("pss.baseline.host-path-volumes", deployment(
        "{volumes: [{name: cache, emptyDir: {}}], containers: [{name: app}]}"))


def test_host_ports_zero_is_allowed_any_other_value_is_not():
    (message,) = fails("pss.baseline.host-ports", deployment(
        "{containers: [{name: modbus, ports: [{containerPort: 502, hostPort: 502}, {containerPort: 8080}]}]}"))
    assert message == "container modbus (containers) ports[0].hostPort is 502"
    assert passes("pss.baseline.host-ports", deployment(
        "{containers: [{name: a, ports: [{containerPort: 502, hostPort: 0}, {containerPort: 80}]}]}"))


def test_apparmor_annotations_on_the_pod_template():
    (finding,) = check("pss.baseline.apparmor", deployment(
        "{containers: [{name: gateway}]}",
        annotations="{container.apparmor.security.beta.kubernetes.io/gateway: unconfined}"))
    assert finding.status is Status.FAIL and finding.container == "gateway"
    assert finding.message == 'annotation container.apparmor.security.beta.kubernetes.io/gateway is "unconfined"'
    for ok in ("runtime/default", "localhost/opcua", "''"):
        assert passes("pss.baseline.apparmor", deployment(
            "{containers: [{name: gateway}]}",
            annotations=f"{{container.apparmor.security.beta.kubernetes.io/gateway: {ok}}}"))


def test_apparmor_fields_pod_and_container():
    assert fails("pss.baseline.apparmor", deployment(
        "{securityContext: {appArmorProfile: {type: Unconfined}}, containers: [{name: app}]}")) == [
        'pod securityContext.appArmorProfile.type is "Unconfined"']
    assert fails("pss.baseline.apparmor", deployment(
        "{securityContext: {appArmorProfile: {type: RuntimeDefault}}, "
        "containers: [{name: app, securityContext: {appArmorProfile: {type: Bogus}}}]}")) == [
        'container app (containers) securityContext.appArmorProfile.type is "Bogus"']
    assert passes("pss.baseline.apparmor", deployment(
        "{containers: [{name: app, securityContext: {appArmorProfile: {type: Localhost, localhostProfile: p}}}]}"))


def test_selinux_types_user_and_role():
    assert passes("pss.baseline.selinux", deployment(
        "{securityContext: {seLinuxOptions: {type: container_engine_t}}, "
        "containers: [{name: app, securityContext: {seLinuxOptions: {level: 's0:c1,c2'}}}]}"))
    messages = fails("pss.baseline.selinux", deployment(
        "{securityContext: {seLinuxOptions: {user: system_u}}, "
        "containers: [{name: app, securityContext: {seLinuxOptions: {type: spc_t, role: system_r}}}]}"))
    assert messages == ['pod securityContext.seLinuxOptions.user is "system_u"',
                        'container app (containers) securityContext.seLinuxOptions.type is "spc_t"',
                        'container app (containers) securityContext.seLinuxOptions.role is "system_r"']


def test_proc_mount_user_namespace_relaxes_baseline_but_not_restricted():
    unmasked = "containers: [{name: app, securityContext: {procMount: Unmasked}}]"
    host = deployment(f"{{hostUsers: true, {unmasked}}}")
    userns = deployment(f"{{hostUsers: false, {unmasked}}}")
    expected = ['container app (containers) securityContext.procMount is "Unmasked"']
    assert fails("pss.baseline.proc-mount", host) == expected
    assert fails("pss.restricted.proc-mount", host) == expected
    (exempt,) = check("pss.baseline.proc-mount", userns)
    assert exempt.status is Status.PASS and "hostUsers is false" in exempt.message
    assert fails("pss.restricted.proc-mount", userns) == expected
    assert passes("pss.restricted.proc-mount", deployment(
        "{containers: [{name: app, securityContext: {procMount: Default}}]}"))


def test_seccomp_baseline_container_override_is_checked():
    assert fails("pss.baseline.seccomp", deployment(
        "{securityContext: {seccompProfile: {type: RuntimeDefault}}, "
        "initContainers: [{name: init, securityContext: {seccompProfile: {type: Unconfined}}}], "
        "containers: [{name: app}]}")) == [
        'container init (initContainers) securityContext.seccompProfile.type is "Unconfined"']
    assert fails("pss.baseline.seccomp", deployment(
        "{securityContext: {seccompProfile: {type: Unconfined}}, containers: [{name: app}]}")) == [
        'pod securityContext.seccompProfile.type is "Unconfined"']
    assert passes("pss.baseline.seccomp", deployment("{containers: [{name: app}]}"))


def test_sysctls_newest_safe_list():
    assert passes("pss.baseline.sysctls", deployment(
        "{securityContext: {sysctls: [{name: net.ipv4.tcp_notsent_lowat, value: '16384'}, "
        "{name: net.ipv4.tcp_rmem, value: '4096 87380 6291456'}, {name: net.ipv4.ip_local_reserved_ports, "
        "value: '502'}]}, containers: [{name: app}]}"))
    assert fails("pss.baseline.sysctls", deployment(
        "{securityContext: {sysctls: [{name: net.ipv4.tcp_syncookies, value: '1'}, "
        "{name: kernel.msgmax, value: '65536'}]}, containers: [{name: app}]}")) == [
        'pod securityContext.sysctls[1] sets "kernel.msgmax", not a safe sysctl']


def test_host_process_pod_and_container():
    messages = fails("pss.baseline.host-process", pod(
        "{os: {name: windows}, hostNetwork: true, securityContext: {windowsOptions: {hostProcess: true}}, "
        "containers: [{name: agent, securityContext: {windowsOptions: {hostProcess: true}}}]}"))
    assert messages == ["pod securityContext.windowsOptions.hostProcess is true",
                        "container agent (containers) securityContext.windowsOptions.hostProcess is true"]


def test_host_probes_and_lifecycle_hosts():
    messages = fails("pss.baseline.host-probes", deployment(
        "{containers: [{name: app, startupProbe: {httpGet: {host: 169.254.169.254, port: 80}}, "
        "lifecycle: {preStop: {tcpSocket: {host: 10.0.0.1, port: 22}}}}], "
        "initContainers: [{name: side, restartPolicy: Always, readinessProbe: {tcpSocket: {host: '::1', port: 1}}}]}"))
    assert messages == ['container side (initContainers) readinessProbe.tcpSocket.host is "::1"',
                        'container app (containers) startupProbe.httpGet.host is "169.254.169.254"',
                        'container app (containers) lifecycle.preStop.tcpSocket.host is "10.0.0.1"']
    assert passes("pss.baseline.host-probes", deployment(
        "{containers: [{name: app, livenessProbe: {httpGet: {port: 8080, host: ''}}, "
        "readinessProbe: {grpc: {port: 9000}}}]}"))


# ---- restricted ---------------------------------------------------------------------------------------
def test_volume_types():
    assert passes("pss.restricted.volume-types", deployment(
        "{volumes: [{name: defaulted}, {name: a, emptyDir: {}}, {name: b, csi: {driver: d}}, "
        "{name: c, image: {reference: r/models:1}}, {name: d, projected: {sources: []}}, "
        "{name: e, ephemeral: {volumeClaimTemplate: {spec: {}}}}], containers: [{name: app}]}"))
    assert fails("pss.restricted.volume-types", deployment(
        "{volumes: [{name: share, nfs: {server: s, path: /}}, {name: cfg, configMap: {name: c}}], "
        "containers: [{name: app}]}")) == ["volume share has the restricted type nfs"]


def test_privilege_escalation_must_be_explicitly_false():
    assert fails("pss.restricted.privilege-escalation", deployment(
        "{containers: [{name: a}, {name: b, securityContext: {allowPrivilegeEscalation: true}}, "
        "{name: c, securityContext: {allowPrivilegeEscalation: false}}]}")) == [
        "container a (containers) securityContext.allowPrivilegeEscalation is unset (must be false)",
        "container b (containers) securityContext.allowPrivilegeEscalation is true"]


def test_windows_pods_are_exempt_from_linux_only_restricted_controls():
    windows = pod("{os: {name: windows}, securityContext: {runAsNonRoot: true}, containers: [{name: iis}]}")
    for check_id in ("pss.restricted.privilege-escalation", "pss.restricted.seccomp",
                     "pss.restricted.capabilities"):
        (finding,) = check(check_id, windows)
        assert finding.status is Status.PASS and "windows" in finding.message
    assert passes("pss.restricted.run-as-non-root", windows)
    (na,) = check("pods.read-only-root-fs", windows)
    assert na.status is Status.NOT_ASSESSED


def test_run_as_non_root_precedence():
    def verdict(pod_value: str, *containers: str) -> list[str]:
        items = ", ".join(f"{{name: c{i}, securityContext: {{runAsNonRoot: {v}}}}}" if v else f"{{name: c{i}}}"
                          for i, v in enumerate(containers))
        return fails("pss.restricted.run-as-non-root",
                     deployment(f"{{securityContext: {{runAsNonRoot: {pod_value}}}, containers: [{items}]}}"))

    assert verdict("true", "", "") == []
    assert verdict("null", "true", "true") == []
    assert verdict("true", "", "false") == ["container c1 (containers) securityContext.runAsNonRoot is false"]
    assert verdict("false", "true") == ["pod securityContext.runAsNonRoot is false"]
    assert verdict("null", "true", "") == [
        "container c1 (containers) securityContext.runAsNonRoot is unset and the pod-level "
        "securityContext.runAsNonRoot is not true"]
    (exempt,) = check("pss.restricted.run-as-non-root", deployment("{hostUsers: false, containers: [{name: a}]}"))
    assert exempt.status is Status.PASS and "hostUsers is false" in exempt.message


def test_run_as_user_zero():
    assert fails("pss.restricted.run-as-user", deployment(
        "{securityContext: {runAsUser: 1000}, containers: [{name: app, securityContext: {runAsUser: 0}}]}")) == [
        "container app (containers) securityContext.runAsUser is 0"]
    assert fails("pss.restricted.run-as-user", deployment(
        "{securityContext: {runAsUser: 0}, containers: [{name: app}]}")) == ["pod securityContext.runAsUser is 0"]
    assert passes("pss.restricted.run-as-user", deployment(
        "{securityContext: {runAsUser: 1000}, containers: [{name: app}]}"))
    assert passes("pss.restricted.run-as-user", deployment(
        "{hostUsers: false, containers: [{name: app, securityContext: {runAsUser: 0}}]}"))


def test_seccomp_restricted_pod_level_inherited_or_every_container():
    assert passes("pss.restricted.seccomp", deployment(RESTRICTED_POD))
    assert passes("pss.restricted.seccomp", deployment(
        "{initContainers: [{name: i, securityContext: {seccompProfile: {type: RuntimeDefault}}}], "
        "containers: [{name: a, securityContext: {seccompProfile: {type: Localhost, localhostProfile: p.json}}}]}"))
    assert fails("pss.restricted.seccomp", deployment(
        "{initContainers: [{name: i, securityContext: {seccompProfile: {type: RuntimeDefault}}}], "
        "containers: [{name: a}]}")) == [
        "container a (containers) securityContext.seccompProfile is unset and the pod sets no RuntimeDefault "
        "or Localhost profile"]


def test_restricted_capabilities():
    assert passes("pss.restricted.capabilities", deployment(
        "{containers: [{name: a, securityContext: {capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}}]}"))
    assert fails("pss.restricted.capabilities", deployment(
        "{containers: [{name: a, securityContext: {capabilities: {drop: [all], add: [CHOWN]}}}]}")) == [
        'container a (containers) securityContext.capabilities.drop is ["all"] (must include "ALL")',
        'container a (containers) securityContext.capabilities.add adds ["CHOWN"] '
        '(only "NET_BIND_SERVICE" is allowed)']


# ---- hardening beyond PSS -----------------------------------------------------------------------------
def test_resource_limits_init_containers_count_ephemeral_do_not():
    limited = "resources: {limits: {cpu: 250m, memory: 64Mi}}"
    (finding,) = check("pods.resource-limits", pod(
        f"{{initContainers: [{{name: migrate, resources: {{limits: {{cpu: 100m}}}}}}], "
        f"containers: [{{name: app, {limited}}}], ephemeralContainers: [{{name: debug}}]}}"))
    assert finding.status is Status.FAIL and finding.container == "migrate"
    assert finding.message == "container migrate (initContainers) sets no resources.limits.memory"
    assert passes("pods.resource-limits", pod(
        f"{{containers: [{{name: app, {limited}}}], ephemeralContainers: [{{name: debug}}]}}"))


def test_resource_limits_defaulted_by_the_namespace_limitrange():
    """LimitRanger sets a Container item's default (or, defaulted from it, its max) on every init and regular
    container of a pod created in the namespace: such a template will run with limits."""
    spec = "{initContainers: [{name: migrate}], containers: [{name: app, resources: {limits: {cpu: 500m}}}]}"
    limit_range = ("apiVersion: v1\nkind: LimitRange\nmetadata: {{name: limits, namespace: {ns}}}\n"
                   "spec: {{limits: [{items}]}}\n---\n")
    both = limit_range.format(ns="line-1", items="{type: Container, default: {cpu: 250m}, max: {memory: 256Mi}}")
    assert passes("pods.resource-limits", both + deployment(spec))
    memory_only = limit_range.format(ns="line-1", items="{type: Container, default: {memory: 128Mi}}")
    assert fails("pods.resource-limits", memory_only + deployment(spec)) == [
        "container migrate (initContainers) sets no resources.limits.cpu"]
    pod_type = limit_range.format(ns="line-1", items="{type: Pod, max: {cpu: '2', memory: 1Gi}}")
    other_ns = limit_range.format(ns="line-2", items="{type: Container, default: {cpu: 250m, memory: 128Mi}}")
    assert len(fails("pods.resource-limits", pod_type + other_ns + deployment(spec))) == 2


def test_read_only_root_fs():
    assert fails("pods.read-only-root-fs", deployment(
        "{initContainers: [{name: i, securityContext: {readOnlyRootFilesystem: true}}], "
        "containers: [{name: a}, {name: b, securityContext: {readOnlyRootFilesystem: false}}]}")) == [
        "container a (containers) securityContext.readOnlyRootFilesystem is unset (must be true)",
        "container b (containers) securityContext.readOnlyRootFilesystem is false"]


# ---- reporting on workloads ---------------------------------------------------------------------------
def test_ot_line_fixture_reports_each_workload_once_on_its_owner():
    inv = inventory_from_yaml((HERE / "fixtures" / "pss" / "ot-line.yaml").read_text(), "ot-line.yaml")
    privileged = run_check("pss.baseline.privileged", inv)
    assert statuses(privileged) == {
        "Deployment/line-3/opcua-gateway[opc]": Status.FAIL,
        "StatefulSet/line-3/plc-poller": Status.PASS,
        "CronJob/line-3/historian-export": Status.PASS,
    }
    assert privileged[0].resource.location.file == "ot-line.yaml"
    verdicts = {check_id: statuses(run_check(check_id, inv)) for check_id in (
        "pss.baseline.host-ports", "pss.baseline.proc-mount", "pss.restricted.proc-mount",
        "pss.restricted.run-as-user", "pss.restricted.volume-types", "pss.baseline.seccomp",
        "pss.baseline.apparmor", "pss.restricted.privilege-escalation", "pods.resource-limits")}
    assert verdicts["pss.baseline.host-ports"]["Deployment/line-3/opcua-gateway[gateway]"] is Status.FAIL
    assert verdicts["pss.baseline.proc-mount"]["StatefulSet/line-3/plc-poller"] is Status.PASS  # hostUsers: false
    assert verdicts["pss.restricted.proc-mount"]["StatefulSet/line-3/plc-poller[poller]"] is Status.FAIL
    assert verdicts["pss.restricted.run-as-user"]["StatefulSet/line-3/plc-poller"] is Status.PASS
    assert verdicts["pss.restricted.volume-types"]["CronJob/line-3/historian-export"] is Status.FAIL
    assert verdicts["pss.baseline.seccomp"]["CronJob/line-3/historian-export[export]"] is Status.FAIL
    assert verdicts["pss.baseline.apparmor"]["Deployment/line-3/opcua-gateway"] is Status.PASS
    assert verdicts["pss.restricted.privilege-escalation"] == {
        "Deployment/line-3/opcua-gateway[opc]": Status.FAIL,
        "StatefulSet/line-3/plc-poller": Status.PASS,
        "CronJob/line-3/historian-export[export]": Status.FAIL,
    }
    assert verdicts["pods.resource-limits"]["Deployment/line-3/opcua-gateway[opc]"] is Status.FAIL


def test_template_without_containers_is_not_assessed():
    (finding,) = check("pss.baseline.privileged", deployment("{containers: []}"))
    assert finding.status is Status.NOT_ASSESSED


def test_hostile_shapes_do_not_crash_or_pass_silently():
    manifest = deployment(
        "{securityContext: 7, volumes: [3, {name: v, hostPath: 'x'}], "
        "containers: [{name: a, securityContext: 'root', ports: [1, {hostPort: 80}]}, 'junk']}")
    inv = inventory_from_yaml(manifest)
    by_check = {check_id: run_check(check_id, inv) for check_id in sorted(PSS_IDS)}
    assert {f.status for f in by_check["pss.restricted.privilege-escalation"]} == {Status.FAIL}
    assert {f.status for f in by_check["pss.baseline.host-ports"]} == {Status.FAIL}
    assert {f.status for f in by_check["pss.baseline.host-path-volumes"]} == {Status.FAIL}


# ---- conformance with the upstream PSA test data ------------------------------------------------------
def _fixtures() -> list[tuple[str, str, str, dict]]:
    if not CONFORMANCE.is_dir():
        pytest.skip("../shared/conformance/pss is not beside the project")
    out = []
    for path in sorted((CONFORMANCE / "testdata").glob("*/*/*.yaml")):
        out.append((path.parent.parent.name, path.parent.name, path.stem, yaml.safe_load(path.read_text())))
    return out


def test_upstream_test_data_verdicts_in_one_scan():
    """Every v1.37 fixture, annotations included, gets the verdict upstream expects, in one engine run."""
    fixtures = _fixtures()
    docs = []
    for level, verdict, stem, obj in fixtures:
        obj["metadata"] = {**obj.get("metadata", {}), "name": f"{level}-{verdict}-{stem}".replace("_", "-"),
                           "namespace": "pss-conformance"}
        docs.append(obj)
    result = run_checks(ScanContext(inventory_from_yaml(yaml.safe_dump_all(docs))), include=["pss.*"])
    failing: dict[str, set[str]] = {}
    for f in result.findings:
        if f.status is Status.FAIL:
            failing.setdefault(f.resource.name, set()).add(f.check)
    wrong = []
    for level, verdict, stem, _ in fixtures:
        name = f"{level}-{verdict}-{stem}".replace("_", "-")
        prefixes = ("pss.baseline.",) if level == "baseline" else ("pss.baseline.", "pss.restricted.")
        hit = any(c.startswith(prefixes) for c in failing.get(name, ()))
        if hit != (verdict == "fail"):
            wrong.append(name)
    assert len(fixtures) == 148
    assert wrong == []


def test_shared_conformance_runner():
    """The shared runner must pass everything except fixtures whose only difference it erases itself.

    The shipped runner replaces each fixture's metadata with {name, namespace}, which drops the AppArmor
    annotations; the four apparmorprofile fail fixtures then equal restricted/baseline `base`. Those four
    (and only those) may miss until the runner keeps metadata.annotations; everything else must pass."""
    runner = CONFORMANCE / "run"
    if not runner.is_file():
        pytest.skip("../shared/conformance/pss/run is not beside the project")
    command = pathlib.Path(sys.executable).with_name("nis2kube")
    if not command.is_file():
        pytest.skip("the nis2kube command is not installed beside this Python")
    proc = subprocess.run([sys.executable, str(runner), str(command)], capture_output=True, text=True,
                          timeout=120)
    lines = proc.stdout.strip().splitlines()
    passed, failed = map(int, re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1]).groups())
    assert passed + failed == 148
    misses = [line for line in lines if line.startswith("MISS")]
    assert len(misses) == failed
    runner_drops_annotations = '{"name": name, "namespace": NAMESPACE}' in runner.read_text()
    allowed = [m for m in misses if runner_drops_annotations and "/fail/apparmorprofile" in m]
    assert misses == allowed, proc.stdout
