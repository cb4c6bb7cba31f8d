"""Tokens leave codexd as they arrive: a write never waits for the client's acknowledgement of the last one.

With Nagle's algorithm on (Tornado's default on a connection until a response ends), a small write waits
while earlier data is unacknowledged, and a client's TCP stack may hold its acknowledgement back for tens of
milliseconds. Seen with codexd, the fake backend and the client each in their own process (as in real use:
in one process the stall does not show): after the answer's start, tokens coming 10 ms later reached the
client 10-20 ms late, sometimes only when the response ended.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import HTTPRequest

from bench import phases
from bench.fake import ECHO_PAUSE
from bench.procs import Codexd, start_codexd, start_fake, write_config
from tests.fakes.tls import tls_files

pytestmark = pytest.mark.gen_test(timeout=60)

ENDPOINTS = {
    "chat": ("/v1/chat/completions", b'{"model":"gpt-5.5","stream":true,"messages":[{"role":"user","content":"hi"}]}'),
    "messages": (
        "/v1/messages",
        b'{"model":"claude-sonnet-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}',
    ),
}


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Codexd, str, str]]:
    """The fake backend and codexd, each a process of its own: (codexd, the fake's URL, the CA file)."""
    folder = Path(tmp_path_factory.mktemp("pacing"))
    ca, cert, key = tls_files(folder)
    fake, port = start_fake(cert, key)
    config, home, token = write_config(folder, port, ca, max_clients=16)
    codexd = start_codexd(config, home, token, ca)
    yield codexd, f"https://127.0.0.1:{port}", str(ca)
    codexd.stop()
    fake.terminate()
    fake.wait(10)
    if fake.stdout is not None:
        fake.stdout.close()


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_tokens_after_a_pause_reach_the_client_at_once(processes, endpoint):
    codexd, fake_url, ca = processes
    path, body = ENDPOINTS[endpoint]
    ctx = phases.Ctx({}, fake_url, ca, codexd.proc.pid)
    # Large start events (the backend echoes the request's instructions and tools), then ECHO_PAUSE of
    # silence before the first delta and again before the end.
    await phases.set_mode(ctx, deltas=8, echo={"instructions": "Follow the house style. " * 3000, "tools": []})
    client = CurlAsyncHTTPClient(force_instance=True)  # one keep-alive connection, as clients keep
    off: list[float] = []  # per request: the gap from the first bytes to the first token, minus the pause
    try:
        for _ in range(8):
            arrivals: list[tuple[float, bytes]] = []
            t0 = time.monotonic()

            def on_chunk(chunk: bytes, arrivals: list[tuple[float, bytes]] = arrivals, t0: float = t0) -> None:
                arrivals.append((time.monotonic() - t0, chunk))

            request = HTTPRequest(
                codexd.url + path, method="POST", body=body, headers={"Content-Type": "application/json"}
            )
            request.streaming_callback = on_chunk
            answer = await client.fetch(request, raise_error=False)
            assert answer.code == 200
            first = arrivals[0][0]
            token = next(t for t, chunk in arrivals if b"tok0" in chunk)
            off.append(token - first - ECHO_PAUSE)
    finally:
        client.close()
    # Held back, either the first bytes came with the token (-10 ms) or the token came 10 ms late (+10 ms).
    assert sorted(abs(x) for x in off)[len(off) // 2] < 0.005, [round(x * 1000, 1) for x in off]
