"""Keeping codexd's memory small between bursts: the allocator's free memory back to the system when
idle, and full garbage collections that skip what lives as long as the process.

After a burst of streams the C allocator keeps what was freed (TLS and curl buffers, Python's own
arenas) for reuse, so RSS stays at the burst's peak for as long as the daemon lives. A full garbage
collection frees what cycles and free lists hold, then glibc's ``malloc_trim`` hands the memory back;
elsewhere (macOS, musl) only the collection happens.

On Linux with glibc, ``codexd serve`` puts Python's objects in glibc's heap too (``codexd.allocator``), so the
trim reaches them page by page. Elsewhere, or when ``PYTHONMALLOC`` chose otherwise, they live in Python's
1 MiB arenas, and an arena goes back only once every block in it is free, so a few small objects made during
a burst that outlive it keep whole arenas resident. Two interpreter caches hold such objects and are emptied
first (with either allocator: it costs nothing): CPython's type attribute cache (it keeps the name of each
attribute looked up, and Tornado looks the handler method up by a new string per request) and asyncio's free
list of future iterators.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_loaded = False


def _malloc_trim() -> Callable[[int], int] | None:
    global _trim, _loaded
    if not _loaded:
        _loaded = True
        import ctypes  # here, not at import: start-up time counts

        try:
            func = ctypes.CDLL(None).malloc_trim  # the process's own symbols: present when linked to glibc
        except (OSError, AttributeError):
            return None
        func.argtypes = [ctypes.c_size_t]
        func.restype = ctypes.c_int
        _trim = func
    return _trim


def release_free_memory() -> bool:
    """Collect garbage, then return the C allocator's free memory to the system; False where the allocator
    cannot. The full collection also empties Python's free lists (tuples, dicts, floats...), whose blocks
    would otherwise keep some of Python's arenas: 8 MB less RSS two minutes after 1,000 streams."""
    _empty_interpreter_caches()
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


FUTURE_ITER_FREE_LIST = 255  # asyncio's C future iterators kept for reuse (CPython 3.11's FI_FREELIST_MAXLEN)


def _empty_interpreter_caches() -> None:
    """Let go of the small objects that two interpreter caches keep from the last burst, so that the arenas
    they sit in can be freed: two minutes after 1,000 streams, 7 MB less RSS when only the memory phases of the
    benchmark ran, 2 MB less in full benchmark runs."""
    # One entry per slot of 4096, each holding its attribute name: Tornado's per-request ``method.lower()``
    # and email.utils' "dst" leave hundreds of distinct copies of the same few names. (3.13 renamed it.)
    clear = getattr(sys, "_clear_internal_caches", None) or sys._clear_type_cache
    clear()
    try:
        future = asyncio.get_running_loop().create_future()
    except RuntimeError:
        return  # no loop, so no iterators were made
    # The free list is a stack: making twice its length of iterators takes all the old ones off it, freeing
    # the newest half first refills it with new ones, so the old ones (made during the burst) are freed.
    iterators = [future.__await__() for _ in range(2 * FUTURE_ITER_FREE_LIST)]
    del iterators[FUTURE_ITER_FREE_LIST:]
    del iterators
    future.cancel()


def tune_gc() -> None:
    """Call once start-up is done: the objects that live as long as the process (modules, settings, routes)
    leave the collector's view, so full collections during streaming walk only what requests allocated."""
    gc.collect()
    gc.freeze()
