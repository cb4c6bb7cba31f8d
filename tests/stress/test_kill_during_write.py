"""SIGKILL in the middle of codexd's auth.json write leaves the old or the new file, never a torn one.

Child processes run ``write_atomic`` (the write path of every refresh) in a tight loop and are killed
at random moments. After each kill the file must parse and be exactly one of the documents written, and
the temp files that killed writers leave behind are removed by a later write once they are stale.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from codexd.auth_file import STALE_TEMP_AGE, write_atomic
from tests.stress.rig import REPO

KILLS = 200

# Imports once, then for each serial read on stdin forks a writer (printing its pid) and reaps it once the
# test has killed it, so each kill costs a fork and not a Python start-up.
ZYGOTE = """
import os, sys
from pathlib import Path
from codexd.auth_file import write_atomic
from tests.stress.test_kill_during_write import document

path = Path(sys.argv[1])
for line in sys.stdin:
    serial = int(line)
    pid = os.fork()
    if pid == 0:
        while True:
            serial += 1
            write_atomic(path, document(serial))
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(status, flush=True)
"""


def document(serial: int) -> dict[str, Any]:
    """auth.json number ``serial``: the CLI's shape, a few KiB, its size varying with the serial."""
    return {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": "eyJhbGciOiJSUzI1NiJ9." + "i" * 900 + f".{serial}",
            "access_token": "eyJhbGciOiJSUzI1NiJ9." + "a" * (1500 + serial % 97) + f".{serial}",
            "refresh_token": f"rt-{serial}",
            "account_id": "acct-1234567890abcdef",
        },
        "last_refresh": "2026-11-20T10:11:12.123456Z",
        "serial": serial,
    }


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".auth.json.*.tmp"))


@pytest.mark.slow
def test_kill_9_during_writes_never_leaves_a_torn_auth_json(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    write_atomic(path, document(0))
    rng = random.Random(7)
    last, writes, orphans = 0, 0, 0
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE, str(path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    try:
        for _ in range(KILLS):
            zygote.stdin.write(f"{last}\n")
            zygote.stdin.flush()
            writer = int(zygote.stdout.readline())
            time.sleep(rng.uniform(0.0, 0.02))
            os.kill(writer, signal.SIGKILL)
            status = int(zygote.stdout.readline())
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            doc = json.loads(path.read_bytes())  # a torn file would not parse
            assert doc == document(doc["serial"])  # and it is exactly one whole document
            assert doc["serial"] >= last  # never older than before the kill
            assert path.stat().st_mode & 0o777 == 0o600
            writes += doc["serial"] - last
            last = doc["serial"]
            orphans = len(temp_files(tmp_path))
    finally:
        zygote.stdin.close()
        zygote.wait(10)
        zygote.stdout.close()
    print(f"{KILLS} kills, {writes} complete writes, {orphans} temp files left by killed writers")
    assert writes > KILLS  # the kills landed at many points of many writes

    # A killed writer's temp file (0600, the new tokens) is removed by a later write once it is stale;
    # a fresh one may belong to a writer still at work and is left alone.
    leftovers = temp_files(tmp_path)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in leftovers)
    old = time.time() - STALE_TEMP_AGE - 1
    for leftover in leftovers:
        os.utime(leftover, (old, old))
    in_progress = tmp_path / ".auth.json.inprogress.tmp"
    in_progress.write_bytes(b"{")
    write_atomic(path, document(last + 1))
    assert temp_files(tmp_path) == [in_progress]
