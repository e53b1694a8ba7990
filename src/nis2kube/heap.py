"""Cyclic-GC settings for batch work on big heaps.

Parsed Kubernetes objects and findings are acyclic trees of dicts, lists and strings: reference counting
frees them, and the cyclic collector only rescans them, again each time the heap has grown. At 100k objects
that rescanning was half of a scan's run time. Loading pauses the collector; batch commands then freeze what
exists (it is never garbage before the process ends) and collect rarely.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block; the previous state is restored after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def settle() -> None:
    """For batch commands: leave everything allocated so far out of future collections, and collect rarely.
    Not for long-running processes (`nis2kube serve`), whose heap does turn over."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
