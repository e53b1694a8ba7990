"""Cyclic-GC settings for batch work on big heaps.

Parsed Kubernetes objects and findings are acyclic trees of dicts, lists and strings: reference counting
frees them, and the cyclic collector only rescans them, again each time the heap has grown. At 100k objects
that rescanning was half of a scan's run time. Loading pauses the collector and freezes what it loaded; batch
commands then freeze what exists (it is never garbage before the process ends) and stop collecting.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_settled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block; the previous state is restored after it.

    What exists at the end of the block is frozen first (moved out of the collector's generations): all of it
    would otherwise sit in the youngest generation, and the first collection after the block would walk every
    object just loaded, to find no cycle in parsed documents - half a second after loading 100k objects.
    Frozen objects are still freed by reference counting when dropped; cyclic garbage that happens to exist at
    that moment stays until gc.unfreeze(), which batch commands never miss and a long-running caller that
    loads often should weigh (nothing in nis2kube serve loads)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def settle() -> None:
    """For batch commands: leave everything allocated so far out of future collections, and collect no more.

    What a batch command builds after loading (findings, reports, matrices) is kept until it exits, and the
    little cyclic garbage it makes dies with the process: collecting it cost 7% of a 100k-object scan's checks.
    Not for long-running processes (`nis2kube serve`), whose heap does turn over."""
    global _settled
    _settled = True
    gc.freeze()
    gc.disable()


def exit_process(code: object) -> None:
    """End the command with `code` (a SystemExit code). After settle() it skips the interpreter's teardown:
    freeing a 100k-object inventory and its findings one object at a time takes a third of a second, and a
    batch command has written and closed everything by then (only stdout/stderr are left to flush)."""
    if not _settled or not (code is None or isinstance(code, int)):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (`| head`) must not turn into a traceback now
            stream.flush()
    os._exit(code or 0)
