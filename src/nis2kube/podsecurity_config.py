"""The Pod Security admission plugin's cluster defaults, from the API server's AdmissionConfiguration file.

A namespace without a `pod-security.kubernetes.io/<mode>` label gets the level in the PodSecurity plugin's
`defaults` (privileged when there is no such file). Hardened distributions set them: RKE2's CIS profile
enforces restricted everywhere but a few exempt namespaces, so labels alone understate coverage. The file is
given with `--admission-config`; the PodSecurity configuration is inline or in a file its `path` names
(kube-apiserver resolves a relative path against the AdmissionConfiguration's directory). Both are hostile
input: size-bounded, read with Kubernetes' YAML rules, and a `path` is looked up only beside the given file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml

from nis2kube.checks.registry import InputError, read_input_text
from nis2kube.inventory.yamlload import load_document

MAX_BYTES = 1024 * 1024
LEVELS = ("privileged", "baseline", "restricted")
MODES = ("enforce", "audit", "warn")
ADMISSION_VERSIONS = ("apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1alpha1", "apiserver.k8s.io/v1alpha1")
PSA_VERSIONS = tuple(f"pod-security.admission.config.k8s.io/{v}" for v in ("v1", "v1beta1", "v1alpha1"))


@dataclass(frozen=True)
class PodSecurityDefaults:
    """The levels a namespace without PSA labels gets, and who is exempt (from every mode)."""

    source: str  # where they were read
    levels: dict[str, str]  # mode -> level
    namespaces: frozenset[str] = frozenset()
    usernames: tuple[str, ...] = ()
    runtime_classes: tuple[str, ...] = ()


def _read(path: str, option: str) -> object:
    text = read_input_text(path, option, MAX_BYTES, "an admission configuration")
    try:
        return load_document(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise InputError(f"{option} {path}: invalid YAML: {str(exc).splitlines()[0]}") from None


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where} must be a list of strings (kube-apiserver refuses the file)")
    return tuple(value)


def parse_podsecurity(doc: object, where: str) -> PodSecurityDefaults:
    """A PodSecurityConfiguration; an invalid level is an error, as kube-apiserver refuses to start with it."""
    if not isinstance(doc, dict) or doc.get("kind") != "PodSecurityConfiguration" \
            or doc.get("apiVersion") not in PSA_VERSIONS:
        raise InputError(f"{where}: not a PodSecurityConfiguration (apiVersion {PSA_VERSIONS[0]})")
    defaults = doc.get("defaults") if doc.get("defaults") is not None else {}
    exemptions = doc.get("exemptions") if doc.get("exemptions") is not None else {}
    if not isinstance(defaults, dict) or not isinstance(exemptions, dict):
        raise InputError(f"{where}: defaults and exemptions must be mappings")
    levels = {}
    for mode in MODES:
        level = defaults.get(mode)
        if level in (None, ""):
            level = "privileged"
        if level not in LEVELS:
            raise InputError(f"{where}: defaults.{mode}: {level!r} is not one of {', '.join(LEVELS)} "
                             "(kube-apiserver refuses to start)")
        levels[mode] = level
    return PodSecurityDefaults(where, levels,
                               frozenset(_strings(exemptions.get("namespaces"), f"{where}: exemptions.namespaces")),
                               _strings(exemptions.get("usernames"), f"{where}: exemptions.usernames"),
                               _strings(exemptions.get("runtimeClasses"), f"{where}: exemptions.runtimeClasses"))


def load_admission_config(path: str) -> PodSecurityDefaults:
    """The PodSecurity defaults of an AdmissionConfiguration file (or of a bare PodSecurityConfiguration file);
    without a PodSecurity entry the plugin runs with privileged everywhere."""
    option = "--admission-config"
    doc = _read(path, option)
    if isinstance(doc, dict) and doc.get("kind") == "PodSecurityConfiguration":
        return parse_podsecurity(doc, f"{option} {path}")
    if not isinstance(doc, dict) or doc.get("kind") != "AdmissionConfiguration" \
            or doc.get("apiVersion") not in ADMISSION_VERSIONS:
        raise InputError(f"{option} {path}: not an AdmissionConfiguration (apiVersion {ADMISSION_VERSIONS[0]}) "
                         "or PodSecurityConfiguration")
    plugins = doc.get("plugins") if doc.get("plugins") is not None else []
    if not isinstance(plugins, list):
        raise InputError(f"{option} {path}: plugins must be a list")
    for i, plugin in enumerate(plugins):
        if not isinstance(plugin, dict) or plugin.get("name") != "PodSecurity":
            continue
        where = f"{option} {path}: plugins[{i}]"
        if plugin.get("configuration") is not None:
            return parse_podsecurity(plugin["configuration"], where + ".configuration")
        named = plugin.get("path")
        if not isinstance(named, str) or not named:
            raise InputError(f"{where}: the PodSecurity entry has neither configuration nor path")
        beside = os.path.join(os.path.dirname(os.path.abspath(path)), named if not os.path.isabs(named)
                              else os.path.basename(named))
        if not os.path.isfile(beside):
            raise InputError(f"{where}: its configuration is in {named}; put a copy at {beside}")
        return parse_podsecurity(_read(beside, option), f"{option} {beside}")
    return PodSecurityDefaults(f"{option} {path} (no PodSecurity entry)", dict.fromkeys(MODES, "privileged"))
