"""One measurement in a fresh process: its peak memory is its own and nothing of earlier ones is left."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


def in_fresh_process(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), None)``, run in a new spawned process, or ``(None, "failed: Type: first line")``
    when it raised or the process died: a failed build or an out-of-memory child must not end the benchmark.
    `fn` must be importable by name (a module-level function)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        try:
            return pool.submit(fn, *args, **kwargs).result(), None
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [""])[0]
            return None, f"failed: {type(exc).__name__}: {first_line}"[:300]
