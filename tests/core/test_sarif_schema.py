"""`scan -o sarif` against the official OASIS SARIF 2.1.0 JSON schema (tests/data, see NOTICE-sarif-schema.md).

Realistic inputs: the example factory hall as files (physical locations, config waivers), Helm output read
from stdin (template paths from `# Source:` comments), and an input with a malformed document (so the
invocation carries tool execution notifications) plus a waived finding (suppressions).
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re

import jsonschema
import pytest

from conftest import EXAMPLE, inventory_from_yaml
from nis2kube.checks.registry import ScanContext
from nis2kube.config import config_from_dict, find_config, load_config
from nis2kube.engine import Result, run_checks
from nis2kube.findings import Status
from nis2kube.inventory import from_paths
from nis2kube.report import render

SCHEMA_PATH = pathlib.Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"
TODAY = dt.date(2026, 11, 22)

HELM_STDIN = """\
---
# Source: plant/templates/frontend.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
  namespace: mes
spec:
  selector:
    matchLabels: {app: frontend}
  template:
    metadata:
      labels: {app: frontend}
    spec:
      containers:
        - name: web
          image: docker.io/library/nginx:latest
          securityContext:
            privileged: true
---
# Source: plant/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: frontend
  namespace: mes
spec:
  type: NodePort
  selector: {app: frontend}
  ports:
    - port: 80
"""

BROKEN = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: historian
  namespace: plant
spec:
  template:
    spec:
      containers:
        - name: db
          image: registry.plant.example/historian:1.2
---
apiVersion: v1
kind: ConfigMap
metadata: {name: broken, namespace: plant
data: [unclosed
---
just a string, not an object
"""


# RFC 3986 / RFC 3339 checks for the formats the schema uses; jsonschema only checks uri, uri-reference and
# date-time when optional packages (rfc3987, rfc3339-validator) are installed, so fill in any it lacks.
_URI_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


def _is_uri_reference(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _URI_CHARS.fullmatch(value) or value.count("#") > 1:
        return False
    head = re.split(r"[/?#]", value, maxsplit=1)[0]
    return ":" not in head or bool(_SCHEME.fullmatch(head.split(":", 1)[0]))  # a colon first means a scheme


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    scheme, colon, _ = value.partition(":")
    return bool(colon) and bool(_SCHEME.fullmatch(scheme)) and _is_uri_reference(value)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.fullmatch(value):
        return False
    try:
        dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _format_checker() -> jsonschema.FormatChecker:
    base = getattr(jsonschema.Draft7Validator, "FORMAT_CHECKER", None) or jsonschema.FormatChecker()
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = dict(base.checkers)
    for name, func in (("uri", _is_uri), ("uri-reference", _is_uri_reference), ("date-time", _is_date_time)):
        if name not in checker.checkers:
            checker.checks(name)(func)
    return checker


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=_format_checker())


def _sarif(result: Result) -> dict:
    return json.loads(render(result, "sarif"))


def _errors(validator: jsonschema.Draft7Validator, sarif: dict) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
        for err in sorted(validator.iter_errors(sarif), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _example_result() -> Result:
    path = str(EXAMPLE)
    config = load_config(find_config(None, [path]))
    return run_checks(ScanContext(from_paths([path]), config), today=TODAY)


def test_vendored_schema_is_the_official_one():
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    schema = json.loads(text)
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert len(text) == 112318


def test_validator_checks_formats_and_suppression_properties(validator):
    """Guard against a silently lenient validator: bad URIs, dates and the old suppression key are caught."""
    bad = {
        "$schema": "not a uri",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "nis2kube", "informationUri": "nis2kube"}},
            "invocations": [{"executionSuccessful": True, "startTimeUtc": "22.11.2026"}],
            "results": [{
                "message": {"text": "x"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a b.yaml"}}}],
                "suppressions": [{"kind": "external", "status": "accepted"}],
            }],
        }],
    }  # fmt: skip
    paths = {"/".join(map(str, e.absolute_path)) for e in validator.iter_errors(bad)}
    assert paths == {
        "$schema",
        "runs/0/tool/driver/informationUri",
        "runs/0/invocations/0/startTimeUtc",
        "runs/0/results/0/locations/0/physicalLocation/artifactLocation/uri",
        "runs/0/results/0/suppressions/0",
    }


def test_example_cluster_sarif_is_valid(validator):
    result = _example_result()
    sarif = _sarif(result)
    assert _errors(validator, sarif) == []
    run = sarif["runs"][0]
    assert run["results"]
    assert any("physicalLocation" in loc for r in run["results"] for loc in r["locations"])
    # The example's config waives a finding: it is present as a suppressed result.
    assert any(f.status is Status.WAIVED for f in result.findings)
    suppressed = [r for r in run["results"] if r.get("suppressions")]
    assert suppressed and suppressed[0]["suppressions"][0]["state"] == "accepted"


def test_helm_stdin_sarif_is_valid(validator):
    result = run_checks(ScanContext(inventory_from_yaml(HELM_STDIN, "<stdin>")), today=TODAY)
    sarif = _sarif(result)
    assert _errors(validator, sarif) == []
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"] for loc in r["locations"] if "physicalLocation" in loc
    }  # fmt: skip
    assert sarif["runs"][0]["results"]
    assert "plant/templates/frontend.yaml" in uris


def test_input_problems_and_waivers_sarif_is_valid(validator):
    config = config_from_dict({
        "approved_registries": ["registry.plant.example"],
        "waivers": [{"check": "images.digest-pinned", "justification": "pinned at the next \"release\" window",
                     "owner": "plant-ops", "expires": "2099-01-01"}],
    })  # fmt: skip
    inv = inventory_from_yaml(BROKEN, "manifests/plant historian.yaml")
    assert inv.problems
    result = run_checks(ScanContext(inv, config), today=TODAY)
    sarif = _sarif(result)
    assert _errors(validator, sarif) == []
    run = sarif["runs"][0]
    assert run["results"]
    notifications = run["invocations"][0]["toolExecutionNotifications"]
    assert notifications and any(n["level"] == "error" for n in notifications)
    assert any(n.get("locations") for n in notifications)
    assert any(r.get("suppressions") for r in run["results"])
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in run["results"] for loc in r["locations"] if "physicalLocation" in loc
    }  # fmt: skip
    assert uris == {"manifests/plant%20historian.yaml"}
