"""`nis2kube netpol`: prove microsegmentation from manifests (can-reach, matrix, verify)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from nis2kube import heap
from nis2kube.cli.common import EXIT_FINDINGS, EXIT_OK, err_console, fail_usage, write_output

if TYPE_CHECKING:
    from nis2kube.netpol.model import Model

netpol_app = typer.Typer(
    name="netpol",
    help="NetworkPolicy reachability: which workload can reach which, on which port, and why.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

PathsArg = Annotated[list[str], typer.Argument(
    help="Files or directories (.yaml/.yml/.json, recursive), or '-' for stdin.", show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(netpol_app, name="netpol")


def _model(paths: list[str]) -> Model:
    from nis2kube.inventory import from_paths
    from nis2kube.netpol import build_model

    inv = from_paths(paths)
    for problem in inv.problems:
        colour = "red" if problem.level == "error" else "yellow"
        err_console.print(f"[{colour}]{problem.level}:[/] {problem}", markup=True, soft_wrap=True, highlight=False)
    if len(inv) == 0:
        raise fail_usage("no Kubernetes objects could be read from the input")
    heap.settle()
    model = build_model(inv)
    for problem in model.problems:
        err_console.print(f"[yellow]warning:[/] {problem}", markup=True, soft_wrap=True, highlight=False)
    return model


@netpol_app.command("can-reach", epilog="""
**Examples**

* `nis2kube netpol can-reach ot-sensors/vibration-sensor-ingest ot-sensors/mqtt-broker -p 1883 examples/factory-hall`
* `nis2kube netpol can-reach mes/mes-frontend 'historian/*' --port postgres --explain examples/factory-hall`
* `nis2kube netpol can-reach external:203.0.113.0/24 mes/mes-frontend -p 8080 examples/factory-hall`

Exit codes: 0 every answer is allowed, 1 at least one is not, 2 usage or input error.
""")
def can_reach(
    src: Annotated[str, typer.Argument(help="ns/workload, ns/Kind/workload, ns/pod, ns/* or external[:CIDR].")],
    dst: Annotated[str, typer.Argument(help="ns/workload, ns/Kind/workload, ns/pod, ns/* or external[:CIDR].")],
    paths: PathsArg,
    port: Annotated[str | None, typer.Option(
        "--port", "-p", help="PORT[/PROTO], PORT-END/PROTO or a port name (default TCP). Absent: which ports.")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show every policy and rule behind the answer.")] = False,
    output: Annotated[str, typer.Option("-o", "--output", help="table or json.")] = "table",
) -> None:
    """Can SRC open a connection to DST? Allowed/denied, with the policy and rule that allow it or isolate it."""
    import orjson

    from nis2kube.netpol.ports import parse_port_ref
    from nis2kube.netpol.queries import answers, parse_target

    if output not in ("table", "json"):
        raise fail_usage(f"unknown output format {output!r}; choose table or json")
    model = _model(paths)
    try:
        ref = parse_port_ref(port) if port else None
        found = answers(model, parse_target(model, src), parse_target(model, dst), ref)
    except ValueError as exc:
        raise fail_usage(str(exc)) from None
    if output == "json":
        write_output(orjson.dumps([a.to_dict() for a in found], option=orjson.OPT_INDENT_2).decode(), None)
    else:
        lines = []
        for a in found:
            what = f" on {a.port}" if a.port else ""
            ports = f" ({a.ports.describe()})" if a.verdict in ("allowed", "partial") and not a.port else ""
            lines.append(f"{a.src} -> {a.dst}{what}: {a.verdict.upper()}{ports}")
            shown = a.reasons if explain else [r for r in a.reasons if _headline(r)]
            lines.extend(f"    {r}" for r in shown)
        write_output("\n".join(lines) or "no pairs to answer", None)
    raise typer.Exit(EXIT_OK if found and all(a.verdict == "allowed" for a in found) else EXIT_FINDINGS)


def _headline(reason: str) -> bool:
    """Without --explain: the verdict-deciding lines (isolation, missing ports, not modelled), not every rule."""
    return " allows " not in reason


@netpol_app.command("matrix", epilog="""
**Examples**

* `nis2kube netpol matrix examples/factory-hall`
* `nis2kube netpol matrix -n ot-sensors -n line-analytics examples/factory-hall`
* `nis2kube netpol matrix -o svg --out matrix.svg examples/factory-hall` (needs Graphviz)
* `nis2kube netpol matrix -o csv examples/factory-hall > matrix.csv`
""")
def matrix(
    paths: PathsArg,
    namespace: Annotated[list[str] | None, typer.Option(
        "-n", "--namespace", help="Only these namespaces (repeatable).")] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="table, json, csv, dot, svg or png.")] = "table",
    out: Annotated[str | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """The workload x workload reachability matrix, grouped by namespace/zone, with ports."""
    from nis2kube.netpol import render

    if output not in render.FORMATS:
        raise fail_usage(f"unknown output format {output!r}; choose from {', '.join(render.FORMATS)}")
    if output in ("svg", "png") and not out:
        raise fail_usage(f"-o {output} writes an image: give --out FILE")
    model = _model(paths)
    m = model.matrix(namespace or None)
    if output in ("svg", "png"):
        try:
            data = render.render_image(m, output)
        except render.RenderError as exc:
            raise fail_usage(str(exc)) from None
        with open(out, "wb") as fh:  # type: ignore[arg-type]
            fh.write(data)
        return
    text = {"table": render.render_table, "json": render.render_json, "csv": render.render_csv,
            "dot": render.render_dot}[output](m)
    write_output(text, out)


@netpol_app.command("verify", epilog="""
**Examples**

* `nis2kube netpol verify examples/factory-hall/flows.yaml examples/factory-hall`
* `nis2kube netpol verify flows.yaml dump.json -o json`

Exit codes: 0 the policies allow exactly the declared flows, 1 excess or blocked flows, 2 usage or input error.
""")
def verify(
    flows: Annotated[str, typer.Argument(help="flows.yaml (kind: FlowSpec): zones and the flows between them.")],
    paths: PathsArg,
    output: Annotated[str, typer.Option("-o", "--output", help="table or json.")] = "table",
) -> None:
    """Compare allowed flows with declared ones: excess (allowed, undeclared) and blocked (declared, denied)."""
    import orjson

    from nis2kube.netpol.flows import FlowSpecError, load_flows
    from nis2kube.netpol.flows import verify as run_verify

    if output not in ("table", "json"):
        raise fail_usage(f"unknown output format {output!r}; choose table or json")
    try:
        spec = load_flows(flows)
    except FlowSpecError as exc:
        raise fail_usage(str(exc)) from None
    result = run_verify(_model(paths), spec)
    if output == "json":
        write_output(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode(), None)
    else:
        lines = [f"Declared flows: {len(spec.flows)} in {spec.path}" + (" (+ DNS to kube-dns)" if spec.dns else "")]
        for title, gaps in (("EXCESS (allowed but not declared)", result.excess),
                            ("BLOCKED (declared but denied)", result.blocked)):
            lines.append(f"{title}: {len(gaps)}")
            lines.extend(f"  {g.describe()}" for g in gaps)
        for title, notes in (("UNVERIFIABLE", result.unverifiable), ("WARNINGS", result.warnings)):
            if notes:
                lines.append(f"{title}: {len(notes)}")
                lines.extend(f"  {n}" for n in notes)
        lines.append("OK: the policies allow exactly the declared flows" if result.ok else
                     "FAIL: the policies do not match the declared flows")
        write_output("\n".join(lines), None)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FINDINGS)
