"""ResponsesToMessages and message_from, on event lists shaped like the real upstream captures.

Every streamed answer is also run through the official anthropic SDK (its SSE parser and stream
accumulator, over an in-memory transport) and must equal the non-streaming ``message_from`` result.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from codexd.errors import CodexdError, ErrorKind
from codexd.models import ModelMap
from codexd.sse import encode
from codexd.translate import thinking_signature
from codexd.translate.aggregate import ResponseAggregator, Usage
from codexd.translate.messages_request import to_responses
from codexd.translate.messages_stream import ResponsesToMessages, message_failure, message_from
from codexd.translate.protocol import ECHO_EVENTS
from tests.fakes.scripts import response_object

try:  # the SDK moved to httpx2; older releases use httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

MODEL = "claude-sonnet-4-5-20250929"
SDK_MODEL = "codexd-test-model"  # what the SDK asks for; a real name could trip its deprecation warnings
MSG_ID = "msg_test0001"
RESP_ID = "resp_0b51be2101d9d6220168d469589190819b945ffe7a83ece6cf"
USAGE = {
    "input_tokens": 2259,
    "input_tokens_details": {"cached_tokens": 2176},
    "output_tokens": 395,
    "output_tokens_details": {"reasoning_tokens": 320},
    "total_tokens": 2654,
}
EVENTS = TypeAdapter(RawMessageStreamEvent)


class Upstream:
    """Builds an upstream event list with the captures' shapes (sequence numbers, obfuscation, logprobs)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.output: list[dict[str, Any]] = []

    def add(self, kind: str, **fields: Any) -> None:
        self.events.append({"type": kind, "sequence_number": len(self.events), **fields})

    def response(self, status: str, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"reasoning": {"effort": "medium", "summary": "detailed"}, **extra}
        return response_object(status, resp_id=RESP_ID, model="gpt-5-2025-08-07", **fields)

    def created(self) -> Upstream:
        self.add("response.created", response=self.response("in_progress"))
        self.add("response.in_progress", response=self.response("in_progress"))
        return self

    def reasoning(self, rid: str, parts: list[str], enc: str | None = None) -> Upstream:
        index = len(self.output)
        self.add("response.output_item.added", output_index=index, item={"id": rid, "type": "reasoning", "summary": []})
        for n, text in enumerate(parts):
            part = {"type": "summary_text", "text": ""}
            self.add(
                "response.reasoning_summary_part.added", item_id=rid, output_index=index, summary_index=n, part=part
            )
            for chunk in _chunks(text):
                self.add(
                    "response.reasoning_summary_text.delta",
                    item_id=rid,
                    output_index=index,
                    summary_index=n,
                    delta=chunk,
                    obfuscation="bTnou60E",
                )
            self.add(
                "response.reasoning_summary_text.done", item_id=rid, output_index=index, summary_index=n, text=text
            )
            done = {"type": "summary_text", "text": text}
            self.add(
                "response.reasoning_summary_part.done", item_id=rid, output_index=index, summary_index=n, part=done
            )
        item: dict[str, Any] = {
            "id": rid,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": t} for t in parts],
        }
        if enc is not None:
            item["encrypted_content"] = enc
        return self.done(item)

    def message(self, mid: str, text: str, *, stream: bool = True) -> Upstream:
        index = len(self.output)
        added = {"id": mid, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        self.add("response.output_item.added", output_index=index, item=added)
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        self.add("response.content_part.added", item_id=mid, output_index=index, content_index=0, part=part)
        for chunk in _chunks(text) if stream else []:
            self.add(
                "response.output_text.delta",
                item_id=mid,
                output_index=index,
                content_index=0,
                delta=chunk,
                logprobs=[],
                obfuscation="1irxx2aXDjHEn",
            )
        self.add("response.output_text.done", item_id=mid, output_index=index, content_index=0, text=text, logprobs=[])
        full = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        self.add("response.content_part.done", item_id=mid, output_index=index, content_index=0, part=full)
        return self.done({"id": mid, "type": "message", "status": "completed", "content": [full], "role": "assistant"})

    def call_added(self, fid: str, call_id: str, name: str) -> int:
        index = len(self.output)
        self.output.append({})  # reserve the output index
        item = {
            "id": fid,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": call_id,
            "name": name,
        }
        self.add("response.output_item.added", output_index=index, item=item)
        return index

    def call_delta(self, fid: str, index: int, delta: str) -> None:
        self.add(
            "response.function_call_arguments.delta",
            item_id=fid,
            output_index=index,
            delta=delta,
            obfuscation="FAU4c0Q0",
        )

    def call_done(self, fid: str, index: int, call_id: str, name: str, arguments: str) -> None:
        self.add("response.function_call_arguments.done", item_id=fid, output_index=index, arguments=arguments)
        item = {
            "id": fid,
            "type": "function_call",
            "status": "completed",
            "arguments": arguments,
            "call_id": call_id,
            "name": name,
        }
        self.output[index] = item
        self.add("response.output_item.done", output_index=index, item=item)

    def call(self, fid: str, call_id: str, name: str, arguments: str) -> Upstream:
        index = self.call_added(fid, call_id, name)
        for chunk in _chunks(arguments, 5):
            self.call_delta(fid, index, chunk)
        self.call_done(fid, index, call_id, name, arguments)
        return self

    def done(self, item: dict[str, Any]) -> Upstream:
        self.add("response.output_item.done", output_index=len(self.output), item=item)
        self.output.append(item)
        return self

    def completed(self, usage: dict[str, Any] | None = USAGE, *, output: bool = True) -> list[dict[str, Any]]:
        listed = list(self.output) if output else []
        self.add("response.completed", response=self.response("completed", output=listed, usage=usage))
        return self.events

    def incomplete(self, reason: str) -> list[dict[str, Any]]:
        resp = self.response("incomplete", output=list(self.output), usage=USAGE, incomplete_details={"reason": reason})
        self.add("response.incomplete", response=resp)
        return self.events


def _chunks(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def translate(events: list[dict[str, Any]], **kwargs: Any) -> tuple[list[tuple[str | None, Any]], ResponsesToMessages]:
    kwargs.setdefault("message_id", MSG_ID)
    kwargs.setdefault("model", MODEL)
    translator = ResponsesToMessages(**kwargs)
    frames = [frame for event in events for frame in translator.feed(event)] + translator.finish()
    # Text and thinking deltas arrive pre-rendered as JSON text (the translator's fast path); the rest as dicts.
    return [(name, json.loads(p) if isinstance(p, str) else p) for name, p in frames], translator


def aggregate(events: list[dict[str, Any]]) -> ResponseAggregator:
    agg = ResponseAggregator()
    for event in events:
        agg.feed(event)
    return agg


def check_frames(frames: list[tuple[str | None, Any]]) -> None:
    """Every frame is named after its payload type, validates against the SDK's event union, and the block
    indexes are consecutive with one block open at a time."""
    open_index: int | None = None
    next_index = 0
    for name, payload in frames:
        assert name == payload["type"]
        if name in ("ping", "error"):
            continue
        EVENTS.validate_python(payload)
        if name == "content_block_start":
            assert open_index is None and payload["index"] == next_index
            open_index, next_index = payload["index"], next_index + 1
        elif name == "content_block_delta":
            assert payload["index"] == open_index
        elif name == "content_block_stop":
            assert payload["index"] == open_index
            open_index = None
    assert open_index is None


def sdk_client(body: bytes, content_type: str) -> anthropic.Anthropic:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": content_type, "request-id": "req_1"}, content=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return anthropic.Anthropic(api_key="test", base_url="http://127.0.0.1:9", http_client=http, max_retries=0)


def sdk_stream(frames: list[tuple[str | None, Any]]) -> Message:
    """The final message the official SDK accumulates from our frames, sent as SSE bytes."""
    body = b"".join(encode(payload, name) for name, payload in frames)
    client = sdk_client(body, "text/event-stream")
    with client.messages.stream(
        model=SDK_MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        return stream.get_final_message()


def sdk_message(message: dict[str, Any]) -> Message:
    """The message the SDK parses from our non-streaming JSON answer."""
    client = sdk_client(json.dumps(message).encode(), "application/json")
    return client.messages.create(model=SDK_MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}])


def assert_stream_matches_message(events: list[dict[str, Any]], **kwargs: Any) -> Message:
    frames, _ = translate(events, **kwargs)
    check_frames(frames)
    streamed = sdk_stream(frames)
    built = message_from(aggregate(events), message_id=MSG_ID, model=MODEL, **kwargs)
    parsed = sdk_message(built)
    assert streamed.model_dump(exclude_none=True) == parsed.model_dump(exclude_none=True)
    return parsed


def names(frames: list[tuple[str | None, Any]]) -> list[str | None]:
    return [name for name, _ in frames]


# --- plain answers ------------------------------------------------------------------------------------


def test_text_answer_streams_in_the_anthropic_order() -> None:
    events = Upstream().created().reasoning("rs_1", []).message("msg_1", "Hey! How can I help you today?").completed()
    frames, translator = translate(events)
    assert names(frames)[:3] == ["message_start", "ping", "content_block_start"]
    assert names(frames)[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = frames[0][1]["message"]
    assert start["id"] == MSG_ID and start["model"] == MODEL and start["content"] == []
    assert start["usage"]["input_tokens"] == 0 and start["usage"]["output_tokens"] == 0
    text = "".join(p["delta"]["text"] for n, p in frames if n == "content_block_delta")
    assert text == "Hey! How can I help you today?"
    delta = frames[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["input_tokens"] == 2259 - 2176
    assert delta["usage"]["cache_read_input_tokens"] == 2176
    assert delta["usage"]["output_tokens"] == 395
    assert translator.usage == Usage(input_tokens=2259, cached_tokens=2176, output_tokens=395, reasoning_tokens=320)
    message = assert_stream_matches_message(events)
    assert message.stop_reason == "end_turn" and message.usage.cache_read_input_tokens == 2176


def test_reasoning_without_summary_or_encrypted_content_opens_no_block() -> None:
    events = Upstream().created().reasoning("rs_1", []).message("msg_1", "Hi").completed()
    frames, _ = translate(events)
    starts = [p["content_block"]["type"] for n, p in frames if n == "content_block_start"]
    assert starts == ["text"]


def test_text_only_in_the_done_event_is_still_sent_once() -> None:
    events = Upstream().created().message("msg_1", "only at the end", stream=False).completed()
    frames, _ = translate(events)
    deltas = [p["delta"]["text"] for n, p in frames if n == "content_block_delta"]
    assert deltas == ["only at the end"]
    assert_stream_matches_message(events)


def test_minimal_stream_without_item_ids_is_not_duplicated() -> None:
    # Capture 05 (A): the Codex CLI's minimal shapes, deltas without item_id or content_index.
    events = [
        {"type": "response.created", "response": {"id": "resp_1"}},
        {
            "type": "response.output_item.added",
            "item": {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "content": [{"type": "output_text", "text": ""}],
            },
        },
        {"type": "response.output_text.delta", "delta": "Hello"},
        {
            "type": "response.output_item.done",
            "item": {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "content": [{"type": "output_text", "text": "Hello"}],
            },
        },
        {"type": "response.completed", "response": {"id": "resp_1", "usage": {"input_tokens": 10, "output_tokens": 1}}},
    ]
    frames, _ = translate(events)
    assert [p["delta"]["text"] for n, p in frames if n == "content_block_delta"] == ["Hello"]
    assert_stream_matches_message(events)


def test_empty_completed_output_falls_back_on_item_done_events() -> None:
    events = Upstream().created().message("msg_1", "kept").completed(output=False)
    assert message_from(aggregate(events), message_id=MSG_ID, model=MODEL)["content"] == [
        {"type": "text", "text": "kept"}
    ]


def test_only_a_terminal_event_with_output_still_answers() -> None:
    item = {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "late"}]}
    event = {"type": "response.completed", "response": {"id": RESP_ID, "output": [item], "usage": USAGE}}
    frames, _ = translate([event])
    assert [p["delta"]["text"] for n, p in frames if n == "content_block_delta"] == ["late"]
    check_frames(frames)


# --- thinking -----------------------------------------------------------------------------------------


PLAN = ["**Planning**\n\nI will read the file.", "**Reading**\n\nNow the file."]


def reasoning_text_call() -> list[dict[str, Any]]:
    """A summarised reasoning item, a message and a Read call, as Claude Code's turns go."""
    return (
        Upstream()
        .created()
        .reasoning("rs_9", PLAN, enc="gAAAAABenc")
        .message("msg_2", "Let me read it.")
        .call("fc_1", "call_eUSoRaSdhGFRVK4PMkXefkGK", "Read", '{"file_path":"/tmp/x"}')
        .completed()
    )


def test_reasoning_then_text_then_tool_call() -> None:
    parts, events = PLAN, reasoning_text_call()
    frames, _ = translate(events)
    check_frames(frames)
    starts = [p["content_block"]["type"] for n, p in frames if n == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    thinking_deltas = [p["delta"] for n, p in frames if n == "content_block_delta" and p["index"] == 0]
    assert "".join(d.get("thinking", "") for d in thinking_deltas) == "\n\n".join(parts)
    assert thinking_deltas[-1]["type"] == "signature_delta"  # the signature comes last, just before the stop
    stop_at = names(frames).index("content_block_stop")
    assert frames[stop_at - 1][1]["delta"]["type"] == "signature_delta"
    message = assert_stream_matches_message(events)
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[2].input == {"file_path": "/tmp/x"}  # type: ignore[union-attr]


@pytest.mark.parametrize("thinking", [True, False])
def test_events_left_unparsed_change_no_frame(thinking: bool) -> None:
    events = reasoning_text_call()
    assert {e["type"] for e in events} >= ECHO_EVENTS
    stubs = [{"type": e["type"], "raw": json.dumps(e)} if e["type"] in ECHO_EVENTS else e for e in events]
    full, translator = translate(events, thinking=thinking)
    assert translator.unread == ECHO_EVENTS
    assert translate(stubs, thinking=thinking)[0] == full


def test_encrypted_reasoning_without_summary_gives_an_empty_thinking_block_with_signature() -> None:
    events = Upstream().created().reasoning("rs_3", [], enc="gAAAAABopaque").message("msg_1", "Done.").completed()
    frames, _ = translate(events)
    message = assert_stream_matches_message(events)
    block = message.content[0]
    assert block.type == "thinking" and block.thinking == ""
    assert thinking_signature.decode(block.signature) == thinking_signature.ReasoningRef("rs_3", "gAAAAABopaque")
    assert not any(n == "content_block_delta" and p["delta"].get("thinking") == "" for n, p in frames)


def test_thinking_blocks_are_left_out_when_the_client_did_not_ask_for_thinking() -> None:
    events = Upstream().created().reasoning("rs_1", ["secret plan"], enc="enc").message("msg_1", "Hi").completed()
    frames, _ = translate(events, thinking=False)
    assert [p["content_block"]["type"] for n, p in frames if n == "content_block_start"] == ["text"]
    message = assert_stream_matches_message(events, thinking=False)
    assert [b.type for b in message.content] == ["text"]


def test_signature_round_trip_replays_the_reasoning_item_without_its_id() -> None:
    events = (
        Upstream()
        .created()
        .reasoning("rs_0abc", ["Thinking about it."], enc="gAAAAAB-ENCRYPTED==")
        .call("fc_1", "call_1", "Read", '{"file_path":"/a"}')
        .completed()
    )
    frames, _ = translate(events)
    streamed = sdk_stream(frames)
    assistant = streamed.model_dump(exclude_none=True)["content"]
    body = {
        "model": MODEL,
        "max_tokens": 1000,
        "thinking": {"type": "adaptive"},
        "messages": [
            {"role": "user", "content": "read /a"},
            {"role": "assistant", "content": assistant},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "file body"}]},
        ],
    }
    upstream = to_responses(body, models=ModelMap("gpt-5.5", "gpt-5.4-mini", {}), instructions="x").body
    reasoning = [item for item in upstream["input"] if item["type"] == "reasoning"]
    assert reasoning == [
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Thinking about it."}],
            "encrypted_content": "gAAAAAB-ENCRYPTED==",
        }
    ]
    kinds = [item["type"] for item in upstream["input"]]
    assert kinds == ["message", "reasoning", "function_call", "function_call_output"]


# --- tool calls ---------------------------------------------------------------------------------------


WEATHER = '{"location":"New York, NY","unit":"F"}'
DISTANCE = '{"lat1":"40.7","lon1":"-74.0"}'


def _interleaved(done_order: str) -> list[dict[str, Any]]:
    up = Upstream().created().reasoning("rs_1", [])
    first = up.call_added("fc_a", "call_A", "get_weather")
    second = up.call_added("fc_b", "call_B", "calculate_distance")
    for a, b in zip(_chunks(WEATHER, 4), _chunks(DISTANCE, 4), strict=False):
        up.call_delta("fc_a", first, a)
        up.call_delta("fc_b", second, b)
    for name in done_order:
        if name == "a":
            up.call_done("fc_a", first, "call_A", "get_weather", WEATHER)
        else:
            up.call_done("fc_b", second, "call_B", "calculate_distance", DISTANCE)
    return up.completed()


def test_interleaved_parallel_calls_keep_their_own_blocks() -> None:
    events = _interleaved("ab")
    frames, _ = translate(events)
    starts = [p for n, p in frames if n == "content_block_start"]
    assert [(s["index"], s["content_block"]["id"]) for s in starts] == [(0, "call_A"), (1, "call_B")]
    assert all(s["content_block"]["input"] == {} for s in starts)  # input arrives only as deltas
    message = assert_stream_matches_message(events)
    assert [b.input for b in message.content] == [json.loads(WEATHER), json.loads(DISTANCE)]  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"


def test_calls_finishing_out_of_order_stream_in_the_order_they_finish() -> None:
    frames, _ = translate(_interleaved("ba"))
    check_frames(frames)
    streamed = sdk_stream(frames)
    assert [(b.id, b.input) for b in streamed.content] == [  # type: ignore[union-attr]
        ("call_B", json.loads(DISTANCE)),
        ("call_A", json.loads(WEATHER)),
    ]


def test_arguments_only_in_deltas_or_only_in_done_both_reach_the_client() -> None:
    up = Upstream().created()
    index = up.call_added("fc_1", "call_1", "Bash")
    up.call_delta("fc_1", index, '{"command":')
    up.call_delta("fc_1", index, '"ls"}')
    item = {
        "id": "fc_1",
        "type": "function_call",
        "status": "completed",
        "arguments": "",
        "call_id": "call_1",
        "name": "Bash",
    }
    up.add("response.output_item.done", output_index=index, item=item)
    up.call("fc_2", "call_2", "Read", '{"file_path":"/b"}')
    frames, _ = translate(up.completed())
    inputs = [p["delta"]["partial_json"] for n, p in frames if n == "content_block_delta"]
    assert [json.loads(i) for i in inputs] == [{"command": "ls"}, {"file_path": "/b"}]


def test_empty_or_invalid_arguments_become_an_empty_object_delta() -> None:
    events = (
        Upstream().created().call("fc_1", "call_1", "Now", "").call("fc_2", "call_2", "Bad", "{not json").completed()
    )
    frames, _ = translate(events)
    assert [p["delta"]["partial_json"] for n, p in frames if n == "content_block_delta"] == ["{}", "{}"]
    assert_stream_matches_message(events)


def test_shortened_tool_names_are_restored() -> None:
    long_name = "mcp__plugin_some_server_with_a_long_name__tool_with_an_even_longer_name_x"
    events = Upstream().created().call("fc_1", "call_1", "mcp__tool_with_an_even_longer_name_x", "{}").completed()
    names_map = {"mcp__tool_with_an_even_longer_name_x": long_name}
    frames, _ = translate(events, tool_names=names_map)
    start = next(p for n, p in frames if n == "content_block_start")
    assert start["content_block"]["name"] == long_name
    message = assert_stream_matches_message(events, tool_names=names_map)
    assert message.content[0].name == long_name  # type: ignore[union-attr]


def test_web_search_call_becomes_server_tool_blocks() -> None:
    search = {
        "id": "ws_1",
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "codexd", "sources": [{"type": "url", "url": "https://example.com/a"}]},
    }
    up = Upstream().created()
    up.add("response.output_item.added", output_index=0, item={**search, "status": "in_progress"})
    events = up.done(search).message("msg_1", "Found it.").completed()
    frames, _ = translate(events)
    starts = [p["content_block"]["type"] for n, p in frames if n == "content_block_start"]
    assert starts == ["server_tool_use", "web_search_tool_result", "text"]
    message = assert_stream_matches_message(events)
    assert message.content[0].input == {"query": "codexd"}  # type: ignore[union-attr]
    assert message.content[1].content[0].url == "https://example.com/a"  # type: ignore[union-attr,index]
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 1
    assert message.stop_reason == "end_turn"


# --- stop reasons and usage ---------------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "stop"), [("max_output_tokens", "max_tokens"), ("content_filter", "refusal")])
def test_incomplete_maps_to_its_stop_reason(reason: str, stop: str) -> None:
    events = Upstream().created().message("msg_1", "partial").incomplete(reason)
    frames, translator = translate(events)
    assert frames[-2][1]["delta"]["stop_reason"] == stop
    assert translator.usage is not None and translator.usage.output_tokens == 395
    assert assert_stream_matches_message(events).stop_reason == stop


def test_missing_usage_still_sends_a_full_usage_object() -> None:
    events = Upstream().created().message("msg_1", "ok").completed(usage=None)
    frames, translator = translate(events)
    assert frames[-2][1]["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert translator.usage is None


def test_ping_is_a_named_event() -> None:
    translator = ResponsesToMessages(message_id=MSG_ID, model=MODEL)
    assert translator.ping() == [("ping", {"type": "ping"})]


# --- failures -----------------------------------------------------------------------------------------


def _failed(code: str, message: str) -> dict[str, Any]:
    return {
        "type": "response.failed",
        "sequence_number": 9,
        "response": {"id": RESP_ID, "status": "failed", "error": {"code": code, "message": message}, "usage": None},
    }


@pytest.mark.parametrize(
    ("event", "etype"),
    [
        (_failed("server_is_overloaded", "busy"), "overloaded_error"),
        (_failed("rate_limit_exceeded", "Please try again in 11.054s."), "rate_limit_error"),
        (_failed("something_new", "oops"), "api_error"),
        (
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "code": "context_length_exceeded", "message": "too big"},
            },
            "invalid_request_error",
        ),
    ],
)
def test_failure_after_the_start_is_one_error_event_and_nothing_more(event: dict[str, Any], etype: str) -> None:
    up = Upstream().created()
    up.add(
        "response.output_item.added",
        output_index=0,
        item={"id": "msg_1", "type": "message", "content": [], "role": "assistant"},
    )
    up.add(
        "response.output_text.delta",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        delta="Hal",
        logprobs=[],
        obfuscation="x",
    )
    frames, translator = translate([*up.events, event, *Upstream().created().completed()])
    assert frames[-1][0] == "error"
    assert frames[-1][1]["error"]["type"] == etype
    assert "message_delta" not in names(frames) and "message_stop" not in names(frames)
    assert translator.finish() == [] and translator.feed(up.events[-1]) == []


def test_context_length_failures_say_prompt_is_too_long() -> None:
    frames, _ = translate([_failed("context_length_exceeded", "Your input exceeds the context window.")])
    assert frames == [
        (
            "error",
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "prompt is too long: Your input exceeds the context window.",
                },
            },
        )
    ]


def test_stream_without_terminal_event_ends_with_an_api_error() -> None:
    events = Upstream().created().message("msg_1", "cut").events
    frames, _ = translate(events, request_id="req_7")
    assert frames[-1][0] == "error"
    assert frames[-1][1]["error"]["type"] == "api_error" and frames[-1][1]["request_id"] == "req_7"
    assert "message_stop" not in names(frames)


def test_sdk_raises_on_the_in_band_error() -> None:
    frames, _ = translate([*Upstream().created().events, _failed("server_is_overloaded", "busy")])
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk_stream(frames)
    assert "overloaded_error" in str(info.value)


def test_fail_reports_a_transport_error_once() -> None:
    translator = ResponsesToMessages(message_id=MSG_ID, model=MODEL)
    translator.feed(Upstream().created().events[0])
    frames = translator.fail(CodexdError(ErrorKind.TIMEOUT, "upstream went silent"))
    assert frames == [
        ("error", {"type": "error", "error": {"type": "timeout_error", "message": "upstream went silent"}})
    ]
    assert translator.fail(CodexdError(ErrorKind.TIMEOUT, "again")) == []


def test_message_failure_maps_failed_truncated_and_completed_aggregates() -> None:
    failed = message_failure(aggregate([_failed("context_length_exceeded", "too long")]))
    assert failed is not None and failed.status == 400 and failed.message.startswith("prompt is too long")
    overloaded = message_failure(aggregate([_failed("server_is_overloaded", "busy")]))
    assert overloaded is not None and overloaded.kind is ErrorKind.OVERLOADED
    truncated = message_failure(aggregate(Upstream().created().message("msg_1", "cut").events))
    assert truncated is not None and truncated.status >= 500
    assert message_failure(aggregate(Upstream().created().message("msg_1", "ok").completed())) is None


@given(st.lists(st.text(min_size=1), min_size=1, max_size=3), st.text(min_size=1))
def test_pre_rendered_deltas_are_the_json_of_the_same_event(thoughts: list[str], text: str) -> None:
    events = Upstream().created().reasoning("rs_1", thoughts).message("msg_1", text).completed()
    translator = ResponsesToMessages(message_id=MSG_ID, model=MODEL)
    frames = [frame for event in events for frame in translator.feed(event)]
    rendered = [payload for _, payload in frames if isinstance(payload, str)]
    assert len(rendered) >= 2, "text and thinking deltas should take the pre-rendered path"
    for payload in rendered:  # byte for byte what encoding the event as a dict gives, odd characters and all
        assert encode(payload) == encode(json.loads(payload))
    joined = "".join(p["delta"].get("text", "") for _, p in translate(events)[0] if p["type"] == "content_block_delta")
    assert joined == text
