"""serve lifts its soft open-files limit so that hundreds of streams (two sockets each) fit."""

from __future__ import annotations

import resource
import subprocess
import sys


def test_soft_limit_is_raised_towards_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, soft)

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    code = (
        "import resource; from codexd.cli.serve_cmd import raise_open_files_limit as r; "
        "print(r(4096), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], preexec_fn=lower, capture_output=True, text=True, check=True)
    returned, now = map(int, out.stdout.split())
    expected = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    assert returned == now == expected > low
