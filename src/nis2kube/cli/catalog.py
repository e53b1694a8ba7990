"""`nis2kube controls` and `nis2kube explain`: the NIS2 measures, the checks behind them."""

from __future__ import annotations

from typing import Annotated

import typer

from nis2kube.cli.common import fail_usage


def register(app: typer.Typer) -> None:
    app.command("controls", epilog="Example: `nis2kube controls --measure art21.2.i`")(controls)
    app.command("explain", epilog="Example: `nis2kube explain net.default-deny-ingress`")(explain)


def controls(
    measure: Annotated[str | None, typer.Option("--measure", help="Only this measure id.")] = None,
) -> None:
    """List the NIS2 measures (Art. 21(2), IR 2024/2690 annex, Art. 23) and the checks that evidence each."""
    from rich.console import Console
    from rich.table import Table

    from nis2kube.catalog import measures
    from nis2kube.checks import all_checks

    checks = all_checks()
    by_measure: dict[str, list[str]] = {}
    for spec in checks.values():
        for m in spec.measures:
            by_measure.setdefault(m, []).append(spec.id)
    if measure and measure not in measures():
        raise fail_usage(f"unknown measure {measure!r}; `nis2kube controls` lists them")
    table = Table(title=f"{len(measures())} measures, {len(checks)} checks", title_justify="left")
    for col in ("measure", "source", "title", "kind", "checks"):
        table.add_column(col, overflow="fold")
    for m in measures().values():
        if measure and m.id != measure:
            continue
        ids = sorted(by_measure.get(m.id, []))
        table.add_row(m.id, m.source, m.title, m.kind, ", ".join(ids) if ids else "(organisational: attest it)")
    Console(highlight=False).print(table)


def explain(check_id: Annotated[str, typer.Argument(help="A check id, e.g. rbac.wildcard.")]) -> None:
    """Explain one check: what it looks at, why it matters for NIS2, and how to fix a failure."""
    from rich.console import Console

    from nis2kube.catalog import measures
    from nis2kube.checks import all_checks

    spec = all_checks().get(check_id)
    if spec is None:
        raise fail_usage(f"unknown check {check_id!r}; `nis2kube controls` lists every check")
    console = Console(highlight=False)
    console.print(f"[bold]{spec.id}[/]  {spec.title}")
    console.print(f"severity: {spec.severity.value}")
    console.print("measures:")
    for mid in spec.measures:
        m = measures().get(mid)
        console.print(f"  {mid}  {m.source + ' - ' + m.title if m else ''}")
    if spec.description:
        console.print(f"\n{spec.description}")
    console.print(f"\nfix: {spec.remediation}")
