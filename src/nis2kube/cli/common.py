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


def write_output(text: str, path: str | None) -> None:
    """Write a report to a file, or to stdout when no path is given."""
    if path and path != "-":
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
