"""/v1/messages at the HTTP level: framing, pings during silence, query strings, errors in Anthropic's shape;
/v1/messages/count_tokens of a long conversation without holding running streams up."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from typing import Any

import pytest

from codexd.jsonbody import dumps_body
from codexd.models import ModelMap
from codexd.translate.count_tokens import count_tokens
from codexd.translate.messages_request import to_responses
from tests.fakes.scripts import Builder, Script
from tests.handlers.client import body_json, post_json, stream_sse
from tests.reliability.wire import wait_for

pytestmark = pytest.mark.gen_test(timeout=20)

BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 100,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


async def test_every_event_has_its_name_and_pings_fill_silence(stack):
    stack.state.settings = stack.state.settings.replace(ping_interval=0.2)
    stack.backend.state.push(Script.events(Builder().start().text("slow answer").completed()).then_stall(3, 1.0))
    read = await stream_sse(f"{stack.url}/v1/messages?beta=true", BODY, {"anthropic-version": "2023-06-01"})
    assert read.code == 200
    names = [e.event for e in read.events]
    assert all(names)
    assert next(e.event for e in read.events if e.event != "ping") == "message_start"
    assert names[-1] == "message_stop"
    assert names.count("ping") >= 3
    for event, payload in zip(names, read.json(), strict=True):
        assert payload["type"] == event


async def test_request_id_header_and_error_shape(stack):
    resp = await post_json(f"{stack.url}/v1/messages", {"model": "claude-sonnet-4-6", "messages": "nope"})
    assert resp.code == 400
    body = body_json(resp)
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert resp.headers["request-id"] == body["request_id"]


async def test_unknown_messages_path_is_anthropic_404(stack):
    resp = await post_json(f"{stack.url}/v1/messages/batches", {})
    assert resp.code == 404
    assert body_json(resp)["error"]["type"] == "not_found_error"


async def test_local_api_key_failure_is_anthropic_authentication_error(stack):
    stack.state.settings = stack.state.settings.replace(api_key="k-123456")
    resp = await post_json(f"{stack.url}/v1/messages", BODY)
    assert resp.code == 401
    assert body_json(resp)["error"]["type"] == "authentication_error"
    ok = await stream_sse(f"{stack.url}/v1/messages", BODY, {"x-api-key": "k-123456"})
    assert ok.code == 200


async def test_claude_session_header_becomes_stable_cache_key(stack):
    headers = {"X-Claude-Code-Session-Id": "4f0c7a4e-1111-2222-3333-444455556666"}
    await stream_sse(f"{stack.url}/v1/messages", BODY, headers)
    await stream_sse(f"{stack.url}/v1/messages", {**BODY, "messages": BODY["messages"] * 3}, headers)
    first, second = (p.body["prompt_cache_key"] for p in stack.backend.state.posts)
    assert first == second
    assert stack.backend.state.posts[0].headers.get("Session-Id")


async def test_a_resent_tool_list_reaches_upstream_as_sent_and_a_change_at_its_end_is_seen(stack):
    """Large tool lists resent with the same text are reused as parsed before (codexd.jsonparse); one that
    differs only in its last characters is a different list upstream."""

    def tools(last: str) -> list[dict[str, object]]:
        schema = {"type": "object", "properties": {"path": {"type": "string"}}}
        listed = [{"name": f"Tool{n}", "description": "Reads a file. " * 20, "input_schema": schema} for n in range(30)]
        listed[-1]["description"] = last
        return listed

    sent = {}
    for last in ("Ends here.", "Ends hare.", "Ends here.", "Ends hare."):  # the same length
        resp = await post_json(f"{stack.url}/v1/messages", {**BODY, "stream": False, "tools": tools(last)})
        assert resp.code == 200, resp.body
        upstream = stack.backend.state.posts[-1].body["tools"]
        assert len(upstream) == 30 and upstream[-1]["description"] == last
        assert sent.setdefault(last, upstream) == upstream


async def test_each_turn_of_a_resent_conversation_reaches_upstream_as_sent(stack):
    """The messages of a conversation resent with the same text are reused as parsed and translated before
    (codexd.jsonparse, translate/progress.py); one that changed, a moved cache mark, and new ones are not."""

    def conversation(turns: int, result: str = "output ") -> list[dict[str, object]]:
        messages: list[dict[str, object]] = [{"role": "user", "content": "Fix the failing test."}]
        for n in range(turns):
            call = {"type": "tool_use", "id": f"toolu_{n}", "name": "Read", "input": {"path": f"/src/f{n}.py"}}
            messages.append({"role": "assistant", "content": [{"type": "text", "text": f"Step {n}."}, call]})
            done = {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": result * 100}
            messages.append({"role": "user", "content": [done]})
        messages[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}  # type: ignore[index]
        return messages

    turns = [conversation(10), conversation(11), conversation(11, "outpat "), conversation(12), conversation(10)]
    for messages in turns:
        body = {**BODY, "stream": False, "messages": messages}
        resp = await post_json(f"{stack.url}/v1/messages", body)
        assert resp.code == 200, resp.body
        settings = stack.state.settings
        expected = to_responses(
            json.loads(json.dumps(body)),  # a plain copy: nothing remembered
            models=ModelMap(settings.default_model, settings.small_model, settings.aliases),
            instructions=settings.instructions,
            default_effort=settings.reasoning_effort,
        )
        assert stack.backend.state.posts[-1].body == json.loads(dumps_body(expected.body))


def _long_conversation(line: str) -> list[dict[str, Any]]:
    return [{"role": ("user", "assistant")[i % 2], "content": line * 250} for i in range(60)]


def _one_long_result(line: str) -> list[dict[str, Any]]:
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": line * 15_000}
    return [{"role": "user", "content": [result]}]


def _one_minified_result(line: str) -> list[dict[str, Any]]:
    rows = [{"id": i, "path": f"/src/module_{i}.py", "lines": [i, i + 40], "ok": True} for i in range(22_000)]
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": json.dumps(rows, separators=(",", ":"))}
    return [{"role": "user", "content": [result]}]  # no space or line break in its 1.6 MB


def _one_hex_result(line: str) -> list[dict[str, Any]]:
    digests = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(20_000))
    return [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": digests}]}]


@pytest.mark.parametrize(
    "conversation",
    [_long_conversation, _one_long_result, _one_minified_result, _one_hex_result],
    ids=["many-messages", "one-message", "minified-json", "hex"],
)
async def test_counting_a_long_conversation_lets_running_streams_through(stack, conversation):
    pieces = [f"w{i} " for i in range(150)]
    script = Script.events(Builder().start().text("".join(pieces), pieces=pieces).completed(), interval=0.01)
    stack.backend.state.push(script)
    started = time.monotonic()
    reading = asyncio.ensure_future(stream_sse(f"{stack.url}/v1/responses", {"input": "x", "stream": True}))
    await wait_for(lambda: stack.backend.state.open_streams == 1, 5, "the stream to start")
    line = "def handler(request):  # the answer's first bytes\n    return request.body[:40] + b'...'\n"
    body = {"model": "claude-sonnet-4-6", "messages": conversation(line)}  # 1.3 MB
    t0 = time.monotonic() - started
    resp = await post_json(f"{stack.url}/v1/messages/count_tokens", body)
    t1 = time.monotonic() - started
    read = await reading
    assert resp.code == 200 and body_json(resp)["input_tokens"] == count_tokens(body)
    assert read.json()[-1]["type"] == "response.completed"
    # The stream's events 10 ms apart kept coming while the estimate ran (it took 0.3 s here): on the event
    # loop in one go, it held them all back until it was done.
    gaps = [b - a for a, b in itertools.pairwise(read.times) if b > t0 and a < t1]
    assert gaps and max(gaps) < (t1 - t0) / 2, f"longest gap {max(gaps):.3f} s in a count of {t1 - t0:.3f} s"
