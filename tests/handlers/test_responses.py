"""``/v1/responses``: normalisation on the wire, streaming pass-through, aggregation, transport quirks."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.fakes.scripts import Builder, Script, Step
from tests.handlers.client import body_json, get, post_json, stream_sse

pytestmark = pytest.mark.gen_test(timeout=20)


async def test_non_streaming_request_is_normalised_and_aggregated(stack):
    body = {
        "model": "gpt-5.5",
        "input": [
            {"role": "system", "content": "Be terse."},
            {"type": "message", "role": "user", "id": "msg_1", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "reasoning", "id": "rs_old", "summary": []},
        ],
        "temperature": 0.3,
        "top_p": 1,
        "max_output_tokens": 100,
        "previous_response_id": "resp_x",
        "store": True,
    }
    resp = await post_json(f"{stack.url}/v1/responses", body)
    assert resp.code == 200, resp.body
    answer = body_json(resp)
    assert answer["status"] == "completed"
    texts = [p["text"] for item in answer["output"] if item["type"] == "message" for p in item["content"]]
    assert texts == ["Hello! How can I help you today?"]
    assert answer["usage"]["input_tokens"] == 2239
    sent = stack.backend.state.posts[-1].body
    assert sent["stream"] is True and sent["store"] is False
    assert sent["instructions"] == "Be terse."
    assert not {"temperature", "top_p", "max_output_tokens", "previous_response_id"} & set(sent)
    assert sent["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]


async def test_each_turn_of_a_resent_input_reaches_upstream_as_sent(stack):
    """A large ``input`` resent with more items is read only where it changed (codexd.jsonparse); what reaches
    the backend is the whole of each turn, ids stripped as always."""

    def turn(n: int, said: str = "Done.") -> list[dict[str, object]]:
        call = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "shell", "arguments": "{}"}
        output = {"type": "function_call_output", "call_id": f"call_{n}", "output": f"{said} " * 60}
        return [call, output]

    start = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix it."}]}]
    turns = [start + turn(0) + turn(1), start + turn(0) + turn(1) + turn(2), start + turn(0, "Dune.") + turn(1)]
    for items in turns * 2:
        resp = await post_json(f"{stack.url}/v1/responses", {"model": "gpt-5.5", "input": items * 8})
        assert resp.code == 200, resp.body
        expected = [{k: v for k, v in item.items() if k != "id"} for item in items * 8]
        assert stack.backend.state.posts[-1].body["input"] == expected


async def test_later_system_message_becomes_developer_and_default_instructions(stack):
    body = {
        "model": "gpt-5.5",
        "input": [{"role": "user", "content": "a"}, {"role": "system", "content": "rule"}],
        "stream": False,
    }
    resp = await post_json(f"{stack.url}/v1/responses", body)
    assert resp.code == 200, resp.body
    sent = stack.backend.state.posts[-1].body
    assert sent["instructions"] == "You are a helpful assistant."
    assert [i["role"] for i in sent["input"]] == ["user", "developer"]


async def test_model_alias_is_resolved(stack):
    stack.state.settings = stack.state.settings.replace(aliases={"fast": "gpt-5.4-mini"})
    resp = await post_json(f"{stack.url}/v1/responses", {"model": "fast", "input": "hi"})
    assert resp.code == 200
    assert stack.backend.state.posts[-1].body["model"] == "gpt-5.4-mini"


async def test_streaming_passes_events_through_as_they_arrive(stack):
    events = Builder().start().reasoning(["thinking"]).text("one two three four").completed()
    stack.backend.state.push(Script.events(events, interval=0.05))
    read = await stream_sse(f"{stack.url}/v1/responses", {"model": "gpt-5.5", "input": "hi", "stream": True})
    assert read.code == 200
    assert read.headers["Content-Type"].startswith("text/event-stream")
    received = [json.loads(e.data) for e in read.events]
    assert received[:-1] == events[:-1]
    # The terminal event is passed on with its empty output filled from the output_item.done items.
    items = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert received[-1] == {**events[-1], "response": {**events[-1]["response"], "output": items}}
    assert [e.event for e in read.events] == [e["type"] for e in events]
    # Incremental: events arrived spread over the stream, not in one lump at the end.
    assert read.times[-1] - read.times[0] > 0.5
    assert read.chunks > len(events) // 2


async def test_streaming_sends_the_upstreams_own_text(stack):
    # Non-ASCII text escaped (\u00e9 for é): a parse and re-encode would send it as UTF-8 instead.
    events = Builder().start().text("café au lait", pieces=["café ", "au lait"]).completed()
    events[0]["response"]["instructions"] = "Réponds en français."
    texts = [json.dumps(e, separators=(",", ":")) for e in events]
    frames = [f"event: {e['type']}\ndata: {t}\n\n".encode() for e, t in zip(events, texts, strict=True)]
    stack.backend.state.push(Script(steps=[Step(raw=f) for f in frames]))
    read = await stream_sse(f"{stack.url}/v1/responses", {"model": "gpt-5.5", "input": "hi", "stream": True})
    assert read.code == 200
    sent = {e["type"]: t for e, t in zip(events, texts, strict=True)}
    deltas = [e.data for e in read.events if e.event == "response.output_text.delta"]
    assert deltas == [t for e, t in zip(events, texts, strict=True) if e["type"] == "response.output_text.delta"]
    assert "\\u00e9" in deltas[0]
    created = next(e.data for e in read.events if e.event == "response.created")
    assert created == sent["response.created"] and "R\\u00e9ponds" in created
    assert [json.loads(e.data) for e in read.events][:-1] == events[:-1]  # the terminal one gets its output


async def test_data_that_is_not_an_event_is_not_passed_on(stack):
    events = Builder().start().text("ok").completed()
    frames = [f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events]
    frames.insert(2, b"event: response.in_progress\ndata: {oops}\n\n")
    frames.insert(3, b'event: response.in_progress\ndata: {"type":"response.in_progress","response":{"id":"r"\n\n')
    stack.backend.state.push(Script(steps=[Step(raw=f) for f in frames]))
    read = await stream_sse(f"{stack.url}/v1/responses", {"model": "gpt-5.5", "input": "hi", "stream": True})
    assert read.code == 200
    received = [json.loads(e.data) for e in read.events]
    assert received[:-1] == events[:-1] and received[-1]["type"] == events[-1]["type"]


async def test_response_completed_output_empty_is_backfilled(stack):
    events = Builder().start().tool_calls([("get_weather", '{"city":"Paris"}')]).completed(full_output=False)
    stack.backend.state.push(Script.events(events))
    resp = await post_json(f"{stack.url}/v1/responses", {"model": "gpt-5.5", "input": "weather?"})
    output = body_json(resp)["output"]
    assert [item["type"] for item in output] == ["function_call"]
    assert output[0]["arguments"] == '{"city":"Paris"}'


async def test_stream_without_terminal_event_ends_with_response_failed(stack):
    events = Builder().start().text("partial").completed()
    stack.backend.state.push(Script.events(events).without_terminal())
    read = await stream_sse(f"{stack.url}/v1/responses", {"input": "hi", "stream": True})
    assert [e.event for e in read.events][-2:] == ["error", "response.failed"]
    failed = read.json()[-1]
    # The response object is the one the stream started with (its id, model, instructions), marked failed.
    assert failed["response"] == {
        **events[1]["response"],
        "status": "failed",
        "error": {"code": "upstream_incomplete", "message": failed["response"]["error"]["message"]},
    }
    assert failed["sequence_number"] == len(events)


async def test_non_streaming_failure_is_an_http_error(stack):
    stack.backend.state.push(Script.events(Builder().start().failed("context_length_exceeded", "too long")))
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 400
    assert body_json(resp)["error"]["code"] == "context_length_exceeded"


async def test_gzip_body_is_decoded(stack):
    raw = gzip.compress(json.dumps({"model": "gpt-5.5", "input": "zipped"}).encode())
    resp = await post_json(f"{stack.url}/v1/responses", raw, {"Content-Encoding": "gzip"})
    assert resp.code == 200, resp.body
    assert stack.backend.state.posts[-1].body["input"][0]["content"][0]["text"] == "zipped"


async def test_websocket_upgrade_gets_426(stack):
    resp = await get(f"{stack.url}/v1/responses", {"Upgrade": "websocket", "Connection": "Upgrade"})
    assert resp.code == 426
    assert "error" in body_json(resp)


async def test_backend_validation_error_is_passed_back_in_openai_shape(stack):
    stack.backend.state.push(Script.error(400, {"detail": "The 'gpt-9' model is not supported"}))
    resp = await post_json(f"{stack.url}/v1/responses", {"model": "gpt-9", "input": "hi"})
    assert resp.code == 400
    assert body_json(resp)["error"]["message"] == "The 'gpt-9' model is not supported"
    assert body_json(resp)["error"]["type"] == "invalid_request_error"


async def test_identity_headers_forwarded_and_turn_state_returned(stack):
    headers = {
        "session_id": "sess-1",
        "thread-id": "th-1",
        "x-codex-turn-state": "ts-abc",
        "x-codex-window-id": "th-1:0",
        "originator": "codex_exec",
        "Authorization": "Bearer local",
    }
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"}, headers)
    assert resp.code == 200
    seen = {k.lower(): v for k, v in stack.backend.state.posts[-1].headers.items()}
    assert seen["session-id"] == "sess-1" and seen["thread-id"] == "th-1"
    assert seen["x-codex-window-id"] == "th-1:0" and seen["originator"] == "codex_exec"
    assert seen["authorization"] != "Bearer local"  # the client's auth never goes upstream
    assert seen["chatgpt-account-id"]
    assert resp.headers["x-codex-turn-state"] == "ts-abc"


async def test_usage_limit_becomes_429_with_retry_after(stack):
    from tests.fakes.scripts import usage_limit_error

    stack.backend.state.push(usage_limit_error(resets_in=120))
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 429
    assert resp.headers["Retry-After"] == "120"
    assert body_json(resp)["error"]["code"] == "usage_limit_reached"
    ready = body_json(await get(f"{stack.url}/ready"))
    primary = next(w for w in ready["rate_limits"] if w["window"] == "primary")
    assert primary["used_percent"] == 100.0
