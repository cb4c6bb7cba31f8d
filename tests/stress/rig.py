"""What the stress tests run against: a fake backend on its own thread, ``codexd serve`` as a real process,
a raw-socket HTTP client that sees exactly how a response ended, and RSS readings from ``/proc``.

The fake runs in the test process (its ``token_state`` and ``state`` stay inspectable) on a background
event loop, so codexd processes and the test's own clients reach it over 127.0.0.1 at the same time.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.backend import FakeBackend, start_backend
from tests.processes import ServeProcess as BaseServeProcess
from tests.processes import clean_env, free_port, get, serve_argv, wait_for

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 15.0

# Request bodies per endpoint; ``terminal`` is what only a finished stream carries.
ENDPOINTS: dict[str, dict[str, Any]] = {
    "responses": {
        "path": "/v1/responses",
        "body": {"model": "gpt-5.5", "input": "hi"},
        "terminal": b"event: response.completed",
    },
    "chat": {
        "path": "/v1/chat/completions",
        "body": {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]},
        "terminal": b"data: [DONE]",
    },
    "messages": {
        "path": "/v1/messages",
        "body": {"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [{"role": "user", "content": "hi"}]},
        "terminal": b"event: message_stop",
    },
}


@dataclass
class BackendThread:
    """The fake and the event loop it runs on; ``call`` runs a function there (its state is not thread-safe)."""

    fake: FakeBackend
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


@contextmanager
def threaded_backend() -> Iterator[BackendThread]:
    """The fake Codex backend and token endpoint on a background event loop (127.0.0.1)."""
    loop = asyncio.new_event_loop()
    box: dict[str, FakeBackend] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            box["backend"] = start_backend()
            ready.set()

        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-backend", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the fake backend did not start")
    backend = box["backend"]
    try:
        yield BackendThread(backend, loop)
    finally:

        async def stop() -> None:
            backend.server.stop()
            await backend.server.close_all_connections()

        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def write_config(path: Path, backend: FakeBackend, **server: Any) -> Path:
    """A config.toml pointing codexd at ``backend``; ``server`` holds extra ``[server]`` keys."""
    lines = ["[server]"] + [f"{key} = {json.dumps(value)}" for key, value in server.items()]
    lines += [
        "[upstream]",
        f'chatgpt_base_url = "{backend.base_url}"',
        f'refresh_url = "{backend.refresh_url}"',
        "idle_timeout = 30",
        "connect_timeout = 5",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class ServeProcess(BaseServeProcess):
    """A running ``codexd serve`` with readings of its metrics and memory."""

    def metric(self, name: str) -> float:
        """The sum of every sample of one Prometheus metric (0 when absent)."""
        _, body = get(self.url + "/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def rss_kib(self) -> int:
        """Resident set size of the process in KiB, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")


@contextmanager
def serve_process(workdir: Path, codex_home: Path, config: Path, name: str = "codexd") -> Iterator[ServeProcess]:
    """Start ``python -m codexd serve`` on a free port with ``CODEX_HOME=codex_home``; kill it at the end."""
    port = free_port()
    log = workdir / f"{name}.stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            serve_argv(config, "--port", str(port)),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=clean_env(codex_home),
        )
    running = ServeProcess(process, port, log)
    try:
        wait_for(running.healthy, START_TIMEOUT, f"{name}: GET /health to answer 200")
        yield running
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


# --- a raw HTTP client -----------------------------------------------------------------------------------


@dataclass
class Answer:
    """One response as it arrived: ``complete`` is False when the connection closed before its end."""

    status: int
    headers: dict[str, str]
    body: bytes  # de-chunked
    complete: bool


def request_bytes(port: int, path: str, body: dict[str, Any]) -> bytes:
    """An HTTP/1.1 POST that asks the server to close the connection after answering."""
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


def parse_answer(raw: bytes) -> Answer:
    """Split a raw response; decode a chunked body and tell whether it reached its end."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return Answer(0, {}, b"", False)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() != "chunked":
        length = int(headers.get("content-length", len(rest)))
        return Answer(status, headers, rest[:length], len(rest) >= length)
    body = bytearray()
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return Answer(status, headers, bytes(body), False)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return Answer(status, headers, bytes(body), True)
        if len(rest) < size + 2:
            return Answer(status, headers, bytes(body + rest[:size]), False)
        body += rest[:size]
        rest = rest[size + 2 :]


async def call(
    port: int, path: str, body: dict[str, Any], *, hang_up_after: bytes | None = None, timeout: float = 30
) -> Answer:
    """POST and read until the server closes; with ``hang_up_after``, close as soon as those bytes arrive."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    raw = bytearray()
    try:
        writer.write(request_bytes(port, path, body))
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                raw += chunk
                if hang_up_after is not None and hang_up_after in raw:
                    break
    finally:
        writer.transport.abort()
        with suppress(OSError):
            await writer.wait_closed()
    return parse_answer(bytes(raw))


def finished_properly(kind: str, stream: bool, answer: Answer) -> str | None:
    """None when ``answer`` is a complete, successful answer of endpoint ``kind``; else what is wrong."""
    if answer.status != 200:
        return f"status {answer.status}: {answer.body[:300]!r}"
    if not answer.complete:
        return "the response was cut"
    if stream:
        return None if ENDPOINTS[kind]["terminal"] in answer.body else "no terminal event"
    try:
        doc = json.loads(answer.body)
    except ValueError:
        return "the body is not JSON"
    text = json.dumps(doc)
    return None if "Hello! How can I help you today?" in text else f"unexpected answer {text[:300]}"


def sample_rss(process: ServeProcess, every: float, stop: threading.Event, out: list[tuple[float, int]]) -> None:
    """Append ``(monotonic seconds, VmRSS KiB)`` every ``every`` seconds until ``stop`` is set."""
    while not stop.is_set():
        with suppress(OSError):
            out.append((time.monotonic(), process.rss_kib()))
        stop.wait(every)
