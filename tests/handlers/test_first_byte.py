"""A streamed answer's 200 and headers reach the client as soon as the upstream's headers do, whether the
first events came with them or the upstream is slow to send any."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

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
