"""Slow clients: a slowloris (headers or body a byte at a time) is dropped after the server's timeout while
others are served at once, and a client that stops reading a long stream slows the upstream down instead
of filling codexd's memory (backpressure all the way to the backend's socket)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codexd.server import lifecycle
from codexd.upstream import stream as upstream_stream
from tests.fakes.backend import start_backend
from tests.fakes.scripts import Builder, Script, Step
from tests.harness import Stack, start_stack
from tests.reliability.conftest import IDLE_TIMEOUT
from tests.reliability.wire import RESPONSES, STREAMING, Endpoint, fetch, wait_for

pytestmark = pytest.mark.gen_test(timeout=30)

HEADER_TIMEOUT = 1.0


@pytest.fixture
def guarded(io_loop: Any, codex_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """codexd with 1 s header and body timeouts (instead of a minute or two)."""
    monkeypatch.setattr(lifecycle, "HEADER_TIMEOUT", HEADER_TIMEOUT)
    monkeypatch.setattr(lifecycle, "BODY_TIMEOUT", HEADER_TIMEOUT)
    running = start_stack(codex_home, start_backend())
    yield running
    running.stop()


async def drip(port: int, head: bytes, tail: bytes, every: float = 0.2) -> float:
    """Send ``head`` at once, then ``tail`` a byte every ``every`` s; seconds until codexd hung up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()

    async def trickle() -> None:
        writer.write(head)
        for byte in tail:
            await asyncio.sleep(every)
            writer.write(bytes([byte]))
            await writer.drain()

    sender = asyncio.ensure_future(trickle())
    try:
        got = await asyncio.wait_for(reader.read(), 10)
        assert got == b"", f"codexd answered a request it never fully received: {got[:200]!r}"
        return time.monotonic() - t0
    except ConnectionResetError:
        return time.monotonic() - t0
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()


async def test_slowloris_is_dropped_and_others_are_served(guarded, error_trap):
    port = guarded.port
    slow_headers = b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: " + b"a" * 200
    body = json.dumps(RESPONSES.body(False)).encode()
    slow_body = (
        b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body) + 100}\r\n\r\n".encode(),
        body,
    )
    slow = [asyncio.ensure_future(drip(port, *(slow_headers if i % 2 else slow_body))) for i in range(20)]
    await asyncio.sleep(0.3)
    for endpoint in STREAMING:
        got = await fetch(guarded.url + endpoint.path, endpoint.body(True))
        assert got.code == 200 and got.elapsed < 0.5, (got.code, got.elapsed)
    dropped_after = await asyncio.gather(*slow)
    assert all(HEADER_TIMEOUT - 0.1 < t < HEADER_TIMEOUT + 1.5 for t in dropped_after), dropped_after
    assert not guarded.state.in_flight
    assert guarded.backend.state.posts[-1].body["input"][0]["content"][0]["text"] == "hi"
    assert len(guarded.backend.state.posts) == 3  # no slow request reached the upstream


async def test_an_idle_keep_alive_connection_is_closed_and_leaves_nothing_behind(guarded, error_trap):
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        t0 = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # codexd hung up
        idle = time.monotonic() - t0
    finally:
        writer.close()
    assert HEADER_TIMEOUT - 0.1 < idle < HEADER_TIMEOUT + 1.0, idle
    deadlines = guarded.server.deadlines
    # Nothing is kept for a closed connection, and an idle codexd has no sweep waking it.
    await wait_for(lambda: not deadlines.due and not deadlines.sweeping, 3, "the deadlines to empty")


def flood(events: int, size: int = 64 * 1024) -> Script:
    """A stream of ``events`` text deltas of ``size`` bytes each, sent as fast as the socket takes them."""
    builder = Builder().start()
    start = list(builder.out)
    end = builder.text("").completed()[len(start) :]
    delta = {
        "type": "response.output_text.delta",
        "sequence_number": 2,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "x" * size,
        "logprobs": [],
        "obfuscation": "abc",
    }
    frame = f"event: response.output_text.delta\ndata: {json.dumps(delta)}\n\n".encode()
    steps = [Step(event=e) for e in start] + [Step(raw=frame) for _ in range(events)] + [Step(event=e) for e in end]
    return Script(steps=steps)


async def stop_reading(port: int, endpoint: Endpoint) -> socket.socket:
    """Send a streaming request with a small receive buffer, read the first bytes, then never read again."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    raw = json.dumps(endpoint.body(True)).encode()
    head = f"POST {endpoint.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(raw)}\r\n\r\n"
    await loop.sock_sendall(sock, head.encode() + raw)
    first = await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
    assert first.startswith(b"HTTP/1.1 200"), first[:200]
    return sock


async def flat(read: Any, quiet_for: float, limit: float) -> int:
    """Wait until ``read()`` has not changed for ``quiet_for`` seconds; its value then."""
    t0 = time.monotonic()
    last, since = read(), time.monotonic()
    while time.monotonic() - since < quiet_for:
        assert time.monotonic() - t0 < limit, f"still moving after {limit:g} s: {read()}"
        await asyncio.sleep(0.1)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
    return int(last)


@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_a_client_that_stops_reading_blocks_the_upstream_not_memory(stack, error_trap, endpoint):
    events, size = 1000, 64 * 1024  # 64 MiB scripted
    stack.backend.state.push(flood(events, size))
    sock = await stop_reading(stack.port, endpoint)
    try:
        sent = await flat(lambda: stack.backend.state.bytes_sent, 1.0, 15)
        assert stack.backend.state.open_streams == 1  # blocked, not finished
        assert sent < events * size / 2, f"the backend got {sent / 2**20:.1f} MiB out to a client that reads nothing"
        (live,) = stack.state.upstream.live
        (handler,) = stack.state.in_flight
        held = live._buffered + len(handler.request.connection.stream._write_buffer)
        assert held <= 2 * upstream_stream._HIGH_WATER + (1 << 20), f"codexd holds {held / 2**20:.1f} MiB"
        for other in STREAMING:  # the others are served meanwhile
            got = await fetch(stack.url + other.path, other.body(True))
            assert got.code == 200 and got.elapsed < 1.0, (got.code, got.elapsed)
    finally:
        sock.close()
    await wait_for(lambda: stack.backend.state.open_streams == 0, 1.0, "the upstream stream closed")
    await wait_for(lambda: not stack.state.in_flight, 2, "no request in flight")


TERMINAL = {"responses": b"event: response.completed", "chat": b"data: [DONE]", "messages": b"event: message_stop"}


@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_a_client_that_pauses_longer_than_the_idle_timeout_still_gets_everything(stack, error_trap, endpoint):
    stack.backend.state.push(flood(300))  # ~19 MiB, far more than the buffers on the way hold
    sock = await stop_reading(stack.port, endpoint)
    loop = asyncio.get_running_loop()
    try:
        await flat(lambda: stack.backend.state.bytes_sent, 4 * IDLE_TIMEOUT, 15)  # paused for 2 s: upstream waits
        got = bytearray()
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10):
            got += chunk
            if got.endswith(b"0\r\n\r\n"):  # the last chunk of the chunked answer
                break
    finally:
        sock.close()
    assert b"silent" not in got, bytes(got[-500:])
    assert TERMINAL[endpoint.name] in got[-5000:]


class FakeCurl:
    """Records pause calls like a pycurl handle."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def pause(self, bitmask: int) -> None:
        self.calls.append(bitmask)


async def test_time_paused_for_a_slow_client_is_not_upstream_silence():
    stream = upstream_stream.UpstreamStream(idle_timeout=0.2)
    curl = stream._curl = FakeCurl()
    assert stream.on_chunk(b"x" * upstream_stream._HIGH_WATER) is None  # taken
    assert stream.on_chunk(b"y") == upstream_stream.pycurl.WRITEFUNC_PAUSE  # over the high-water mark: held
    chunks = stream.chunks()
    await asyncio.sleep(0.5)  # the client is slow: longer than the idle timeout passes
    assert len(await chunks.__anext__()) == upstream_stream._HIGH_WATER  # taken: resumed
    assert curl.calls == [upstream_stream.pycurl.PAUSE_CONT]
    asyncio.get_running_loop().call_later(0.05, stream.on_chunk, b"y")  # libcurl hands the held chunk over
    assert await chunks.__anext__() == b"y"
    stream.on_done(None)
    assert [c async for c in chunks] == []


def test_below_the_high_water_mark_nothing_is_paused_or_resumed():
    stream = upstream_stream.UpstreamStream(idle_timeout=5)
    curl = stream._curl = FakeCurl()
    for _ in range(10):
        assert stream.on_chunk(b"z" * 16384) is None
    assert curl.calls == [] and stream.bytes_received == 10 * 16384
