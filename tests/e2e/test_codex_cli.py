"""The real Codex CLI, offline, against codexd and the fake backend: it reads the model catalog through codexd,
its zstd request is decoded, normalised (the model alias applied) and answered, and it prints the answer. It
sees the backend's rate limits, fetches the catalog again when the backend's changes, and stops at a usage
limit."""

from __future__ import annotations

import contextlib
import json
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
from tests.fakes.scripts import Builder, Script, usage_limit_error
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


def run_codex(stack: Stack, home: Path, proxy: str, prompt: str, *config: str) -> subprocess.CompletedProcess[str]:
    """``codex exec`` as a user runs it, with its own ChatGPT login (it sends zstd only then; codexd uses its
    own) and every call it makes past codexd sent to the refusing proxy."""
    cli_home = home / ".codex"
    write_login(cli_home)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(cli_home),
        **{name: proxy for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy")},
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    command = [str(CODEX), "exec", "--skip-git-repo-check", "-m", "codex-e2e-model"]
    command += ["-c", f'openai_base_url="{stack.url}/v1"']
    for setting in config:
        command += ["-c", setting]
    command.append(prompt)
    return subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, timeout=120)


def catalog_fetches(stack: Stack) -> list[float]:
    """When the backend was asked for its catalog."""
    return [r.at for r in stack.backend.state.requests if r.path.endswith("/models")]


def rate_limits_seen(home: Path) -> list[Any]:
    """The rate limits the CLI recorded in its session log, one entry per token count it logged."""
    seen = []
    for log in (home / ".codex" / "sessions").rglob("rollout-*.jsonl"):
        for line in log.read_text().splitlines():
            payload = json.loads(line).get("payload", {})
            if payload.get("type") == "token_count":
                seen.append(payload.get("rate_limits"))
    return seen


def test_the_codex_cli_answers_through_codexd(aliased, trap, tmp_path, monkeypatch):
    codings: list[str] = []
    decode = base.decode

    def seen(body: bytes, coding: str, limit: int) -> Any:
        codings.append(coding)
        return decode(body, coding, limit)

    monkeypatch.setattr(base, "decode", seen)
    aliased.backend.state.default = Script.events(Builder().start().text(ANSWER).completed())
    proxy, asked = trap
    run = run_codex(aliased, tmp_path / "home", proxy, "Say what you heard.")
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
    # The answer's x-models-etag matched the catalog's ETag: no fetch after the turn.
    assert all(at < post.at for at in catalog_fetches(aliased))
    # The backend's rate-limit headers reached it (RATE_LIMIT_HEADERS: 9 % of 5 h, 31 % of the week).
    limits = rate_limits_seen(tmp_path / "home")
    assert limits and limits[-1]["primary"]["used_percent"] == 9.0
    assert limits[-1]["secondary"] == {"used_percent": 31.0, "window_minutes": 10079, "resets_at": 1900100000}


def test_a_new_backend_catalog_reaches_the_cli_at_its_next_answer(aliased, trap, tmp_path):
    """The backend's answers carry its catalog's tag: once it changes, the CLI fetches the catalog again at once
    rather than within its five-minute cache."""
    state = aliased.backend.state

    def new_catalog_then_answer(body: Any) -> Script:
        state.models = {"models": state.models["models"][:2]}
        return Script.events(Builder().start().text(ANSWER).completed())

    state.chooser = new_catalog_then_answer
    run = run_codex(aliased, tmp_path / "home", trap[0], "Say what you heard.")
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-2000:]
    (post,) = state.posts
    assert [at for at in catalog_fetches(aliased) if at > post.at], "the CLI kept its old catalog"


def test_the_codex_cli_stops_at_a_usage_limit(aliased, trap, tmp_path):
    """Measured before codexd kept the backend's error type: the CLI took the limit for a passing one and
    said "retrying sampling request (1/5 in 13871.99s)", then waited out the 3 h 51 min."""
    aliased.backend.state.default = usage_limit_error(resets_in=13872)
    run = run_codex(aliased, tmp_path / "home", trap[0], "Say what you heard.")
    assert run.returncode != 0
    assert "hit your usage limit" in run.stdout + run.stderr
    assert len(aliased.backend.state.posts) == 1
    limits = rate_limits_seen(tmp_path / "home")
    assert limits and limits[-1]["primary"]["used_percent"] == 100.0


def test_the_codex_cli_compacts_its_context_through_codexd(aliased, trap, tmp_path):
    """Past its token limit the CLI compacts (compaction v2): a turn whose input ends in a
    ``compaction_trigger`` item, answered with a ``compaction`` item, which later turns carry instead of the
    history. codexd must pass both on as they are."""
    state = aliased.backend.state
    sealed = "gAAAA-compacted-history-7731"

    def model(body: Any) -> Script:
        kinds = [item.get("type") for item in body["input"]]
        answer = Builder().start()
        if kinds[-1] == "compaction_trigger":
            answer._done(answer._next(), {"type": "compaction", "id": "cmp_1", "encrypted_content": sealed})
            return Script.events(answer.completed())
        if len(state.posts) == 1:  # the first turn runs a command, so that the turn goes on past the limit
            return Script.events(answer.tool_calls([("exec_command", '{"cmd":"echo hi"}')]).completed())
        return Script.events(answer.text(ANSWER).completed())

    state.chooser = model
    run = run_codex(aliased, tmp_path / "home", trap[0], "Run echo hi.", "model_auto_compact_token_limit=1000")
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-2000:]
    assert ANSWER in run.stdout
    inputs = [post.body["input"] for post in state.posts]
    assert [items[-1]["type"] for items in inputs] == ["message", "compaction_trigger", "compaction"]
    assert inputs[1][-1] == {"type": "compaction_trigger"}
    assert inputs[2][-1] == {"type": "compaction", "encrypted_content": sealed}  # the sealed history, unchanged
