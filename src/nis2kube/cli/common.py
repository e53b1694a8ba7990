"""Helpers shared by commands: the console, exit codes, and turning input problems into messages."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterable

import typer

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class _StderrConsole:
    """rich's stderr Console, made on first use: importing rich is a sixth of a command's start-up, and most
    runs print nothing to stderr."""

    def __init__(self) -> None:
        self._console = None

    def __getattr__(self, name: str) -> object:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
        return getattr(self._console, name)


err_console = _StderrConsole()


def fail_usage(message: str) -> typer.Exit:
    """Print a usage/input error and return the Exit to raise (exit code 2)."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def write_output(content: str | bytes, path: str | None) -> None:
    """Write a report (text, or UTF-8 bytes) to a file, or to stdout when no path is given; ends it with a newline."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    write_raw(data if data.endswith(b"\n") else data + b"\n", path)


def write_raw(data: bytes | Iterable[bytes], path: str | None) -> None:
    """Write bytes (or chunks of bytes, as they come) to a file, or to stdout for None or '-'; an unwritable
    path is a clean exit 2."""
    chunks = [data] if isinstance(data, bytes) else data
    if path and path != "-":
        try:
            with open(path, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
        except OSError as exc:
            raise fail_usage(f"cannot write {path}: {exc.strerror or exc}") from None
    else:
        sys.stdout.flush()
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()


def write_atomically(text: str, path: str) -> None:
    """Write a file that another process may read at any moment (a textfile collector): a temporary file
    beside it, then a rename, so readers see the old content or the new, never half of it."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".nis2kube-", dir=folder)
    except OSError as exc:
        raise fail_usage(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_writable(*paths: str | None) -> None:
    """Refuse an output path whose folder does not exist or cannot be written, before the long work starts."""
    for path in paths:
        if path and path != "-":
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                raise fail_usage(f"cannot write {path}: {folder} is not a writable directory")
