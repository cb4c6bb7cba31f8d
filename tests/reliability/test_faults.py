"""Fault injection: every upstream fault, on every API endpoint, streaming and not.

Before the first byte a client gets the right status with an error body in its dialect; once a stream has
started it gets the dialect's terminal in-band error (chat: an ``error`` chunk and no ``[DONE]``; messages:
``event: error``; responses: ``error`` then ``response.failed``). Always within the idle-timeout bound, and
codexd stays healthy.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.fakes.scripts import Builder, Script, Step, usage_limit_error
from tests.handlers.client import get
from tests.harness import Stack
from tests.reliability.conftest import IDLE_TIMEOUT
from tests.reliability.wire import (
    STREAMING,
    Endpoint,
    assert_error_body,
    assert_in_band_failure,
    fetch,
    plain_text,
    streamed_text,
    wait_for,
)

pytestmark = pytest.mark.gen_test(timeout=20)

ANSWER = "The quick brown fox jumps over the lazy dog."
MID = 6  # events sent before a mid-stream fault: created, in_progress, item added, part added, two deltas
BOUND = 2 * IDLE_TIMEOUT + 1.5  # seconds any fault may take to reach the client (retry backoff included)


def answer() -> Script:
    return Script.events(Builder().start().text(ANSWER).completed())


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Fault:
    """An upstream fault; ``stream_status`` None means a streaming client sees it in-band."""

    name: str
    script: Callable[[], Script] | None
    stream_status: int | None
    plain_status: int
    hint: str  # a word the error message must contain

    def install(self, stack: Stack) -> None:
        if self.script is None:  # nothing listens: connection refused
            url = f"http://127.0.0.1:{closed_port()}/backend-api/codex"
            stack.state.settings = stack.state.settings.replace(chatgpt_base_url=url)
            stack.state.upstream.settings = stack.state.settings
        else:
            stack.backend.state.default = self.script()


BOOM = {"error": {"message": "boom", "type": "server_error"}}
GARBAGE = b"\x00\xff\xfe\x80garbage\x1b[0m\r\n\n"
NOT_JSON = (b"data: not json at all\n\n", b"event: x\ndata: {oops}\n\n", b"data: [DONE]\n\n")
FAULTS = [
    Fault("connection_refused", None, 502, 502, "cannot reach"),
    Fault("reset_before_headers", Script.reset, 502, 502, "cannot reach"),
    Fault("stall_before_headers", lambda: Script(header_delay=5.0), 504, 504, "no answer within"),
    Fault(
        "http_500", lambda: Script.error(500, {"error": {"message": "boom", "type": "server_error"}}), 500, 500, "boom"
    ),
    Fault("http_503", lambda: Script.error(503, "Service Unavailable"), 503, 503, "503"),
    Fault("usage_limit_429", usage_limit_error, 429, 429, "usage limit"),
    Fault("reset_mid_stream", lambda: answer().then_reset(MID), None, 502, "broke"),
    Fault("drop_mid_stream", lambda: answer().then_drop(MID), None, 502, "broke"),
    Fault("stall_mid_stream", lambda: answer().then_stall(MID, 5.0), None, 504, "silent"),
    Fault(
        "garbage_bytes", lambda: answer().then_raw(MID, b"\x00\xff\xfe\x80garbage\x1b[0m\r\n\n"), None, 502, "before"
    ),
    Fault(
        "non_json_data",
        lambda: answer().then_raw(
            MID, b"data: not json at all\n\n", b"event: x\ndata: {oops}\n\n", b"data: [DONE]\n\n"
        ),
        None,
        502,
        "before",
    ),
    Fault(
        "truncated_json",
        lambda: answer().then_raw(MID, b'event: response.completed\ndata: {"type":"response.completed","resp'),
        None,
        502,
        "before",
    ),
    Fault("no_terminal_event", lambda: answer().without_terminal(), None, 502, "before"),
]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
async def test_fault_reaches_the_client_in_its_dialect(stack, error_trap, fault: Fault, endpoint: Endpoint, stream):
    fault.install(stack)
    got = await fetch(stack.url + endpoint.path, endpoint.body(stream))
    assert got.elapsed < BOUND, f"the client waited {got.elapsed:.2f} s"
    status = fault.stream_status if stream else fault.plain_status
    if status is None:
        error = assert_in_band_failure(endpoint, got)
        assert ANSWER.startswith(streamed_text(endpoint, got))  # what arrived is a true prefix, nothing twice
    else:
        assert got.code == status, got.raw[:300]
        error = assert_error_body(endpoint.dialect, got.json())
        if status == 429:
            assert int(got.headers["Retry-After"]) == 13872
    assert fault.hint in error["message"].lower() or fault.hint in str(error.get("code")), error
    assert "Traceback" not in got.raw.decode("utf-8", "replace")
    assert (await get(stack.url + "/health")).code == 200
    await wait_for(lambda: not stack.state.in_flight, 2, "no request in flight")
    await wait_for(lambda: stack.backend.state.open_streams == 0, 2, "the upstream stream closed")


@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_malformed_lines_between_good_events_are_skipped(stack, error_trap, endpoint: Endpoint):
    script = answer()
    noise = [b": comment\n\n", b"data: [not json\n\n", b"\xff\xfe\n\n", b"data: 42\n\n", b'data: "str"\n\n']
    for at, raw in enumerate(noise):
        script.steps.insert(2 + 2 * at, Step(raw=raw))
    stack.backend.state.push(script)
    got = await fetch(stack.url + endpoint.path, endpoint.body(True))
    assert got.code == 200
    assert streamed_text(endpoint, got) == ANSWER
    assert not [e for e in got.events() if e.event == "error" or '"error"' in e.data[:20]]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_lone_surrogate_from_the_upstream_is_relayed_escaped(stack, error_trap, endpoint, stream):
    # Valid JSON, invalid Unicode: "\ud800" has no UTF-8 encoding, so it must reach the client escaped.
    script = Script.events(Builder().start().text("ab\ud800cd", pieces=["ab", "\ud800", "cd"]).completed())
    stack.backend.state.push(script)
    got = await fetch(stack.url + endpoint.path, endpoint.body(stream))
    assert got.code == 200, got.raw[:300]
    assert got.raw.decode("utf-8")  # the bytes are valid UTF-8
    if stream:
        assert streamed_text(endpoint, got) == "ab\ud800cd"
        assert not [e for e in got.events() if e.event == "error" or e.data.startswith('{"error"')]
    else:
        assert plain_text(endpoint, got.json()) == "ab\ud800cd"


@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_a_bug_mid_stream_still_ends_with_the_dialect_error(stack, monkeypatch, caplog, endpoint):
    from codexd.translate.chat_stream import ResponsesToChat
    from codexd.translate.messages_stream import ResponsesToMessages
    from codexd.translate.responses_stream import ResponsesPassthrough

    cls = {"responses": ResponsesPassthrough, "chat": ResponsesToChat, "messages": ResponsesToMessages}[endpoint.name]
    real_feed = cls.feed

    def buggy_feed(self, event):  # type: ignore[no-untyped-def]
        if event.get("type") == "response.output_text.done":
            raise KeyError("a bug in a translator")
        return real_feed(self, event)

    monkeypatch.setattr(cls, "feed", buggy_feed)
    stack.backend.state.push(answer())
    got = await fetch(stack.url + endpoint.path, endpoint.body(True))
    error = assert_in_band_failure(endpoint, got)  # not a clean end that a client would take for success
    assert "internal error" in error["message"]
    assert "unexpected error in a started stream" in caplog.text
    await wait_for(lambda: stack.backend.state.open_streams == 0, 2, "the upstream stream closed")
