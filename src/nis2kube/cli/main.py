"""The `nis2kube` command: one Typer app per command group, registered here.

Each module in COMMAND_MODULES exposes `register(app)`. Heavy libraries (FastAPI, SQLAlchemy, the
kubernetes client) are imported inside the commands that need them, so `nis2kube scan` starts fast.
"""

from __future__ import annotations

import importlib

import typer

from nis2kube import __version__, heap

COMMAND_MODULES = ("scan", "catalog", "snapshot", "incident", "serve", "netpol", "harden")

app = typer.Typer(
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nis2kube {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """NIS2 readiness for Kubernetes: audit, prove segmentation, harden, respond."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"nis2kube.cli.{_name}").register(app)


def run() -> None:
    """The console script: Typer ends with SystemExit; batch commands then leave without the teardown."""
    try:
        app()
    except SystemExit as done:
        heap.exit_process(done.code)
