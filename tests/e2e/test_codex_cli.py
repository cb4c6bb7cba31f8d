"""The real Codex CLI, offline, against codexd and the fake backend: it reads the model catalog through codexd,
its zstd request is decoded, normalised (the model alias applied) and answered, and it prints the answer."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codexd.server import base
from tests.fakes.scripts import Builder, Script
from tests.harness import Stack, threaded_stack, write_login

CODEX = os.environ.get("CODEXD_CODEX_BIN") or shutil.which("codex")
pytestmark = pytest.mark.skipif(
    CODEX is None, reason="the Codex CLI is not installed (npm install @openai/codex); .ci/run installs it"
)
ANSWER = "Codex heard codexd: ibis-copper-2291."


@pytest.fixture
def trap() -> Iterator[tuple[str, list[bytes]]]:
    """A proxy on 127.0.0.1 that refuses everything: the CLI's own calls to chatgpt.com (plugins, analytics)
    end there instead of leaving the machine. Yields its URL and the first line of each request it got."""
    server = socket.create_server(("127.0.0.1", 0))
    asked: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    asked.append(conn.recv(4096).split(b"\r\n")[0])

    thread = threading.Thread(target=serve, name="proxy-trap", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", asked
    server.close()
    thread.join(5)


@pytest.fixture
def aliased(codex_home: Path) -> Iterator[Stack]:
    """codexd with an alias for the model the CLI is told to use."""
    with threaded_stack(codex_home, aliases={"codex-e2e-model": "gpt-5.5"}) as stack:
        yield stack


def test_the_codex_cli_answers_through_codexd(aliased, trap, tmp_path, monkeypatch):
    codings: list[str] = []
    decode = base.decode

    def seen(body: bytes, coding: str, limit: int) -> Any:
        codings.append(coding)
        return decode(body, coding, limit)

    monkeypatch.setattr(base, "decode", seen)
    aliased.backend.state.default = Script.events(Builder().start().text(ANSWER).completed())
    home = tmp_path / "home"
    cli_home = home / ".codex"
    write_login(cli_home)  # the CLI wants a ChatGPT login to send zstd; codexd uses its own
    proxy, asked = trap
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(cli_home),
        **{name: proxy for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy")},
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    run = subprocess.run(
        [
            str(CODEX),
            "exec",
            "--skip-git-repo-check",
            "-m",
            "codex-e2e-model",
            "-c",
            f'openai_base_url="{aliased.url}/v1"',
            "Say what you heard.",
        ],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-2000:]
    assert ANSWER in run.stdout
    # Its model catalog came through codexd, asked with its own version, and it could read it.
    version = subprocess.run([str(CODEX), "--version"], capture_output=True, text=True, timeout=30).stdout.split()[-1]
    catalog_calls = [r.query for r in aliased.backend.state.requests if r.path.endswith("/models")]
    assert f"client_version={version}" in catalog_calls
    assert "failed to refresh available models" not in run.stderr
    assert "zstd" in codings  # the CLI compressed its request, and codexd read it
    (post,) = aliased.backend.state.posts
    assert post.body["model"] == "gpt-5.5"  # normalised: forwarded bytes would have kept the CLI's name
    assert post.body["store"] is False and post.body["stream"] is True
    assert post.body["input"][-1]["content"][0]["text"] == "Say what you heard."
    assert post.headers["Content-Encoding"] == "zstd"  # and codexd compressed it again for the backend
    assert all(b"127.0.0.1" not in line for line in asked)
