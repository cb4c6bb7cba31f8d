"""The C allocator ``codexd serve`` runs on: glibc's ``malloc`` for Python's objects too, where that pays.

Python's own small-object allocator takes memory in 1 MiB arenas and gives an arena back only once every
object in it is free. A burst of streams spreads its objects over many arenas, and the few that outlive it
(the latest metric values, timers not yet due) keep them resident: two minutes after 1,000 concurrent
streams, 62-70 MB instead of 48-50 (``python -m bench``), for 2-8% more CPU per request. With
``PYTHONMALLOC=malloc`` those objects live in glibc's heap, whose free pages ``malloc_trim`` hands back one by
one (see ``codexd.memory``). The allocator is chosen when the interpreter starts, so ``serve`` executes itself
again, once, with the variable set: same process id, same command line, same open files (systemd's sockets
among them), nothing done yet that would be lost.

Only on Linux with glibc, where it was measured, and not on a free-threaded Python (it accepts only mimalloc,
whose heaps its garbage collector walks); a ``PYTHONMALLOC`` already set, to any value, is kept.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

VARIABLE = "PYTHONMALLOC"
SYSTEM = "malloc"


def has_glibc() -> bool:
    """Whether this process runs on glibc (musl and macOS have no ``malloc_trim``)."""
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False


def free_threaded() -> bool:
    """Whether this interpreter is a free-threaded build (3.13+), which refuses ``PYTHONMALLOC=malloc``."""
    import sysconfig  # here: only ``serve`` asks, once

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def restart_argv(
    *,
    platform: str,
    glibc: bool,
    gil_free: bool,
    executable: str,
    orig_argv: Sequence[str],
    script: str,
) -> list[str] | None:
    """The command line that starts this program again on the system allocator, or None to stay as it is:
    not Linux with glibc, a free-threaded interpreter, no interpreter path, or a program that cannot be read
    again (``-c`` code, standard input: ``script`` is not a file)."""
    if platform != "linux" or not glibc or gil_free:
        return None
    if not executable or len(orig_argv) < 2 or not os.path.isfile(script):
        return None
    return [executable, *orig_argv[1:]]


def use_system_allocator() -> None:
    """Execute this program again with ``PYTHONMALLOC=malloc`` where :func:`restart_argv` says so and the
    variable is not set yet (so never twice, and a user's choice stands); returns only when it does not (or when
    the exec fails: codexd then runs on Python's allocator)."""
    if VARIABLE in os.environ:  # chosen already (by the user, or by this function before the exec)
        return
    if getattr(sys, "frozen", False) or sys.flags.ignore_environment:  # -E and -I ignore PYTHONMALLOC too
        return
    argv = restart_argv(
        platform=sys.platform,
        glibc=has_glibc(),
        gil_free=free_threaded(),
        executable=sys.executable,
        orig_argv=sys.orig_argv,
        script=sys.argv[0] if sys.argv else "",
    )
    if argv is None:
        return
    try:
        os.execve(argv[0], argv, {**os.environ, VARIABLE: SYSTEM})
    except OSError:
        return
