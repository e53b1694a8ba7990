"""Helpers shared by commands: the console, exit codes, and turning input problems into messages."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

err_console = Console(stderr=True, highlight=False)


def fail_usage(message: str) -> typer.Exit:
    """Print a usage/input error and return the Exit to raise (exit code 2)."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def write_output(content: str | bytes, path: str | None) -> None:
    """Write a report (text, or UTF-8 bytes) to a file, or to stdout when no path is given; ends it with a newline."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if not data.endswith(b"\n"):
        data += b"\n"
    if path and path != "-":
        with open(path, "wb") as fh:
            fh.write(data)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
