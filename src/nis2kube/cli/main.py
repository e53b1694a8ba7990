"""The `nis2kube` command: one Typer app per command group, registered here.

Each module in COMMAND_MODULES exposes `register(app)`. Heavy libraries (FastAPI, SQLAlchemy, the
kubernetes client) are imported inside the commands that need them, so `nis2kube scan` starts fast; and the
console script registers only the module of the command it was asked for (all of them for --help, --version
or a name it does not know): building every command's parameters is a fifth of a small scan's start-up.
`app`, with every command, is made on first access (tests, embedding).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

import typer

from nis2kube import __version__, heap

COMMAND_MODULES = ("scan", "catalog", "snapshot", "incident", "serve", "netpol", "harden")
# top-level command name -> the module registering it (tests hold this to what the modules register)
COMMANDS = {"scan": "scan", "controls": "catalog", "explain": "catalog", "snapshot": "snapshot",
            "incident": "incident", "serve": "serve", "netpol": "netpol", "harden": "harden"}  # fmt: skip


_APP_SETTINGS = dict(
    name="nis2kube",
    help=(
        "Make a Kubernetes cluster provably ready for the EU NIS2 Directive, and keep it that way.\n\n"
        "Start with:  nis2kube scan examples/factory-hall"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def build_app(modules: Iterable[str] = COMMAND_MODULES) -> typer.Typer:
    """The root app with the commands of `modules`."""
    root = typer.Typer(**_APP_SETTINGS)
    root.callback()(_root)
    for name in modules:
        importlib.import_module(f"nis2kube.cli.{name}").register(root)
    return root


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nis2kube {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """NIS2 readiness for Kubernetes: audit, prove segmentation, harden, respond."""


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        globals()["app"] = full = build_app()
        return full
    raise AttributeError(name)


def run() -> None:
    """The console script: Typer ends with SystemExit; batch commands then leave without the teardown."""
    module = COMMANDS.get(sys.argv[1]) if len(sys.argv) > 1 else None
    try:
        build_app([module] if module else COMMAND_MODULES)()
    except SystemExit as done:
        heap.exit_process(done.code)
