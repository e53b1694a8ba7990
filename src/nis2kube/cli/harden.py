"""`nis2kube harden`: write the fix bundle (kustomize-ready), validated, and optionally proven by a re-scan."""

from __future__ import annotations

from typing import Annotated

import typer

from nis2kube import heap
from nis2kube.cli.common import EXIT_FINDINGS, err_console, fail_usage
from nis2kube.cli.snapshot import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    NoSecretsOpt,
    RequestTimeoutOpt,
    live_inventory,
)

EPILOG = """
**Examples**

* `nis2kube harden examples/factory-hall -o hardening/ --flows examples/factory-hall/flows.yaml --verify`
* `nis2kube harden --context prod-plant-1 -o hardening/ --verify` - from the live cluster (read-only)
* `nis2kube harden dump.json -o out/ --only admission,audit --engine vap --kube-version 1.31`
* `nis2kube harden ./manifests -o out/ --only admission --cosign-key cosign.pub`
* `nis2kube harden ./manifests -o out/ --keyless-issuer https://token.actions.githubusercontent.com
  --keyless-subject 'https://github.com/plant/*'`

Never applies anything. Exit codes: 0 written (and verified with --verify), 1 --verify found a finding the
bundle does not close or a new failure, 2 usage/input error or a generated object failed schema validation.
"""


def register(app: typer.Typer) -> None:
    app.command("harden", epilog=EPILOG)(harden)


def harden(
    paths: Annotated[list[str] | None, typer.Argument(
        help="Files or directories with the cluster's objects, or '-' for stdin; none: the live cluster.",
        show_default=False)] = None,
    outdir: Annotated[str | None, typer.Option("-o", "--output", help="Directory to write the bundle to.")] = None,
    only: Annotated[str | None, typer.Option(
        "--only", help="Comma-separated areas: netpol,admission,audit,runtime,alerting (default: all).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Admission engine: kyverno or vap.")] = "kyverno",
    kube_version: Annotated[str | None, typer.Option(
        "--kube-version", help="Validate against this Kubernetes version's schemas (default: newest known).")] = None,
    flows: Annotated[str | None, typer.Option(
        "--flows", help="flows.yaml with the declared flows (default: `flows:` in the config).")] = None,
    cosign_key: Annotated[str | None, typer.Option(
        "--cosign-key", help="cosign public key (PEM file) for image signature verification.")] = None,
    keyless_issuer: Annotated[str | None, typer.Option("--keyless-issuer", help="OIDC issuer of keyless signing.")
                              ] = None,
    keyless_subject: Annotated[str | None, typer.Option(
        "--keyless-subject", help="Certificate subject (identity) of keyless signing; wildcards allowed.")] = None,
    crd: Annotated[list[str] | None, typer.Option(
        "--crd", help="CustomResourceDefinition file(s) to validate custom resources against (repeatable).")] = None,
    allow_cidr: Annotated[list[str] | None, typer.Option(
        "--allow-cidr", help="Extra allowed outbound network for the Falco rule (repeatable).")] = None,
    serve_url: Annotated[str, typer.Option(
        "--serve-url", help="In-cluster URL of `nis2kube serve` (Falco webhook target).")
    ] = "http://nis2kube.nis2kube.svc:8080",
    config: Annotated[str | None, typer.Option("--config", help="Config file (default: ./nis2kube.yaml).")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Re-scan the input plus the written bundle; exit 1 unless every claimed finding closes "
        "and nothing new fails.")] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    no_secrets: NoSecretsOpt = False,
    request_timeout: RequestTimeoutOpt = "30s",
) -> None:
    """Generate the YAML that closes the findings, validated against the schemas; never applies it."""
    from nis2kube.config import ConfigError, find_config, load_config
    from nis2kube.harden.bundle import BundleError, write_bundle
    from nis2kube.harden.context import AREAS, HardenContext, HardenOptions
    from nis2kube.harden.generate import build
    from nis2kube.harden.validate import VersionError
    from nis2kube.inventory import from_paths
    from nis2kube.inventory.files import load_paths

    live = not paths or bool(kubeconfig or context)
    if paths and live:
        raise fail_usage("give either PATHs to read offline or --context/--kubeconfig to read a live cluster")
    if not outdir:
        raise fail_usage("give the output directory with -o OUTDIR")
    areas = tuple(a.strip() for a in (only or ",".join(AREAS)).split(",") if a.strip())
    unknown = [a for a in areas if a not in AREAS]
    if unknown or not areas:
        raise fail_usage(f"--only: unknown area(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(AREAS)}")
    if engine not in ("kyverno", "vap"):
        raise fail_usage(f"--engine {engine!r}: choose kyverno or vap")
    if bool(keyless_issuer) != bool(keyless_subject):
        raise fail_usage("--keyless-issuer and --keyless-subject go together")
    try:
        cfg = load_config(find_config(config, paths))
    except ConfigError as exc:
        raise fail_usage(str(exc)) from None
    key_text = _read_key(cosign_key) if cosign_key else None
    flows_path = flows or (cfg.resolve_path(str(cfg.raw["flows"])) if cfg.raw.get("flows") else None)

    if live:
        inv = live_inventory(kubeconfig=kubeconfig, context=context, namespace=namespace, all_namespaces=False,
                             no_secrets=no_secrets, request_timeout=request_timeout, concurrency=8)
    else:
        inv = from_paths(paths)
    for problem in inv.problems:
        err_console.print(f"{problem.level}: {problem}", markup=False, soft_wrap=True, highlight=False)
    if len(inv) == 0:
        raise fail_usage("no Kubernetes objects could be read from the input")
    heap.settle()
    crds = []
    for path in crd or []:
        loaded = load_paths([path])
        if any(p.level == "error" for p in loaded.problems) or not loaded.objects:
            raise fail_usage(f"--crd {path}: no CustomResourceDefinition could be read")
        crds += [o for o, _ in loaded.objects if o.get("kind") == "CustomResourceDefinition"]
    options = HardenOptions(only=areas, engine=engine, kube_version=kube_version, cosign_key=key_text,
                            keyless_issuer=keyless_issuer, keyless_subject=keyless_subject, flows=flows_path,
                            serve_url=serve_url, extra_cidrs=tuple(allow_cidr or ()))
    ctx = HardenContext(inv, cfg, options)
    try:
        bundle, report = build(ctx, crds=crds)
    except (VersionError, ValueError) as exc:
        raise fail_usage(str(exc)) from None
    if report.errors:
        for error in report.errors:
            err_console.print(f"invalid: {error}", markup=False, soft_wrap=True, highlight=False)
        raise fail_usage(f"{len(report.errors)} generated object(s) failed validation; nothing was written")
    try:
        written = write_bundle(bundle, outdir)
    except (BundleError, OSError) as exc:
        raise fail_usage(str(exc)) from None
    typer.echo(f"wrote {len(written)} files to {outdir} ({len(report.checked)} objects validated, "
               f"{len(report.unchecked)} without a schema)")
    for display, why in report.unchecked:
        err_console.print(f"warning: {display}: {why}", markup=False, soft_wrap=True, highlight=False)
    if verify:
        raise typer.Exit(_verify(list(inv.all_objects()), outdir, bundle, ctx, live))


def _read_key(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(64 * 1024)
    except OSError as exc:
        raise fail_usage(f"--cosign-key {path}: cannot read: {exc.strerror}") from None
    if "-----BEGIN PUBLIC KEY-----" not in text or "-----END PUBLIC KEY-----" not in text:
        raise fail_usage(f"--cosign-key {path}: not a PEM public key (expected -----BEGIN PUBLIC KEY-----)")
    return text.strip()


def _verify(objects: list[dict], outdir: str, bundle, ctx, live: bool) -> int:
    """Re-scan the objects read plus the bundle. Live, the before-scan is redone on the captured objects too:
    both sides then lack the cluster's discovery facts alike (as an offline scan of a snapshot would)."""
    from nis2kube.harden.verify import VerifyError, verify

    try:
        result = verify(objects, outdir, bundle, ctx.config, before=None if live else ctx.before, ctx=ctx)
    except VerifyError as exc:
        raise fail_usage(str(exc)) from None
    typer.echo(f"verify: {len(result.closed)} of {len(result.claimed)} claimed findings closed, "
               f"{len(result.evidenced)} newly evidenced, {len(result.new_failures)} new failures")
    for f in result.still_failing:
        typer.echo(f"  still failing: {f.check} {f.resource.display if f.resource else ''}: {f.message}")
    for f in result.new_failures:
        typer.echo(f"  new failure: {f.check} {f.resource.display if f.resource else ''}: {f.message}")
    for f in result.newly_visible:
        typer.echo(f"  now visible (could not be judged before): {f.check} "
                   f"{f.resource.display if f.resource else ''}: {f.message}")
    if result.netpol is not None:
        for line in result.netpol.lines():
            typer.echo(f"  netpol: {line}")
    return 0 if result.ok else EXIT_FINDINGS
