"""Data files shipped inside the package (the NIS2 catalog, the Kubernetes release table).

Parsed with libyaml when PyYAML has it: every scan reads them at start-up, and the pure-Python parser
took a tenth of a small scan's time."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(package: str, name: str) -> Any:
    """The YAML file `name` inside `package`, with safe_load's types."""
    return yaml.load(resources.files(package).joinpath(name).read_text(encoding="utf-8"), Loader=_LOADER)
