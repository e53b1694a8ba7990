"""The terminal report: measures with their status, then what fails and how to fix it."""

from __future__ import annotations

import io
from collections import defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nis2kube.engine import Result
from nis2kube.findings import Finding, Status

_STATUS_STYLE = {
    "fail": "bold red", "pass": "green", "not-assessed": "yellow", "organisational": "dim", "waived": "cyan",
}  # fmt: skip
_SEVERITY_STYLE = {"critical": "bold magenta", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def print_table(result: Result, *, show_passes: bool = False, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    for renderable in _renderables(result, show_passes):
        console.print(renderable)


def render_text(result: Result) -> str:
    """The same report as plain text (for --out and tests)."""
    buffer = io.StringIO()
    print_table(result, console=Console(file=buffer, width=140, no_color=True, highlight=False))
    return buffer.getvalue()


def _renderables(result: Result, show_passes: bool):
    source = result.inventory.source
    yield Text.assemble(
        ("nis2kube ", "bold"), f"{result.tool_version} · {len(result.inventory):,} objects from ",
        ", ".join(source.locations) or source.type, f" · {len(result.checks)} checks · {result.duration_s:.2f} s",
    )
    measures = Table(title="NIS2 measures", title_justify="left", show_lines=False, expand=False)
    for col in ("measure", "title", "status", "fail", "pass", "n/a"):
        measures.add_column(col, justify="right" if col in ("fail", "pass", "n/a") else "left")
    summary = result.summary()  # one pass over the findings for every number below
    for m in summary["measures"]:
        if m["status"] == "organisational" and not m["id"].startswith("art21"):
            continue
        counts = m["findings"]
        measures.add_row(
            m["id"], m["title"], Text(m["status"], _STATUS_STYLE.get(m["status"], "")),
            str(counts["fail"] or ""), str(counts["pass"] or ""), str(counts["not-assessed"] or ""),
        )
    yield measures

    app_findings = [f for f in result.findings if not f.system]
    system_findings = [f for f in result.findings if f.system]
    yield from _finding_sections("Failing findings", app_findings, show_passes)
    if system_findings:
        yield from _finding_sections("System namespaces (reported apart, not scored)", system_findings, False)

    waived = [f for f in result.findings if f.status is Status.WAIVED]
    if waived:
        yield Text(f"\n{len(waived)} finding(s) waived; see -o json for justifications and owners.", "cyan")
    counts = summary["findings"]
    line = Text.assemble(
        "\nscore ", (f"{summary['score']:.1f}", "bold"), "/100 · ",
        (f"{counts['fail']} fail", "red"), f" · {counts['pass']} pass · {counts['waived']} waived · ",
        (f"{counts['not-assessed']} not assessed", "yellow"),
        f" · {summary['blocking']} at/above {result.fail_on.value}",
    )
    if result.problems:
        line.append(f" · {len(result.problems)} input problem(s) (see stderr)", "yellow")
    yield line


def _finding_sections(title: str, findings: list[Finding], show_passes: bool):
    """One block per check, most severe first: a header, one line per resource, then the fix."""
    shown = [f for f in findings if f.status is Status.FAIL or (show_passes and f.status is not Status.FAIL)]
    if not shown:
        return
    by_check: dict[str, list[Finding]] = defaultdict(list)
    for f in shown:
        by_check[f.check].append(f)
    yield Text(f"\n{title}", "bold underline")
    for check_id, items in sorted(by_check.items(), key=lambda kv: (-kv[1][0].severity.rank, kv[0])):
        first = items[0]
        label = first.severity.value.upper() if first.status is Status.FAIL else first.status.value
        yield Text.assemble(
            "\n", (f"{label:<8}", _SEVERITY_STYLE.get(first.severity.value, "")), " ", (check_id, "bold"),
            f"  ({len(items)})  ", (", ".join(first.measures[:3]), "dim"),
        )
        lines = Text()  # one renderable per check: printing 36k single lines one by one took seconds
        for f in items:
            resource = f.resource.display if f.resource else "(cluster)"
            if f.container:
                resource += f" [{f.container}]"
            mark = "✗" if f.status is Status.FAIL else "·"
            lines.append(f"  {mark} ")
            lines.append(resource, "cyan")
            lines.append(f": {f.message}\n")
        if first.status is Status.FAIL:
            lines.append(f"    fix: {first.remediation}", "dim")
        else:
            lines.rstrip()
        yield lines
