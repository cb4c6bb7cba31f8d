"""Helpers for tests that run ``codexd serve`` as a real process: ports, a clean environment, blocking HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codexd.settings import KEYS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(codex_home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without any CODEXD_*/proxy/CA variable from the developer's shell."""
    drop = {var for key in KEYS for var in key.env + key.fallback_env} | {
        "CODEXD_CONFIG",
        "JOURNAL_STREAM",
        "NOTIFY_SOCKET",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("LISTEN_")}
    return {**env, "CODEX_HOME": str(codex_home), **extra}


def environ_of(pid: int) -> dict[str, str]:
    """The environment process ``pid`` was executed with (its last exec's), from /proc (Linux)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def serve_argv(config: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "codexd", "serve", "--config", str(config), *flags]


def get(url: str, headers: dict[str, str] | None = None, body: Any = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class ServeProcess:
    """A running ``codexd serve`` (a real process) whose stderr goes to a file the test can read at any time."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.url = f"http://127.0.0.1:{port}"

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"codexd exited with {self.process.returncode}:\n{self.stderr()}")
        try:
            return get(self.url + "/health")[0] == 200
        except OSError:
            return False

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then the exit status (fails the test if it takes longer than ``timeout``)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)
