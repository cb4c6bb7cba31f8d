"""codexd against an HTTP/2 backend, the protocol chatgpt.com offers and libcurl negotiates by default:
streams arrive as they are sent, concurrent streams share one connection, a client that leaves cancels only
its own stream, a reset stream is an in-band error, a client that stops reading holds the upstream back, the
connections a burst opened beyond one are closed once codexd is idle (over HTTP/1.1 they stay), and a
connection opened after codexd closed the idle ones resumes the TLS session."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codexd.server.lifecycle import IDLE_TRIM_AFTER, IdleTrim
from tests.fakes.h2backend import H2Backend, start_h2_backend
from tests.fakes.scripts import Builder, Script, Step
from tests.fakes.tls import tls_files
from tests.handlers.client import post_json, stream_sse
from tests.harness import Stack, start_stack
from tests.reliability.test_slow_clients import flat, flood
from tests.reliability.wire import wait_for

pytestmark = pytest.mark.gen_test(timeout=30)

CHAT = {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return tls_files(tmp_path_factory.mktemp("h2tls"))


@pytest.fixture
def h2(io_loop: Any, tls: tuple[Path, Path, Path], request: pytest.FixtureRequest) -> Iterator[H2Backend]:
    """The fake; a test parametrized with ``indirect=True`` gives the streams it allows on a connection."""
    _, cert, key = tls
    limit = getattr(request, "param", 100)
    backend = io_loop.asyncio_loop.run_until_complete(start_h2_backend(cert, key, max_streams=limit))
    yield backend
    io_loop.asyncio_loop.run_until_complete(backend.aclose())


@pytest.fixture
def h2_stack(h2: H2Backend, codex_home: Path, tls: tuple[Path, Path, Path]) -> Iterator[Stack]:
    running = start_stack(codex_home, h2, ca_bundle=str(tls[0]))  # type: ignore[arg-type]
    yield running
    running.stop()


def paced(pieces: int = 20, interval: float = 0.05) -> Script:
    text = [f"w{i} " for i in range(pieces)]
    return Script.events(Builder().start().text("".join(text), pieces=text).completed(), interval=interval)


async def test_chat_streams_over_http2_as_the_events_arrive(h2, h2_stack):
    h2.state.push(paced(20, 0.05))
    got = await stream_sse(f"{h2_stack.url}/v1/chat/completions", CHAT)
    assert got.code == 200 and h2.alpn == ["h2"]
    texts = [c["choices"][0]["delta"].get("content") for c in got.json()[:-1] if c["choices"]]
    assert "".join(t for t in texts if t) == "".join(f"w{i} " for i in range(20))
    assert got.events[-1].data == "[DONE]"
    first, last = got.times[1], got.times[-1]
    assert last - first > 0.5, "the deltas came in one piece, not as the upstream sent them"


async def test_once_the_upstream_spoke_http2_concurrent_streams_share_one_connection(h2, h2_stack):
    h2.state.default = paced(10, 0.05)
    assert (await stream_sse(f"{h2_stack.url}/v1/chat/completions", CHAT)).code == 200
    h2.goaway()  # no connection left to reuse: the burst below starts from scratch
    await asyncio.sleep(0.1)
    before = h2.state.connections
    answers = await asyncio.gather(*(stream_sse(f"{h2_stack.url}/v1/chat/completions", CHAT) for _ in range(20)))
    assert [a.code for a in answers] == [200] * 20
    assert all(a.events[-1].data == "[DONE]" for a in answers)
    opened = h2.state.connections - before
    assert opened == 1, f"{opened} connections for 20 concurrent streams"
    assert h2.most_streams >= 10, "the streams did not run at the same time on the connection"


async def _open_stream(url: str) -> socket.socket:
    """Send a streamed chat request on a raw socket with a small receive buffer and read the first bytes;
    the caller decides whether to read on or to close."""
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, int(port)))
    body = b'{"model":"gpt-5.5","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    await loop.sock_sendall(sock, head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert b"200" in await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
    return sock


async def _leave_mid_stream(url: str) -> None:
    (await _open_stream(url)).close()


async def test_a_client_that_leaves_cancels_only_its_own_stream(h2, h2_stack):
    h2.state.push(paced(200, 0.05), paced(20, 0.05))  # the first for the leaver, the second runs to the end
    leaver = asyncio.ensure_future(_leave_mid_stream(h2_stack.url))
    await asyncio.sleep(0.2)
    stayer = asyncio.ensure_future(stream_sse(f"{h2_stack.url}/v1/chat/completions", CHAT))
    await leaver
    t0 = time.monotonic()
    while h2.resets_from_client < 1:
        assert time.monotonic() - t0 < 2, "the upstream stream was not cancelled"
        await asyncio.sleep(0.02)
    got = await stayer
    assert got.code == 200 and got.events[-1].data == "[DONE]"
    assert h2.state.connections == 1, "cancelling one stream closed the shared connection"


async def test_a_stream_the_upstream_resets_ends_with_an_in_band_error(h2, h2_stack):
    script = paced(10, 0.02)
    script.steps.insert(5, Step(action="drop"))
    h2.state.push(script)
    got = await stream_sse(f"{h2_stack.url}/v1/chat/completions", CHAT)
    assert got.code == 200
    assert "error" in got.json()[-1] and "[DONE]" not in [e.data for e in got.events]


async def test_rejected_requests_keep_their_status_over_http2(h2, h2_stack):
    h2.state.push(Script.error(429, {"error": {"type": "usage_limit_reached", "message": "limit"}}))
    got = await post_json(f"{h2_stack.url}/v1/chat/completions", {**CHAT, "stream": False})
    assert got.code == 429


async def test_a_client_that_stops_reading_holds_the_http2_stream_back(h2, h2_stack):
    h2.state.push(flood(600, 64 * 1024))  # about 38 MiB scripted
    sock = await _open_stream(h2_stack.url)
    try:
        sent = await flat(lambda: h2.state.bytes_sent, 1.0, 15)
        # What may be on the way: codexd's 4 MiB high-water mark, the stream window libcurl granted before it
        # paused (up to 10 MiB), socket buffers. HTTP/1.1 has no such window: see test_slow_clients.
        assert sent < 18 * 2**20, f"the backend got {sent / 2**20:.1f} MiB out to a client that reads nothing"
        got = await stream_sse(f"{h2_stack.url}/v1/chat/completions", CHAT)  # the shared connection still flows
        assert got.code == 200 and got.events[-1].data == "[DONE]"
        assert h2.state.connections == 1
    finally:
        sock.close()


LIMIT = 2  # streams at once the fake allows on a connection in the tests below


async def streams(stack: Stack, n: int) -> None:
    answers = await asyncio.gather(*(stream_sse(f"{stack.url}/v1/chat/completions", CHAT) for _ in range(n)))
    assert [a.code for a in answers] == [200] * n
    assert all(a.events[-1].data == "[DONE]" for a in answers)


def trim_after(stack: Stack) -> None:
    """Run the idle trim as it runs once codexd has been idle for ``IDLE_TRIM_AFTER`` after requests."""
    stack.state.last_done -= IDLE_TRIM_AFTER + 0.1
    IdleTrim(stack.state)()


@pytest.mark.parametrize("h2", [LIMIT], indirect=True)
async def test_once_idle_the_connections_of_a_burst_beyond_one_are_closed(h2, h2_stack):
    h2.state.default = paced(4)
    await streams(h2_stack, 1)  # codexd learns the upstream speaks HTTP/2
    await streams(h2_stack, 3 * LIMIT)
    assert len(h2.live) >= 3, f"{len(h2.live)} connections for {3 * LIMIT} streams at {LIMIT} a connection"
    trim_after(h2_stack)
    await wait_for(lambda: not h2.live, 5, "the idle connections to close")
    opened = h2.state.connections
    await streams(h2_stack, 1)
    assert h2.state.connections == opened + 1, "the next request opens one connection"
    trim_after(h2_stack)
    await streams(h2_stack, LIMIT)
    assert h2.state.connections == opened + 1, "that one stays warm: it is the only one"


async def test_a_connection_opened_in_place_of_one_the_server_closed_stays_warm(h2, h2_stack):
    h2.state.default = paced(4)
    await streams(h2_stack, 1)
    h2.goaway()  # as a server ends a connection it no longer wants
    await asyncio.sleep(0.1)
    await streams(h2_stack, 3)
    opened = h2.state.connections
    trim_after(h2_stack)
    await streams(h2_stack, 3)
    assert h2.state.connections == opened, "the replacement was the only connection: kept"


@pytest.mark.parametrize("h2", [LIMIT], indirect=True)
async def test_streams_that_fit_one_connection_keep_it_warm(h2, h2_stack):
    h2.state.default = paced(4)
    await streams(h2_stack, 1)
    await streams(h2_stack, LIMIT)
    opened = h2.state.connections
    assert len(h2.live) == 1
    trim_after(h2_stack)
    await streams(h2_stack, LIMIT)
    assert h2.state.connections == opened, "the next streams reused the warm connection"


@pytest.mark.parametrize("h2", [LIMIT], indirect=True)
async def test_a_connection_opened_after_the_idle_ones_closed_resumes_the_tls_session(h2, h2_stack):
    h2.state.default = paced(4)
    await streams(h2_stack, 1)
    assert h2.resumed == [False], "the first connection makes a full handshake"
    assert h2_stack.state.upstream.close_idle(), "as after 118 s without requests"
    await streams(h2_stack, 1)
    await streams(h2_stack, 2 * LIMIT)  # a burst: one more connection beside the first
    trim_after(h2_stack)
    await wait_for(lambda: not h2.live, 5, "the idle connections to close")
    await streams(h2_stack, 1)
    assert len(h2.resumed) == 4 and all(h2.resumed[1:]), f"sessions resumed: {h2.resumed}"


async def test_over_http1_the_idle_connections_stay_for_the_next_burst(stack):
    for _ in range(8):
        stack.backend.state.push(Script.events(Builder().start().text("x y").completed(), interval=0.05))
    await streams(stack, 4)
    opened = stack.backend.state.connections
    assert opened >= 4, "one HTTP/1.1 connection a concurrent stream"
    trim_after(stack)
    await streams(stack, 4)
    assert stack.backend.state.connections == opened, "the second burst reused the first one's connections"
