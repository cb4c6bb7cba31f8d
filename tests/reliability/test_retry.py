"""The one retry: a transient failure before the first byte is retried once, after a backoff; nothing is
retried once bytes have reached the client, so no output is ever duplicated."""

from __future__ import annotations

from typing import Any

import pytest

from codexd.upstream import client as upstream_client
from tests.fakes.scripts import Builder, Script
from tests.reliability.test_faults import ANSWER, MID, answer, closed_port
from tests.reliability.wire import (
    STREAMING,
    Endpoint,
    assert_error_body,
    assert_in_band_failure,
    fetch,
    plain_text,
    streamed_text,
)

pytestmark = pytest.mark.gen_test(timeout=20)

TRANSIENT = {
    "reset": Script.reset,
    "502": lambda: Script.error(502, "<html>Bad Gateway</html>"),
    "503": lambda: Script.error(503, {"detail": "busy"}),
    "504": lambda: Script.error(504, "Gateway Timeout"),
}


def text_of(endpoint: Endpoint, stream: bool, got: Any) -> str:
    return streamed_text(endpoint, got) if stream else plain_text(endpoint, got.json())


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
@pytest.mark.parametrize("fault", sorted(TRANSIENT))
async def test_transient_failure_before_the_first_byte_is_retried_once(stack, error_trap, fault, endpoint, stream):
    stack.backend.state.push(TRANSIENT[fault](), answer())
    got = await fetch(stack.url + endpoint.path, endpoint.body(stream))
    assert got.code == 200, got.raw[:300]
    assert len(stack.backend.state.posts) == 2
    assert text_of(endpoint, stream, got) == ANSWER  # once, not twice


@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_second_transient_failure_is_the_answer(stack, error_trap, endpoint):
    stack.backend.state.push(Script.reset(), Script.error(503, {"detail": "busy"}), answer())
    got = await fetch(stack.url + endpoint.path, endpoint.body(True))
    assert got.code == 503
    assert_error_body(endpoint.dialect, got.json())
    assert len(stack.backend.state.posts) == 2


async def test_retry_waits_a_backoff(stack, error_trap, monkeypatch):
    monkeypatch.setattr(upstream_client, "RETRY_BACKOFF", 0.25)
    stack.backend.state.push(Script.error(502, "bad gateway"), answer())
    got = await fetch(stack.url + "/v1/responses", {"input": "hi"})
    assert got.code == 200
    first, second = stack.backend.state.posts
    assert 0.25 <= second.at - first.at < 1.0


async def test_connection_refused_is_tried_twice(stack, error_trap):
    url = f"http://127.0.0.1:{closed_port()}/backend-api/codex"
    stack.state.settings = stack.state.settings.replace(chatgpt_base_url=url)
    stack.state.upstream.settings = stack.state.settings
    starts = []
    real_start = stack.state.upstream._start

    def counting_start(*args: Any) -> Any:
        starts.append(args[1])
        return real_start(*args)

    stack.state.upstream._start = counting_start
    got = await fetch(stack.url + "/v1/chat/completions", STREAMING[1].body(True))
    assert got.code == 502
    assert starts == ["/responses", "/responses"]


MID_STREAM = {
    "reset": lambda: answer().then_reset(MID),
    "drop": lambda: answer().then_drop(MID),
    "drop_right_after_headers": lambda: answer().then_drop(0),
    "failed_event": lambda: Script.events(Builder().start().text(ANSWER).failed()),
}


@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
@pytest.mark.parametrize("fault", sorted(MID_STREAM))
async def test_failure_after_the_first_byte_is_never_retried(stack, error_trap, fault, endpoint):
    stack.backend.state.push(MID_STREAM[fault](), answer(), answer())
    got = await fetch(stack.url + endpoint.path, endpoint.body(True))
    assert_in_band_failure(endpoint, got, by_codexd=fault != "failed_event")
    text = streamed_text(endpoint, got)
    assert ANSWER.startswith(text) and text.count("The quick") <= 1
    assert len(stack.backend.state.posts) == 1


@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_non_streaming_mid_stream_failure_is_not_retried(stack, error_trap, endpoint):
    stack.backend.state.push(answer().then_reset(MID), answer())
    got = await fetch(stack.url + endpoint.path, endpoint.body(False))
    assert got.code == 502
    assert_error_body(endpoint.dialect, got.json())
    assert len(stack.backend.state.posts) == 1


@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_usage_limit_and_server_error_are_not_retried(stack, error_trap, endpoint):
    from tests.fakes.scripts import usage_limit_error

    stack.backend.state.push(usage_limit_error(), Script.error(500, {"detail": "boom"}), answer())
    assert (await fetch(stack.url + endpoint.path, endpoint.body(True))).code == 429
    assert (await fetch(stack.url + endpoint.path, endpoint.body(True))).code == 500
    assert len(stack.backend.state.posts) == 2
