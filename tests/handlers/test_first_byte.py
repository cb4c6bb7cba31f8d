"""A streamed answer's 200 and headers reach the client as soon as the upstream's headers do, whether the
first events came with them or the upstream is slow to send any; its first token does not wait for the rest
of the upstream read it came in."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable

import pytest

from codexd.translate.chat_stream import ResponsesToChat
from codexd.translate.messages_stream import ResponsesToMessages
from codexd.translate.responses_stream import ResponsesPassthrough
from tests.fakes.scripts import Builder, Script, Step, wire
from tests.handlers.client import post_json

pytestmark = pytest.mark.gen_test(timeout=20)

STALL = 1.5  # seconds the upstream stays silent

ENDPOINTS = {
    "chat": (
        "/v1/chat/completions",
        {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ),
    "messages": (
        "/v1/messages",
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    "responses": ("/v1/responses", {"input": "hi", "stream": True}),
}


def _header_clock(t0: float) -> tuple[list[float], Callable[[str], None]]:
    """A header callback noting when the blank line closing the response headers arrived (s after ``t0``)."""
    headers_at: list[float] = []

    def on_header(line: str) -> None:
        if line in ("\r\n", "\n") and not headers_at:
            headers_at.append(time.monotonic() - t0)

    return headers_at, on_header


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("silent_after", [0, 2, 4], ids=["no-event", "created", "first-delta"])
async def test_headers_do_not_wait_for_a_silent_upstream(stack, endpoint, silent_after):
    """``silent_after`` events come at once (with the upstream's headers), then silence, then the rest."""
    path, body = ENDPOINTS[endpoint]
    answer = Builder().start().text("hello world", pieces=["hello world"]).completed()
    stack.backend.state.push(Script.events(answer).then_stall(silent_after, STALL))
    t0 = time.monotonic()
    headers_at, on_header = _header_clock(t0)
    received = bytearray()

    def on_chunk(chunk: bytes) -> None:
        received.extend(chunk)

    resp = await post_json(f"{stack.url}{path}", body, header_callback=on_header, streaming_callback=on_chunk)
    total = time.monotonic() - t0
    assert resp.code == 200
    assert total >= STALL, "the upstream's silence was part of this answer"
    assert headers_at and headers_at[0] < STALL / 2, f"the 200 came after {headers_at} s"
    assert b"hello world" in received


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_headers_do_not_wait_for_the_rest_of_a_half_sent_event(stack, endpoint):
    """The upstream's headers come with the first half of its first event, then silence."""
    path, body = ENDPOINTS[endpoint]
    blob = b"".join(wire(e) for e in Builder().start().text("hello world", pieces=["hello world"]).completed())
    stack.backend.state.push(
        Script(steps=[Step(raw=blob[:30]), Step(action="stall", delay=STALL), Step(raw=blob[30:])])
    )
    t0 = time.monotonic()
    headers_at, on_header = _header_clock(t0)
    resp = await post_json(f"{stack.url}{path}", body, header_callback=on_header)
    assert resp.code == 200
    assert time.monotonic() - t0 >= STALL
    assert headers_at and headers_at[0] < STALL / 2, f"the 200 came after {headers_at} s"
    assert b"hello world" in resp.body


TRANSLATORS = {
    "chat": ResponsesToChat,
    "messages": ResponsesToMessages,
    "responses": ResponsesPassthrough,
}
TOKEN = {"chat": b'"content":"hello"', "messages": b'"text":"hello"', "responses": b'"delta":"hello"'}


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_first_token_is_sent_before_the_rest_of_its_read_is_translated(stack, endpoint, monkeypatch):
    """The whole answer comes in one upstream write. By the time codexd translates its terminal event, the
    first token must already be on the client's socket (loopback hands written bytes over at once)."""
    path, body = ENDPOINTS[endpoint]
    answer = Builder().start().text("hello world", pieces=["hello", " world"]).completed()
    stack.backend.state.push(Script(steps=[Step(raw=b"".join(wire(e) for e in answer))]))
    client = socket.create_connection(("127.0.0.1", stack.port))
    client.setblocking(False)
    seen_at_end: list[bytes] = []
    feed = TRANSLATORS[endpoint].feed

    def watching_feed(self, event):
        if event.get("type") == "response.completed":
            try:
                seen_at_end.append(client.recv(1 << 20, socket.MSG_PEEK))
            except BlockingIOError:
                seen_at_end.append(b"")
        return feed(self, event)

    monkeypatch.setattr(TRANSLATORS[endpoint], "feed", watching_feed)
    raw = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(client, f"{head}Content-Length: {len(raw)}\r\n\r\n".encode() + raw)
    received = bytearray()
    while chunk := await asyncio.wait_for(loop.sock_recv(client, 1 << 20), 10):
        received.extend(chunk)
    client.close()
    assert received.startswith(b"HTTP/1.1 200"), bytes(received[:200])
    assert TOKEN[endpoint] in received and b" world" in received
    assert len(seen_at_end) == 1
    assert TOKEN[endpoint] in seen_at_end[0], "the first token waited for the rest of its read"
