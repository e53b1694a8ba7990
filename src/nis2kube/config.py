"""`nis2kube.yaml`: the team's settings (registries, system namespaces, waivers, thresholds).

Core fields are typed; each check family reads its own section through `section()`, so a family can
add settings without touching this module. Unknown top-level keys are reported, not ignored silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from nis2kube.findings import Severity

CONFIG_NAMES = ("nis2kube.yaml", "nis2kube.yml", ".nis2kube.yaml")
DEFAULT_SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the field."""


@dataclass
class Config:
    path: str | None = None
    approved_registries: tuple[str, ...] = ()
    system_namespaces: tuple[str, ...] = DEFAULT_SYSTEM_NAMESPACES
    fail_on: Severity = Severity.HIGH
    waivers: list[dict] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        """A family's own settings (e.g. `logging:`), {} when absent."""
        value = self.raw.get(name)
        return value if isinstance(value, dict) else {}

    def resolve_path(self, value: str) -> str:
        """Paths inside the config are relative to the config file."""
        if self.path and not os.path.isabs(value):
            return os.path.join(os.path.dirname(os.path.abspath(self.path)), value)
        return value


def find_config(explicit: str | None, scanned: list[str] | None = None) -> str | None:
    """--config, else ./nis2kube.yaml, else a nis2kube.yaml at the top of the first scanned directory."""
    if explicit:
        return explicit
    for folder in [".", *[p for p in scanned or [] if p != "-" and os.path.isdir(p)][:1]]:
        for name in CONFIG_NAMES:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return os.path.normpath(candidate)
    return None


def load_config(path: str | None) -> Config:
    """Read a config file; no file means defaults."""
    if path is None:
        return Config()
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return config_from_dict(raw, path)


def config_from_dict(raw: dict[str, Any], path: str | None = None) -> Config:
    where = path or "config"
    cfg = Config(path=path, raw=raw)
    registries = raw.get("approved_registries", [])
    if not isinstance(registries, list) or not all(isinstance(r, str) and r for r in registries):
        raise ConfigError(f"{where}: approved_registries must be a list of registry names")
    cfg.approved_registries = tuple(r.rstrip("/") for r in registries)
    system = raw.get("system_namespaces", list(DEFAULT_SYSTEM_NAMESPACES))
    if not isinstance(system, list) or not all(isinstance(n, str) for n in system):
        raise ConfigError(f"{where}: system_namespaces must be a list of namespace names")
    cfg.system_namespaces = tuple(system)
    if "fail_on" in raw:
        try:
            cfg.fail_on = Severity.parse(str(raw["fail_on"]))
        except ValueError as exc:
            raise ConfigError(f"{where}: fail_on: {exc}") from None
    waivers = raw.get("waivers", [])
    if not isinstance(waivers, list):
        raise ConfigError(f"{where}: waivers must be a list")
    cfg.waivers = waivers
    return cfg
