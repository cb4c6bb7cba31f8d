"""``codexd serve`` as a real process: refusals (exit 78), serving, SIGTERM, SIGHUP reload, and no secret in its log.

Every server binds 127.0.0.1; the upstream is a stub on loopback, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from codexd.allocator import has_glibc
from tests.fakes.tokens import auth_document, write_auth
from tests.processes import ServeProcess, clean_env, environ_of, free_port, get, serve_argv, wait_for

START_TIMEOUT = 10.0


@contextmanager
def daemon(tmp_path: Path, config: Path, *flags: str, env: dict[str, str]) -> Iterator[ServeProcess]:
    port = free_port()
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            serve_argv(config, "--port", str(port), *flags), stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
    running = ServeProcess(process, port, log)
    try:
        wait_for(running.healthy, START_TIMEOUT, "GET /health to answer 200")
        yield running
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)


# --- refusals: exit 78, one message, no traceback ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "flags", "fragments"),
    [
        ("[server]\nport = \n", [], ["{config}", "TOML syntax error", "line 2"]),
        ("[server]\nprot = 8000\n", [], ["{config}", "unknown key 'server.prot'"]),
        ('[upstream]\nidle_timeout = "soon"\n', [], ["{config}", "key 'upstream.idle_timeout'", "expected a number"]),
        ('[server]\nhost = "0.0.0.0"\n', [], ["refusing to listen on 0.0.0.0 without an api key"]),
        ("", ["--host", "0.0.0.0"], ["refusing to listen on 0.0.0.0 without an api key"]),
    ],
    ids=["syntax", "unknown-key", "wrong-type", "exposed-by-file", "exposed-by-flag"],
)
def test_a_bad_configuration_exits_78_with_one_message(
    tmp_path: Path, text: str, flags: list[str], fragments: list[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    done = subprocess.run(
        serve_argv(config, "--port", str(free_port()), *flags),
        capture_output=True,
        text=True,
        timeout=15,
        env=clean_env(tmp_path / "codex"),
    )
    assert done.returncode == 78, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("codexd: ")
    for fragment in fragments:
        assert fragment.format(config=config) in lines[0]


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """Not a configuration error (exit 1, so a service manager retries), but no traceback either."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            serve_argv(tmp_path / "absent.toml", "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=15,
            env=clean_env(tmp_path / "codex"),
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"codexd: cannot listen on 127.0.0.1:{port}: the port is in use (another codexd?)"
    ]


# --- serving -------------------------------------------------------------------------------------------


def test_serve_answers_health_and_stops_promptly_on_sigterm(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "codex-without-login")
    with daemon(tmp_path, tmp_path / "absent.toml", "--log-format", "json", env=env) as running:
        status, body = get(running.url + "/health")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        status, body = get(running.url + "/ready")
        assert status == 503
        assert json.loads(body)["ready"] is False
        started = time.monotonic()
        assert running.stop() == 0
        assert time.monotonic() - started < 5
        entries = [json.loads(line) for line in running.stderr().splitlines()]
    messages = [e["message"] for e in entries]
    assert f"codexd {__import__('codexd').__version__} listening on 127.0.0.1:{running.port}" in messages
    assert "shutting down" in messages


def test_a_ca_directory_without_hash_names_is_warned_about_at_start(tmp_path: Path) -> None:
    """Every upstream request would fail TLS verification: the log says so, and why, as codexd starts."""
    cas = tmp_path / "cas"
    cas.mkdir()
    (cas / "corp.pem").write_text("")
    env = {**clean_env(tmp_path / "codex-without-login"), "SSL_CERT_DIR": str(cas)}
    with daemon(tmp_path, tmp_path / "absent.toml", "--log-format", "json", env=env) as running:
        assert running.stop() == 0
        entries = [json.loads(line) for line in running.stderr().splitlines()]
    warned = [e["message"] for e in entries if e["level"] == "warning"]
    assert warned == [
        f"upstream.ca_dir {cas} holds no CA named by its hash: upstream requests will fail TLS verification"
        f" (run `openssl rehash {cas}`, or empty it)"
    ]


def test_sighup_reloads_the_file_and_keeps_serving(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('# mine\n[models]\ndefault = "gpt-5.5"\n', encoding="utf-8")
    with daemon(tmp_path, config, env=clean_env(tmp_path / "codex")) as running:
        config.write_text('# mine\n[models]\ndefault = "gpt-5.4"\n', encoding="utf-8")
        running.process.send_signal(signal.SIGHUP)
        wait_for(
            lambda: "configuration reloaded; changed: models.default" in running.stderr(), 5, "the reload log line"
        )
        assert get(running.url + "/health")[0] == 200

        config.write_text("[models]\ndefault = \n", encoding="utf-8")  # a broken edit keeps the old settings
        running.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed, keeping the running configuration" in running.stderr(), 5, "reload failure")
        assert get(running.url + "/health")[0] == 200
        assert running.stop() == 0


# --- on glibc's malloc: the same process, executed again once -------------------------------------------

on_glibc = pytest.mark.skipif(
    sys.platform != "linux" or not has_glibc(), reason="codexd switches allocators only on Linux with glibc"
)


@on_glibc
def test_serve_runs_on_glibcs_malloc_in_the_process_that_was_started(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "codex")
    env.pop("PYTHONMALLOC", None)
    with daemon(tmp_path, tmp_path / "absent.toml", env=env) as running:
        # The pid the test started now runs a program executed with the variable: not a child, not a twin.
        assert environ_of(running.process.pid)["PYTHONMALLOC"] == "malloc"
        assert running.stop() == 0


@on_glibc
def test_a_pythonmalloc_the_user_set_is_kept(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "codex", PYTHONMALLOC="pymalloc")
    with daemon(tmp_path, tmp_path / "absent.toml", env=env) as running:
        assert environ_of(running.process.pid)["PYTHONMALLOC"] == "pymalloc"
        assert running.stop() == 0


@on_glibc
def test_a_socket_passed_by_systemd_is_still_served_after_the_restart(tmp_path: Path) -> None:
    """Socket activation across the exec: the socket stays at fd 3 and LISTEN_PID stays true (same pid)."""
    env = clean_env(tmp_path / "codex")
    env.pop("PYTHONMALLOC", None)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port, fd = listener.getsockname()[1], listener.fileno()
        # As systemd does: the socket at fd 3, LISTEN_PID the pid of the program it executes.
        script = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.close(int(sys.argv[1])); "
            "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='http'); "
            "os.execv(sys.argv[2], sys.argv[2:])"
        )
        unused_port = free_port()  # what --port names is not bound: the passed socket is served instead
        argv = serve_argv(tmp_path / "absent.toml", "--port", str(unused_port))
        log = tmp_path / "stderr.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", script, str(fd), *argv],
                pass_fds=(fd,),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
            )
    running = ServeProcess(process, port, log)
    try:
        wait_for(running.healthy, START_TIMEOUT, "GET /health on the passed socket")
        assert environ_of(process.pid)["PYTHONMALLOC"] == "malloc"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", unused_port), timeout=1).close()
        assert running.stop() == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)


# --- no secret in the log ------------------------------------------------------------------------------


class StubUpstream(BaseHTTPRequestHandler):
    """Answers like a backend that rejects the token (401) and a token endpoint that rejects the refresh."""

    seen: list[tuple[str, dict[str, str], bytes]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.path, dict(self.headers), body))
        status, payload = (400, {"error": "invalid_grant"}) if "oauth" in self.path else (401, {"detail": "no"})
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub_upstream() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    seen: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("Stub", (StubUpstream,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_debug_logs_hold_no_api_key_and_no_token(
    tmp_path: Path, stub_upstream: tuple[str, list[tuple[str, dict[str, str], bytes]]]
) -> None:
    upstream, seen = stub_upstream
    api_key = "local-api-key-7f3a9c2e51"
    document = auth_document(refresh_token="rt-refresh-secret-0b1c2d3e4f")
    write_auth(tmp_path / "codex" / "auth.json", document)
    tokens = document["tokens"]
    env = clean_env(
        tmp_path / "codex",
        CODEXD_CHATGPT_BASE_URL=f"{upstream}/backend-api/codex",
        CODEX_REFRESH_TOKEN_URL_OVERRIDE=f"{upstream}/oauth/token",
    )
    with daemon(tmp_path, tmp_path / "absent.toml", "--log-level", "debug", "--api-key", api_key, env=env) as running:
        bearer = {"Authorization": f"Bearer {api_key}"}
        assert get(running.url + "/v1/models", bearer)[0] == 200  # upstream 401: the built-in list
        assert get(running.url + "/v1/models", {"Authorization": "Bearer wrong-key-123456"})[0] == 401
        assert get(running.url + "/v1/models", {"x-api-key": "wrong-key-abcdef"})[0] == 401
        status, _ = get(running.url + "/v1/responses", {"x-api-key": api_key}, {"model": "gpt-5.5", "input": "hi"})
        assert status == 401  # upstream 401, then the refresh is refused: "run codex login"
        assert get(running.url + "/ready")[0] == 503
        assert running.stop() == 0
        log = running.stderr()
    # The secrets really travelled through the debug-logged upstream client ...
    assert any(headers.get("Authorization") == f"Bearer {tokens['access_token']}" for _, headers, _ in seen)
    assert any(path == "/oauth/token" and tokens["refresh_token"].encode() in body for path, _, body in seen)
    assert " DEBUG " in log
    # ... and none of them reached the log.
    for secret in (api_key, tokens["access_token"], tokens["id_token"], tokens["refresh_token"]):
        assert secret not in log
    assert "wrong-key-123456" not in log and "wrong-key-abcdef" not in log
