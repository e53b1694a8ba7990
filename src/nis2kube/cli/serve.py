"""`nis2kube serve`: the alert intake service (Falco, Alertmanager) with the incidents API and /metrics."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from nis2kube.cli.common import fail_usage

EPILOG = """
**Examples**

* `NIS2KUBE_WEBHOOK_TOKEN=$(openssl rand -hex 32) nis2kube serve --port 8080`
* `nis2kube serve --host 0.0.0.0 --db postgresql://nis2kube@db/nis2kube --config nis2kube.yaml`

Secrets come from the environment (NIS2KUBE_WEBHOOK_TOKEN, NIS2KUBE_WEBHOOK_HMAC_SECRET) or from files
named in the config (`server.token_file`, `server.hmac_secret_file`), never from the command line.
"""


def register(app: typer.Typer) -> None:
    app.command("serve", epilog=EPILOG)(serve)


def _read_secret(path: str, cfg) -> str:
    full = cfg.resolve_path(path)
    try:
        with open(full, encoding="utf-8") as fh:
            secret = fh.read().strip()
    except OSError as exc:
        raise fail_usage(f"{full}: cannot read secret: {exc.strerror}") from None
    if not secret:
        raise fail_usage(f"{full}: the secret file is empty")
    return secret


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    db: Annotated[str | None, typer.Option("--db", envvar="NIS2KUBE_DB", help=(
        "Database URL (sqlite:///file.db or postgresql://...). Default: $XDG_DATA_HOME/nis2kube/nis2kube.db."
    ))] = None,
    config: Annotated[str | None, typer.Option("--config", help="Config file (default ./nis2kube.yaml).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Receive Falco and Alertmanager webhooks; open/update incidents; serve /incidents and /metrics."""
    import uvicorn

    from nis2kube.config import ConfigError, find_config, load_config
    from nis2kube.incidents.profile import profile_from_config
    from nis2kube.server.app import DEFAULT_MAX_BODY, ServerSettings, create_app
    from nis2kube.store import Store, StoreError

    try:
        cfg = load_config(find_config(config))
        entity = profile_from_config(cfg)
    except ConfigError as exc:
        raise fail_usage(str(exc)) from None
    section = cfg.section("server")
    token = os.environ.get("NIS2KUBE_WEBHOOK_TOKEN") or (
        _read_secret(section["token_file"], cfg) if section.get("token_file") else None)
    secret = os.environ.get("NIS2KUBE_WEBHOOK_HMAC_SECRET") or (
        _read_secret(section["hmac_secret_file"], cfg) if section.get("hmac_secret_file") else None)
    max_body = section.get("max_body_bytes", DEFAULT_MAX_BODY)
    if not isinstance(max_body, int) or max_body <= 0:
        raise fail_usage(f"{cfg.path}: server.max_body_bytes must be a positive integer")
    try:
        settings = ServerSettings(token=token, hmac_secret=secret, max_body_bytes=max_body)
        store = Store(db)
    except (ValueError, StoreError) as exc:
        raise fail_usage(str(exc)) from None
    uvicorn.run(create_app(store, settings, entity), host=host, port=port, access_log=access_log,
                log_level="info", server_header=False)
