"""`nis2kube snapshot`: freeze a live cluster's inventory as a List dump that `scan` re-reads offline.

Also home of the live-cluster options shared with `scan` (kubectl's flags), so both commands read a
cluster the same way.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from nis2kube.cli.common import err_console, fail_usage, write_raw

if TYPE_CHECKING:
    from nis2kube.inventory import Inventory

EPILOG = """
**Examples**

* `nis2kube snapshot --context prod-plant-1 -o plant-1-2026-11-22.json` - evidence an auditor can re-scan later
* `nis2kube scan plant-1-2026-11-22.json` - the same findings, offline, with the cluster's name and capture time
* `nis2kube snapshot -n ot-sensors --no-secrets -o sensors.json`

Secrets are always captured as metadata only (names, labels); their values are never requested.
"""

LIVE_PANEL = "Live cluster (when no PATH is given)"

# The live-cluster options, one definition for every command that reads a cluster (kubectl's flag names).
KubeconfigOpt = Annotated[str | None, typer.Option(
    "--kubeconfig", help="kubeconfig file(s), like KUBECONFIG; reads the live cluster.", rich_help_panel=LIVE_PANEL)]
ContextOpt = Annotated[str | None, typer.Option(
    "--context", help="kubeconfig context (default: the current one).", rich_help_panel=LIVE_PANEL)]
NamespaceOpt = Annotated[str | None, typer.Option(
    "-n", "--namespace", help="Only this namespace (cluster-scoped kinds are still read).",
    rich_help_panel=LIVE_PANEL)]
AllNamespacesOpt = Annotated[bool, typer.Option(
    "-A", "--all-namespaces", help="All namespaces (the default).", rich_help_panel=LIVE_PANEL)]
NoSecretsOpt = Annotated[bool, typer.Option(
    "--no-secrets", help="Do not list Secrets at all, not even their metadata.", rich_help_panel=LIVE_PANEL)]
RequestTimeoutOpt = Annotated[str, typer.Option(
    "--request-timeout", help="Per request, e.g. 30s or 2m.", rich_help_panel=LIVE_PANEL)]
ConcurrencyOpt = Annotated[int, typer.Option(
    "--concurrency", help="Kinds listed in parallel.", rich_help_panel=LIVE_PANEL)]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def register(app: typer.Typer) -> None:
    app.command("snapshot", epilog=EPILOG)(snapshot)


def parse_timeout(text: str) -> float:
    """kubectl's --request-timeout: `30`, `30s`, `2m`, `1h`, `500ms`; 0 means our default of 30 s."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"invalid --request-timeout {text!r}; use e.g. 30s, 2m or 45")
    value = float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    return value or 30.0


def live_inventory(
    *, kubeconfig: str | None, context: str | None, namespace: str | None, all_namespaces: bool,
    no_secrets: bool, request_timeout: str, concurrency: int,
) -> Inventory:
    """Read the cluster with a progress bar on a terminal; exit 2 with the reason when it cannot be read."""
    from nis2kube.inventory.live import ClusterTarget, LiveError, LiveOptions, from_cluster

    if namespace and all_namespaces:
        raise fail_usage("-n/--namespace and -A/--all-namespaces exclude each other")
    if not 1 <= concurrency <= 64:
        raise fail_usage("--concurrency must be between 1 and 64")
    try:
        timeout = parse_timeout(request_timeout)
    except ValueError as exc:
        raise fail_usage(str(exc)) from None
    target = ClusterTarget(kubeconfig=kubeconfig, context=context, request_timeout=timeout)
    options = LiveOptions(namespace=namespace, no_secrets=no_secrets, concurrency=concurrency)
    try:
        if sys.stderr.isatty():
            from rich.progress import Progress

            with Progress(console=err_console, transient=True) as bar:
                task = bar.add_task("listing kinds", total=None)

                def advance(kind: str, done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total, description=f"listed {kind}")

                options.progress = advance
                inv = from_cluster(target, options)
        else:
            inv = from_cluster(target, options)
    except LiveError as exc:
        raise fail_usage(str(exc)) from None
    for (group, kind), reason in sorted(inv.unlisted.items()):
        err_console.print(f"[yellow]not listed:[/] {kind}{'.' + group if group else ''}: {reason}",
                          markup=True, soft_wrap=True, highlight=False)
    return inv


def snapshot(
    output: Annotated[str, typer.Option("-o", "--output", help="Write the dump to this file ('-' = stdout).")],
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    all_namespaces: AllNamespacesOpt = False,
    no_secrets: NoSecretsOpt = False,
    request_timeout: RequestTimeoutOpt = "30s",
    concurrency: ConcurrencyOpt = 8,
) -> None:
    """Capture a live cluster (read-only) as a JSON List that `nis2kube scan FILE` reads offline."""
    import orjson

    from nis2kube.inventory.live import snapshot_document

    inv = live_inventory(kubeconfig=kubeconfig, context=context, namespace=namespace,
                         all_namespaces=all_namespaces, no_secrets=no_secrets, request_timeout=request_timeout,
                         concurrency=concurrency)
    write_raw(orjson.dumps(snapshot_document(inv), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE), output)
    err_console.print(f"{len(inv):,} objects from {inv.source.cluster} ({inv.source.server_version}) captured at "
                      f"{inv.source.captured_at}", soft_wrap=True, highlight=False)
