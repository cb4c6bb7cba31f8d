"""``codexd logs`` on macOS: print the last lines of the daemon's log file and optionally follow it.

Following survives rotation (``RotatingFileHandler`` renames the file and starts a new one): when the inode
behind the path changes, the new file is read from its start.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path


def last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of ``path`` (each with its newline)."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        return list(deque(fh, maxlen=count)) if count > 0 else []


def tail(
    path: Path,
    count: int,
    write: Callable[[str], object],
    follow: bool = False,
    poll: float = 0.5,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Write the last ``count`` lines, then (with ``follow``) new lines as they are appended, until stopped."""
    for line in last_lines(path, count):
        write(line)
    if not follow:
        return
    fh = path.open("r", encoding="utf-8", errors="replace")
    fh.seek(0, os.SEEK_END)
    inode = os.fstat(fh.fileno()).st_ino
    try:
        while not should_stop():
            line = fh.readline()
            if line:
                write(line)
                continue
            try:
                rotated = os.stat(path).st_ino != inode
            except FileNotFoundError:
                rotated = False  # between the rename and the new file: keep reading the old one
            if rotated:
                fh.close()
                fh = path.open("r", encoding="utf-8", errors="replace")
                inode = os.fstat(fh.fileno()).st_ino
                continue
            time.sleep(poll)
    finally:
        fh.close()
