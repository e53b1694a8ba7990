"""Renderers for the reachability matrix: text table, JSON, CSV, Graphviz DOT, and SVG/PNG through `dot`.

Renderers return text or bytes; printing belongs to the CLI.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import orjson

from nis2kube.netpol.engine import Cell, Matrix

FORMATS = ("table", "json", "csv", "dot", "svg", "png")
LEGEND = ". allowed   X denied   H hostNetwork (not governed by NetworkPolicy)   ? not modelled"
DOT_TIMEOUT_S = 60


class RenderError(RuntimeError):
    """The picture cannot be made (Graphviz missing or failing)."""


def _group_label(matrix: Matrix, namespace: str) -> str:
    zone = matrix.model.ns_labels(namespace).get("zone")
    return f"{namespace} (zone: {zone})" if zone else namespace


def _cells(matrix: Matrix):
    for s in matrix.endpoints:
        for d in matrix.endpoints:
            if s != d:
                yield s, d, matrix.cell(s, d)


def render_table(matrix: Matrix, show_ports: bool = True) -> str:
    """A symbol grid (rows: from, columns: to) grouped by namespace/zone, then the allowed flows."""
    model, eps = matrix.model, matrix.endpoints
    if not eps:
        return "no workloads in the input (or in the selected namespaces)\n"
    width = max(len(model.endpoints[i].id) for i in eps) + 6
    out = [f"Reachability  rows: from  columns: to  ({LEGEND})", ""]
    out.append(" " * width + " ".join(f"{n % 100:>2}" for n in range(1, len(eps) + 1)) + "  ext")
    current = None
    for n, s in enumerate(eps, start=1):
        ep = model.endpoints[s]
        if ep.namespace != current:
            current = ep.namespace
            out.append(_group_label(matrix, current))
        row = " ".join(" -" if s == d else f" {matrix.cell(s, d).symbol}" for d in eps)
        out.append(f"{n:>3} {ep.id}".ljust(width) + row + f"   {matrix.external(s, 'egress')[0].symbol}")
    out.append("external".ljust(width) + " ".join(f" {matrix.external(d, 'ingress')[0].symbol}" for d in eps))
    if show_ports:
        out += ["", "Allowed flows (ports):"]
        for s, d, cell in _cells(matrix):
            if cell.status != "denied":
                out.append(f"  {model.endpoints[s].id} -> {model.endpoints[d].id}: {_cell_text(cell)}")
        for s in eps:
            for direction in ("egress", "ingress"):
                cell, pieces = matrix.external(s, direction)
                if cell.status == "denied":
                    continue
                where = "; ".join(f"{ips.describe()} on {ports.describe()}" for ips, ports in pieces)
                arrow = f"{model.endpoints[s].id} -> external" if direction == "egress" else \
                    f"external -> {model.endpoints[s].id}"
                out.append(f"  {arrow}: {where or _cell_text(cell)}")
    return "\n".join(out) + "\n"


def _cell_text(cell: Cell) -> str:
    if cell.status == "allowed":
        return cell.ports.describe()
    return cell.note


def to_dict(matrix: Matrix) -> dict:
    model = matrix.model
    endpoints = [{"id": model.endpoints[i].id, "kind": model.endpoints[i].kind,
                  "namespace": model.endpoints[i].namespace, "name": model.endpoints[i].name,
                  "zone": model.ns_labels(model.endpoints[i].namespace).get("zone"),
                  "hostNetwork": model.endpoints[i].host_network} for i in matrix.endpoints]
    cells = [{"from": model.endpoints[s].id, "to": model.endpoints[d].id, "status": c.status,
              "ports": c.ports.to_list(), **({"note": c.note} if c.note else {})}
             for s, d, c in _cells(matrix) if c.status != "denied"]
    external = []
    for s in matrix.endpoints:
        for direction in ("egress", "ingress"):
            cell, pieces = matrix.external(s, direction)
            if cell.status != "denied":
                external.append({"workload": model.endpoints[s].id, "direction": direction, "status": cell.status,
                                 "allowed": [{"addresses": ips.cidrs(), "ports": p.to_list()} for ips, p in pieces]})
    return {"schema_version": 1, "legend": "cells list every allowed, hostNetwork or not-modelled pair; "
            "pairs not listed are denied", "endpoints": endpoints, "cells": cells, "external": external,
            "problems": model.problems}


def render_json(matrix: Matrix) -> str:
    return orjson.dumps(to_dict(matrix), option=orjson.OPT_INDENT_2).decode()


def render_csv(matrix: Matrix) -> str:
    """One line per ordered pair (denied ones too), then external egress/ingress per workload."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["from", "to", "status", "ports", "note"])
    model = matrix.model
    for s, d, cell in _cells(matrix):
        writer.writerow([model.endpoints[s].id, model.endpoints[d].id, cell.status, " ".join(cell.ports.to_list()),
                         cell.note])
    for s in matrix.endpoints:
        for direction in ("egress", "ingress"):
            cell, pieces = matrix.external(s, direction)
            a, b = (model.endpoints[s].id, "external") if direction == "egress" else ("external", model.endpoints[s].id)
            detail = "; ".join(f"{ips.describe()} on {p.describe()}" for ips, p in pieces)
            writer.writerow([a, b, cell.status, " ".join(cell.ports.to_list()), cell.note or detail])
    return buf.getvalue()


def _q(text: str) -> str:
    """A DOT double-quoted string; backslashes and quotes escaped, newlines dropped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def render_dot(matrix: Matrix) -> str:
    """Namespaces as clusters, allowed flows as edges labelled with their ports."""
    model = matrix.model
    lines = ["digraph reachability {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=9];', '  "external" [shape=ellipse, label="external"];']
    by_ns: dict[str, list[int]] = {}
    for i in matrix.endpoints:
        by_ns.setdefault(model.endpoints[i].namespace, []).append(i)
    for n, (ns, members) in enumerate(sorted(by_ns.items())):
        lines.append(f"  subgraph cluster_{n} {{")
        lines.append(f"    label={_q(_group_label(matrix, ns))};")
        for i in members:
            ep = model.endpoints[i]
            extra = ", style=dashed" if ep.host_network else ""
            lines.append(f"    {_q(ep.id)} [label={_q(ep.name)}{extra}];")
        lines.append("  }")
    for s, d, cell in _cells(matrix):
        if cell.status == "allowed":
            lines.append(f"  {_q(model.endpoints[s].id)} -> {_q(model.endpoints[d].id)} "
                         f"[label={_q(cell.ports.describe())}];")
        elif cell.status == "not-modelled":
            lines.append(f"  {_q(model.endpoints[s].id)} -> {_q(model.endpoints[d].id)} "
                         f"[label={_q('not modelled')}, style=dotted];")
    for s in matrix.endpoints:
        for direction in ("egress", "ingress"):
            cell, _ = matrix.external(s, direction)
            if cell.status in ("allowed", "not-modelled"):
                a, b = (model.endpoints[s].id, "external") if direction == "egress" else \
                    ("external", model.endpoints[s].id)
                lines.append(f"  {_q(a)} -> {_q(b)} [label={_q(cell.ports.describe())}, color=red];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_image(matrix: Matrix, fmt: str) -> bytes:
    """SVG or PNG through Graphviz's `dot` (must be installed)."""
    dot = shutil.which("dot")
    if dot is None:
        raise RenderError(f"-o {fmt} needs Graphviz (`dot`), which is not installed; use -o dot and render it "
                          "elsewhere, or install graphviz")
    try:
        done = subprocess.run([dot, f"-T{fmt}"], input=render_dot(matrix).encode(), capture_output=True,
                              timeout=DOT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"Graphviz took longer than {DOT_TIMEOUT_S} s; use -o dot or filter with -n") from None
    if done.returncode != 0:
        raise RenderError(f"Graphviz failed: {done.stderr.decode(errors='replace').strip()[:500]}")
    return done.stdout
