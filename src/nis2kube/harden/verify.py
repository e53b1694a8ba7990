"""Prove a written bundle: re-scan the input plus what the bundle would put in the cluster.

The "after" state is read back from OUTDIR exactly as kustomize would assemble it (the top kustomization's
resources, with the Enforce overlay's patches applied: the end state of the rollout), so what is proven is
the files on disk, not the generator's memory. Node-level audit files become the scan's `--audit-policy`
and `--apiserver-manifest` evidence. A finding is "closed" when it failed before and passes after; the
bundle claims to close every failure of its areas' target checks, so any of those still failing, and any
failure that was not there before, makes the verification fail.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

import yaml

from nis2kube.apiserver import is_apiserver_pod
from nis2kube.checks.registry import ScanContext
from nis2kube.config import Config
from nis2kube.engine import Result, run_checks
from nis2kube.findings import Finding, Status
from nis2kube.harden.bundle import ENFORCE_OVERLAY, MANIFEST, Bundle
from nis2kube.harden.context import HardenContext
from nis2kube.inventory import Inventory
from nis2kube.inventory.files import load_paths


class VerifyError(ValueError):
    """The bundle on disk cannot be read back (missing or malformed kustomization)."""


@dataclass
class Verification:
    before: Result
    after: Result
    claimed: list[Finding]  # failures before, of the checks the bundle targets
    closed: list[Finding]  # of those, passing after (the after-state finding)
    still_failing: list[Finding]
    new_failures: list[Finding]
    evidenced: list[Finding] = field(default_factory=list)  # not assessable before, passing after
    netpol: object | None = None  # the reachability proof, when the netpol area was generated
    newly_visible: list[Finding] = field(default_factory=list)  # failures of checks that could not judge before

    @property
    def ok(self) -> bool:
        netpol_ok = getattr(self.netpol, "ok", True)
        return not self.still_failing and not self.new_failures and netpol_ok


def key(f: Finding) -> tuple:
    r = f.resource
    return (f.check, r.kind if r else "", r.namespace or "" if r else "", r.name if r else "", f.container or "")


def _closed_by(before: Finding, after: list[Finding]) -> Finding | None:
    """The after-state pass that closes a failure: same check and resource, no failure left there. A
    cluster-wide failure (no resource) is closed when the check fails nowhere cluster-wide and passes on some
    object (e.g. "no Falco rule covers X" becomes a pass on the ConfigMap holding the rule)."""
    same = [f for f in after if f.check == before.check
            and (before.resource is None or key(f)[1:] == key(before)[1:])]
    if any(f.status is Status.FAIL and (before.resource is not None or f.resource is None) for f in same):
        return None
    return next((f for f in same if f.status is Status.PASS), None)


def _ident(obj: dict) -> tuple:
    m = obj.get("metadata") or {}
    return (obj.get("kind"), m.get("namespace"), m.get("name"))


def _removed(ctx: HardenContext | None) -> set[tuple]:
    """Existing objects the README tells the user to delete (allow-all NetworkPolicies)."""
    if ctx is None:
        return set()
    plan = ctx.inv.cached("harden:netpol-plan", lambda: None)
    return {_ident(p) for p in plan.remove} if plan is not None else set()


def _is_apiserver_mirror(obj: dict) -> bool:
    """A kube-apiserver mirror Pod, recognised as the scan's apiserver evidence recognises it."""
    return obj.get("kind") == "Pod" and obj["metadata"].get("namespace") == "kube-system" and is_apiserver_pod(obj)


def _aliased(before: Result, input_objects: list[dict], manifest: str) -> Result:
    """Findings on the kube-apiserver mirror Pods, re-keyed to the patched manifest that replaces them, so the
    same finding before and after is recognised as the same."""
    loaded = load_paths([manifest])
    pod = next((o for o, _ in loaded.objects if o.get("kind") == "Pod"), None)
    if pod is None:
        return before
    mirrors = {o["metadata"].get("name") for o in input_objects if _is_apiserver_mirror(o)}
    target = pod["metadata"].get("name")
    findings = [
        replace(f, resource=replace(f.resource, name=target, uid=None))
        if f.resource is not None and f.resource.kind == "Pod" and f.resource.namespace == "kube-system"
        and f.resource.name in mirrors else f
        for f in before.findings
    ]
    return replace(before, findings=findings)


def read_bundle(outdir: str) -> tuple[list[dict], dict[str, str]]:
    """Objects kustomize would build from OUTDIR (Enforce overlay applied), and the node-level evidence files."""
    if not os.path.isfile(os.path.join(outdir, MANIFEST)):
        raise VerifyError(f"{outdir}: not a nis2kube bundle (no {MANIFEST})")
    objects: list[dict] = []
    _collect(outdir, outdir, objects, depth=0)
    overlay = os.path.join(outdir, *ENFORCE_OVERLAY.split("/"), "kustomization.yaml")
    if os.path.isfile(overlay):
        for patch in _load_kustomization(overlay).get("patches") or []:
            _apply_patch(objects, patch, overlay)
    evidence = {}
    for option, rel in (("audit_policy", "audit/audit-policy.yaml"),
                        ("apiserver_manifest", "audit/kube-apiserver.yaml")):
        path = os.path.join(outdir, *rel.split("/"))
        if os.path.isfile(path):
            evidence[option] = path
    return objects, evidence


def _load_kustomization(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise VerifyError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise VerifyError(f"{path}: not a Kustomization")
    return data


def _collect(root: str, directory: str, out: list[dict], depth: int) -> None:
    if depth > 4:
        raise VerifyError(f"{directory}: kustomization nesting too deep")
    kfile = os.path.join(directory, "kustomization.yaml")
    for entry in _load_kustomization(kfile).get("resources") or []:
        path = os.path.realpath(os.path.join(directory, str(entry)))
        if not path.startswith(os.path.realpath(root)):
            raise VerifyError(f"{kfile}: resource {entry!r} is outside the bundle")
        if os.path.isdir(path):
            _collect(root, path, out, depth + 1)
            continue
        loaded = load_paths([path])
        errors = [p for p in loaded.problems if p.level == "error"]
        if errors:
            raise VerifyError(str(errors[0]))
        out.extend(obj for obj, _ in loaded.objects)


def _apply_patch(objects: list[dict], patch: dict, where: str) -> None:
    target = patch.get("target") or {}
    ops = yaml.safe_load(patch.get("patch") or "[]") or []
    matched = False
    for obj in objects:
        group = obj.get("apiVersion", "").rpartition("/")[0]
        if obj.get("kind") == target.get("kind") and obj["metadata"].get("name") == target.get("name") \
                and group == (target.get("group") or ""):
            matched = True
            for op in ops:
                _json_patch(obj, op, where)
    if not matched:
        raise VerifyError(f"{where}: patch target {target.get('kind')}/{target.get('name')} is not in the bundle")


def _json_patch(obj: dict, op: dict, where: str) -> None:
    """The RFC 6902 `add`/`replace` operations on object members (all the overlay uses)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in str(op.get("path", "")).split("/")[1:]]
    node = obj
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            raise VerifyError(f"{where}: path {op.get('path')} does not exist")
    if op.get("op") not in ("add", "replace") or not isinstance(node, dict) or not parts:
        raise VerifyError(f"{where}: unsupported patch operation {op!r}")
    if op["op"] == "replace" and parts[-1] not in node:
        raise VerifyError(f"{where}: replace of missing {op.get('path')}")
    node[parts[-1]] = copy.deepcopy(op.get("value"))


def _scan(objects: list[dict], config: Config, inputs: dict) -> Result:
    inv = Inventory()
    for obj in objects:
        inv.add(copy.deepcopy(obj))
    return run_checks(ScanContext(inv, config, inputs))


def verify(input_objects: list[dict], outdir: str, bundle: Bundle, config: Config | None = None,
           inputs: dict | None = None, before: Result | None = None, ctx: HardenContext | None = None
           ) -> Verification:
    """Scan input, then input + bundle; compare. `bundle` supplies the target checks of each area; `ctx`
    (the generation context) enables the reachability proof of the netpol area."""
    config = config or Config()
    inputs = dict(inputs or {})
    added, evidence = read_bundle(outdir)
    before = before or _scan(input_objects, config, inputs)
    removed = _removed(ctx)
    kept = [o for o in input_objects if _ident(o) not in removed]
    if "apiserver_manifest" in evidence:  # the patched static-pod manifest replaces the API server's mirror Pods
        kept = [o for o in kept if not _is_apiserver_mirror(o)]
    after_config = config
    flows = os.path.join(outdir, "netpol", "flows.yaml")
    if os.path.isfile(flows):  # the declared flows plus the API-server egress the bundle declares
        after_config = replace(config, raw={**config.raw, "flows": os.path.abspath(flows)})
    after = _scan(kept + added, after_config, {**inputs, **evidence})
    if "apiserver_manifest" in evidence:
        before = _aliased(before, input_objects, evidence["apiserver_manifest"])
    was = {key(f): f for f in before.findings}
    now = {key(f): f for f in after.findings}
    claimed = [f for area in bundle.areas for f in before.findings
               if f.status is Status.FAIL and (area.claims_system or not f.system)
               and any(fnmatchcase(f.check, g) for g in area.targets)]
    closed, still = [], []
    for f in claimed:
        proof = _closed_by(f, after.findings)
        if proof is None:
            still.append(now.get(key(f), f))
        else:
            closed.append(proof)
    # A check that could not judge the input at all (e.g. no flows.yaml before) is not regressed by the bundle
    # that lets it judge: its failures are "newly visible", reported apart.
    unjudged = {f.check for f in before.findings if f.status is Status.NOT_ASSESSED and f.resource is None}
    failing = [f for f in after.findings if f.status is Status.FAIL
               and (key(f) not in was or was[key(f)].status is not Status.FAIL)]
    new = [f for f in failing if f.check not in unjudged]
    visible = [f for f in failing if f.check in unjudged]
    evidenced = [f for f in after.findings if f.status is Status.PASS and key(f) in was
                 and was[key(f)].status is Status.NOT_ASSESSED]
    proof = None
    if ctx is not None and bundle.area("netpol") is not None:
        from nis2kube.harden.netpol import prove

        proof = prove(input_objects, added, ctx)
    return Verification(before, after, claimed, closed, still, new, evidenced, proof, visible)
