"""`nis2kube scan`: audit manifests, dumps or a live cluster against the NIS2 measures."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from nis2kube import heap
from nis2kube.cli.common import check_writable, err_console, fail_usage, write_atomically, write_output, write_raw
from nis2kube.cli.snapshot import (
    AllNamespacesOpt,
    ConcurrencyOpt,
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    NoSecretsOpt,
    RequestTimeoutOpt,
    live_inventory,
)
from nis2kube.findings import Severity

EPILOG = """
**Examples**

* `nis2kube scan examples/factory-hall` - table grouped by NIS2 measure; exit 1 on high findings
* `nis2kube scan --context prod-plant-1 -o json --out plant-1.json` - the live cluster, read-only
* `kubectl get -A -o json ns,deploy,ds,sts,po,netpol,roles,rolebindings,clusterroles,clusterrolebindings > dump.json`
  then `nis2kube scan dump.json -o json`
* `helm template plant ./chart | nis2kube scan - -o sarif > nis2kube.sarif`
* `nis2kube scan ./manifests -o junit --fail-on critical --out report.xml`
* `nis2kube scan ./manifests --checks 'pss.*' --skip pss.restricted.seccomp`
* `nis2kube scan plant-1.json --as-of 2026-11-22` - a snapshot judged on the day it was taken
* `nis2kube scan --exit-zero -o json --out /reports/r.json --metrics /reports/nis2kube.prom` - as the CronJob runs

Exit codes: 0 nothing at/above --fail-on, 1 findings at/above it, 2 usage or input error
(including: nothing could be read); --exit-zero turns 1 into 0.
"""


def register(app: typer.Typer) -> None:
    app.command("scan", epilog=EPILOG)(scan)


def scan(
    paths: Annotated[list[str] | None, typer.Argument(
        help="Files or directories (.yaml/.yml/.json, recursive), or '-' for stdin.", show_default=False)] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="table, json, sarif or junit.")] = "table",
    out: Annotated[str | None, typer.Option("--out", help="Write the report to this file instead of stdout.")] = None,
    exit_zero: Annotated[bool, typer.Option(
        "--exit-zero", help="Exit 0 even with findings at/above --fail-on (2 still means the scan could not run): "
        "for CronJobs, where a failed Job should mean a failed scan, not a finding.")] = False,
    metrics: Annotated[str | None, typer.Option(
        "--metrics", help="Also write Prometheus metrics (score, findings, failing checks, measure status) to this "
        "file, e.g. for node-exporter's textfile collector (*.prom).")] = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", help="Exit 1 when a failure at/above this severity exists (info..critical). Default: high, "
        "or fail_on from the config.")] = None,
    config: Annotated[str | None, typer.Option(
        "--config", help="Config file (default: ./nis2kube.yaml when present).")] = None,
    waivers: Annotated[str | None, typer.Option(
        "--waivers", help="YAML file with a `waivers:` list (added to the config's).")] = None,
    checks: Annotated[list[str] | None, typer.Option(
        "--checks", help="Only these check ids (globs, repeatable or comma-separated), e.g. 'rbac.*'.")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Skip these check ids (globs).")] = None,
    show_passes: Annotated[bool, typer.Option("--show-passes", help="Table: list passing findings too.")] = False,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Judge dates (waiver expiry, evidence age, supported versions, CVE age) as of this day, "
        "YYYY-MM-DD, e.g. a snapshot's capture date. Default: today (UTC).")] = None,
    apiserver_manifest: Annotated[str | None, typer.Option(
        "--apiserver-manifest", help="kube-apiserver static Pod manifest (kubeadm: "
        "/etc/kubernetes/manifests/kube-apiserver.yaml); default: the kube-apiserver Pod found in the input.",
        rich_help_panel="Evidence beside the objects")] = None,
    audit_policy: Annotated[str | None, typer.Option(
        "--audit-policy", help="The API server's audit Policy file.",
        rich_help_panel="Evidence beside the objects")] = None,
    encryption_config: Annotated[str | None, typer.Option(
        "--encryption-config", help="The API server's EncryptionConfiguration file.",
        rich_help_panel="Evidence beside the objects")] = None,
    admission_config: Annotated[str | None, typer.Option(
        "--admission-config", help="The API server's AdmissionConfiguration (--admission-control-config-file) or "
        "PodSecurityConfiguration: cluster-wide Pod Security defaults and exemptions (RKE2's CIS profile sets "
        "them). A PodSecurity `path` is read from beside this file.",
        rich_help_panel="Evidence beside the objects")] = None,
    trivy_report: Annotated[list[str] | None, typer.Option(
        "--trivy-report", help="Trivy JSON report(s) of running images (repeatable).",
        rich_help_panel="Evidence beside the objects")] = None,
    sbom: Annotated[list[str] | None, typer.Option(
        "--sbom", help="SBOM of a running image (CycloneDX, SPDX, syft, in-toto; repeatable): FILE when the SBOM "
        "names its image (Trivy, syft, a pkg:oci purl), IMAGE=FILE when it does not.",
        rich_help_panel="Evidence beside the objects")] = None,
    alertmanager_config: Annotated[str | None, typer.Option(
        "--alertmanager-config", help="alertmanager.yml, when it is not in the input.",
        rich_help_panel="Evidence beside the objects")] = None,
    evidence: Annotated[str | None, typer.Option(
        "--evidence", help="YAML file attesting what no cluster object shows (pen test date, runbook, "
        "on-call, CSIRT contact, backups, log retention).", rich_help_panel="Evidence beside the objects")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    all_namespaces: AllNamespacesOpt = False,
    no_secrets: NoSecretsOpt = False,
    request_timeout: RequestTimeoutOpt = "30s",
    concurrency: ConcurrencyOpt = 8,
) -> None:
    """Audit a cluster against NIS2 Art. 21 measures; every finding names its evidence and measures."""
    from nis2kube.checks.registry import ScanContext
    from nis2kube.config import ConfigError, find_config, load_config
    from nis2kube.engine import run_checks
    from nis2kube.inventory import from_paths
    from nis2kube.inventory.live import restore_snapshot
    from nis2kube.report import FORMATS, render
    from nis2kube.waivers import WaiverError

    if output not in FORMATS:
        raise fail_usage(f"unknown output format {output!r}; choose from {', '.join(FORMATS)}")
    check_writable(out, metrics)
    live = not paths or bool(kubeconfig or context)
    if paths and live:
        raise fail_usage("give either PATHs to scan offline or --context/--kubeconfig to scan a live cluster")
    try:
        cfg = load_config(find_config(config, paths))
        if fail_on:
            cfg.fail_on = Severity.parse(fail_on)
        extra = _load_waiver_file(waivers) if waivers else []
        on = _parse_day(as_of) if as_of else None
    except (ConfigError, ValueError) as exc:
        raise fail_usage(str(exc)) from None

    if live:
        inv = live_inventory(kubeconfig=kubeconfig, context=context, namespace=namespace,
                             all_namespaces=all_namespaces, no_secrets=no_secrets, request_timeout=request_timeout,
                             concurrency=concurrency)
    else:
        inv = from_paths(paths)
        restore_snapshot(inv, paths)
    for problem in inv.problems:
        colour = "red" if problem.level == "error" else "yellow"
        err_console.print(f"[{colour}]{problem.level}:[/] {problem}", markup=True, soft_wrap=True, highlight=False)
    if len(inv) == 0:
        raise fail_usage("no Kubernetes objects could be read from the input")
    heap.settle()

    try:
        inputs = {
            "apiserver_manifest": apiserver_manifest, "audit_policy": audit_policy,
            "encryption_config": encryption_config, "admission_config": admission_config,
            "trivy_report": trivy_report or [], "sbom": sbom or [],
            "alertmanager_config": alertmanager_config, "evidence": evidence, "as_of": on,
        }
        result = run_checks(
            ScanContext(inv, cfg, inputs), include=_split(checks), exclude=_split(skip), today=on, extra_waivers=extra
        )
    except WaiverError as exc:
        raise fail_usage(str(exc)) from None
    if not result.checks:
        raise fail_usage("--checks/--skip selected no check; `nis2kube controls` lists them")
    heap.settle()

    for waiver in result.waiver_audit:
        if waiver["state"] == "expired":
            err_console.print(
                f"[yellow]warning:[/] waiver for {waiver['check']} owned by {waiver['owner']} expired on "
                f"{waiver['expires']}; it no longer applies", markup=True, soft_wrap=True)
    if metrics:
        from nis2kube.report.metrics import render_metrics

        write_atomically(render_metrics(result), metrics)
    if output == "table" and not out:
        from nis2kube.report.table import print_table

        print_table(result, show_passes=show_passes)
    elif output == "json":
        from nis2kube.report.json import iter_json

        write_raw(iter_json(result), out)
    else:
        write_output(render(result, output), out)
    raise typer.Exit(0 if exit_zero else result.exit_code)


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def _load_waiver_file(path: str) -> list:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from None
    entries = data.get("waivers") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a `waivers:` list")
    return entries


def _parse_day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--as-of {value!r}: expected a day as YYYY-MM-DD") from None
