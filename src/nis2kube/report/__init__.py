"""Renderers: a Result in, text or bytes out. Nothing here prints or touches the network."""

from __future__ import annotations

from nis2kube.engine import Result

FORMATS = ("table", "json", "sarif", "junit")


def render(result: Result, fmt: str) -> str | bytes:
    """The report in one of FORMATS (the table format is plain text here; the CLI prints it with colour).
    JSON comes as UTF-8 bytes, the others as text."""
    if fmt == "json":
        from nis2kube.report.json import render_json as renderer
    elif fmt == "sarif":
        from nis2kube.report.sarif import render_sarif as renderer
    elif fmt == "junit":
        from nis2kube.report.junit import render_junit as renderer
    elif fmt == "table":
        from nis2kube.report.table import render_text as renderer
    else:
        raise ValueError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")
    return renderer(result)
