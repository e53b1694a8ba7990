"""Where cluster state comes from (files, a live API server) and how it is indexed."""

from __future__ import annotations

from collections.abc import Sequence

from nis2kube.heap import gc_paused
from nis2kube.inventory.files import MAX_DOCUMENT_BYTES, Problem, load_paths
from nis2kube.inventory.inventory import Inventory, SourceInfo

__all__ = ["Inventory", "Problem", "SourceInfo", "from_paths"]


def from_paths(paths: Sequence[str], *, max_document_bytes: int = MAX_DOCUMENT_BYTES) -> Inventory:
    """Build an Inventory from files, directories and '-' (stdin); problems are kept, never raised."""
    with gc_paused():
        loaded = load_paths(paths, max_document_bytes=max_document_bytes)
        inv = Inventory(SourceInfo("files", list(paths), loaded.files))
        inv.problems.extend(loaded.problems)
        inv.extend(loaded.objects)
    return inv
