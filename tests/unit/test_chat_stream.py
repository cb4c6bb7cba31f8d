"""Responses events (shaped like the real captures) -> Chat Completions chunks and chat.completion."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from codexd import sse
from codexd.errors import CodexdError, ErrorKind
from codexd.translate.aggregate import ResponseAggregator, Usage
from codexd.translate.chat_stream import ChatOptions, ResponsesToChat, chat_completion
from codexd.translate.protocol import ECHO_EVENTS, Frame
from codexd.translate.upstream_failure import failure_from_aggregate
from tests.fakes.scripts import response_object

CHAT_ID = "chatcmpl-test42"
CREATED = 1767225600
MODEL = "gpt-5.5-client-name"
USAGE_01 = {
    "input_tokens": 2239,
    "input_tokens_details": {"cached_tokens": 2176},
    "output_tokens": 15,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 2254,
}
USAGE_02 = {
    "input_tokens": 2354,
    "input_tokens_details": {"cached_tokens": 1536},
    "output_tokens": 342,
    "output_tokens_details": {"reasoning_tokens": 256},
    "total_tokens": 2696,
}


class Recorder:
    """Builds an upstream event list with the captures' exact shapes (sequence numbers, obfuscation...)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []

    def add(self, kind: str, **fields: Any) -> None:
        self.events.append({"type": kind, "sequence_number": len(self.events), **fields})

    def response(self, status: str, **fields: Any) -> dict[str, Any]:
        return response_object(
            status,
            resp_id="resp_0b51be2101d9d6220168d469589190819b945ffe7a83ece6cf",
            model="gpt-5-2025-08-07",
            **fields,
        )

    def created(self) -> Recorder:
        self.add("response.created", response=self.response("in_progress"))
        self.add("response.in_progress", response=self.response("in_progress"))
        return self

    def reasoning(self, *summaries: list[str]) -> Recorder:
        index, rs = len(self.items), f"rs_{len(self.items)}0b51be2101d9d622"
        self.add("response.output_item.added", output_index=index, item={"id": rs, "type": "reasoning", "summary": []})
        done = []
        for si, pieces in enumerate(summaries):
            common = {"item_id": rs, "output_index": index, "summary_index": si}
            self.add("response.reasoning_summary_part.added", **common, part={"type": "summary_text", "text": ""})
            for piece in pieces:
                self.add("response.reasoning_summary_text.delta", **common, delta=piece, obfuscation="bTnou60E")
            text = "".join(pieces)
            self.add("response.reasoning_summary_text.done", **common, text=text)
            self.add("response.reasoning_summary_part.done", **common, part={"type": "summary_text", "text": text})
            done.append({"type": "summary_text", "text": text})
        self.item_done({"id": rs, "type": "reasoning", "summary": done})
        return self

    def message(self, *pieces: str, deltas: bool = True) -> Recorder:
        index, msg = len(self.items), f"msg_{len(self.items)}0b51be2101d9d622"
        item = {"id": msg, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        self.add("response.output_item.added", output_index=index, item=item)
        common = {"item_id": msg, "output_index": index, "content_index": 0}
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        self.add("response.content_part.added", **common, part=part)
        for piece in pieces if deltas else ():
            self.add("response.output_text.delta", **common, delta=piece, logprobs=[], obfuscation="1irxx2aXDjHEn")
        text = "".join(pieces)
        self.add("response.output_text.done", **common, text=text, logprobs=[])
        self.add("response.content_part.done", **common, part={**part, "text": text})
        content = [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]
        self.item_done({**item, "status": "completed", "content": content})
        return self

    def call_added(self, name: str, n: int) -> str:
        fc = f"fc_{n}0a6505c52947edbe0168d469"
        item = {
            "id": fc,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": f"call_{n}",
            "name": name,
        }
        self.add("response.output_item.added", output_index=len(self.items), item=item)
        self.items.append(item)  # placeholder; replaced by call_done
        return fc

    def call_delta(self, fc: str, piece: str) -> None:
        index = next(i for i, it in enumerate(self.items) if it["id"] == fc)
        self.add(
            "response.function_call_arguments.delta",
            item_id=fc,
            output_index=index,
            delta=piece,
            obfuscation="FAU4c0Q0",
        )

    def call_done(self, fc: str, arguments: str) -> None:
        index = next(i for i, it in enumerate(self.items) if it["id"] == fc)
        self.add("response.function_call_arguments.done", item_id=fc, output_index=index, arguments=arguments)
        item = {**self.items[index], "status": "completed", "arguments": arguments}
        self.items[index] = item
        self.add("response.output_item.done", output_index=index, item=item)

    def call(self, name: str, *pieces: str) -> Recorder:
        fc = self.call_added(name, len(self.items))
        for piece in pieces:
            self.call_delta(fc, piece)
        self.call_done(fc, "".join(pieces))
        return self

    def item_done(self, item: dict[str, Any]) -> None:
        self.add("response.output_item.done", output_index=len(self.items), item=item)
        self.items.append(item)

    def completed(self, usage: dict[str, Any] | None = USAGE_01, *, echo_output: bool = True) -> list[dict[str, Any]]:
        output = list(self.items) if echo_output else []
        self.add("response.completed", response=self.response("completed", output=output, usage=usage))
        return self.events

    def incomplete(self, reason: str) -> list[dict[str, Any]]:
        resp = self.response(
            "incomplete", output=list(self.items), usage=USAGE_01, incomplete_details={"reason": reason}
        )
        self.add("response.incomplete", response=resp)
        return self.events

    def failed(self, code: str, message: str) -> list[dict[str, Any]]:
        resp = self.response("failed", error={"code": code, "message": message})
        self.add("response.failed", response=resp)
        return self.events


def text_answer() -> list[dict[str, Any]]:
    return Recorder().created().reasoning().message("Hey", "!", " How can I help", " you today?").completed()


def reasoning_then_text() -> list[dict[str, Any]]:
    rec = Recorder().created().reasoning(["**Calcul", "ating**\n\nFive", " factorial."], ["**Done**"])
    return rec.message("5! = ", "120").completed(USAGE_02)


def one_tool_call() -> list[dict[str, Any]]:
    rec = Recorder().created().reasoning()
    return rec.call("get_weather", "{", '"location":"', "New York, NY", '","unit":"F"}').completed(USAGE_02)


def two_tool_calls() -> list[dict[str, Any]]:
    rec = Recorder().created().reasoning().call("get_weather", '{"location":', '"NYC"}')
    return rec.call("calculate_distance", '{"lat1":"40.7"', ',"lat2":"34.0"}').completed(USAGE_02)


def interleaved_tool_calls() -> list[dict[str, Any]]:
    rec = Recorder().created().reasoning()
    a = rec.call_added("get_weather", 1)
    b = rec.call_added("get_time", 2)
    rec.call_delta(b, '{"tz":')
    rec.call_delta(a, '{"city":')
    rec.call_delta(b, '"CET"}')
    rec.call_delta(a, '"Oslo"}')
    rec.call_done(b, '{"tz":"CET"}')
    rec.call_done(a, '{"city":"Oslo"}')
    return rec.completed(USAGE_02)


def text_then_tool_call() -> list[dict[str, Any]]:
    rec = Recorder().created().reasoning().message("Checking the weather.")
    return rec.call("get_weather", '{"city":"Oslo"}').completed(USAGE_02)


def structured_output() -> list[dict[str, Any]]:
    rec = Recorder().created().reasoning().message('{"', "answer", '":"four","answer_type":"word"}')
    return rec.completed()


def two_messages() -> list[dict[str, Any]]:
    return Recorder().created().message("Let me think.").message("Done: 42.").completed()


def text_only_in_item_done() -> list[dict[str, Any]]:
    return Recorder().created().message("Only", " in done", deltas=False).completed()


def empty_completed_output() -> list[dict[str, Any]]:
    """The 2026 variant: ``response.completed.output`` is empty although items were streamed."""
    return Recorder().created().reasoning().message("Hi", " there").completed(echo_output=False)


def incomplete_max_tokens() -> list[dict[str, Any]]:
    return Recorder().created().reasoning().message("The answer is", " cut").incomplete("max_output_tokens")


def incomplete_content_filter() -> list[dict[str, Any]]:
    return Recorder().created().message("partial").incomplete("content_filter")


def call_only_in_item_done() -> list[dict[str, Any]]:
    """Capture 05 B: the function call appears only as ``output_item.done``."""
    return [
        {"type": "response.created", "response": {"id": "resp_2"}},
        {
            "type": "response.output_item.done",
            "item": {
                "type": "function_call",
                "call_id": "call_abc",
                "name": "shell_command",
                "arguments": '{"command":"ls"}',
            },
        },
        {
            "type": "response.completed",
            "response": {
                "id": "resp_2",
                "usage": {
                    "input_tokens": 0,
                    "input_tokens_details": None,
                    "output_tokens": 0,
                    "output_tokens_details": None,
                    "total_tokens": 0,
                },
            },
        },
    ]


def minimal_text_without_item_ids() -> list[dict[str, Any]]:
    """Capture 05 A: deltas without ``item_id``, then the full message in ``output_item.done``."""
    item = {
        "type": "message",
        "role": "assistant",
        "id": "msg_1",
        "content": [{"type": "output_text", "text": "Hello"}],
    }
    return [
        {"type": "response.created", "response": {"id": "resp_1"}},
        {"type": "response.output_item.added", "item": {**item, "content": [{"type": "output_text", "text": ""}]}},
        {"type": "response.output_text.delta", "delta": "Hello"},
        {"type": "response.output_item.done", "item": item},
        {"type": "response.completed", "response": {"id": "resp_1", "usage": USAGE_01}},
    ]


def output_only_in_completed() -> list[dict[str, Any]]:
    """An odd stream whose items come only in ``response.completed.output``."""
    rec = Recorder()
    output = [
        {
            "id": "msg_9",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "From completed"}],
        },
        {"id": "fc_9", "type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}"},
    ]
    rec.add("response.completed", response=rec.response("completed", output=output, usage=USAGE_01))
    return rec.events


SUCCESSFUL: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "text": text_answer,
    "reasoning_then_text": reasoning_then_text,
    "one_tool_call": one_tool_call,
    "two_tool_calls": two_tool_calls,
    "interleaved_tool_calls": interleaved_tool_calls,
    "text_then_tool_call": text_then_tool_call,
    "structured_output": structured_output,
    "two_messages": two_messages,
    "text_only_in_item_done": text_only_in_item_done,
    "empty_completed_output": empty_completed_output,
    "incomplete_max_tokens": incomplete_max_tokens,
    "incomplete_content_filter": incomplete_content_filter,
    "call_only_in_item_done": call_only_in_item_done,
    "minimal_text_without_item_ids": minimal_text_without_item_ids,
    "output_only_in_completed": output_only_in_completed,
}


def translator(**options: bool) -> ResponsesToChat:
    return ResponsesToChat(completion_id=CHAT_ID, created=CREATED, model=MODEL, options=ChatOptions(**options))


def run(events: list[dict[str, Any]], *, end: bool = True, **options: bool) -> tuple[ResponsesToChat, list[Frame]]:
    tr = translator(**options)
    frames = [f for ev in events for f in tr.feed(ev)]
    if end:
        frames += tr.finish()
    return tr, frames


def payloads(frames: list[Frame]) -> list[dict[str, Any]]:
    assert all(event is None for event, _ in frames), "chat streams are data-only"
    # Text deltas arrive pre-rendered as JSON text (the translator's fast path); the rest as dicts.
    return [p if isinstance(p, dict) else json.loads(p) for _, p in frames if p != "[DONE]"]


def deltas(frames: list[Frame]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in payloads(frames) if c.get("choices")]


def accumulate(frames: list[Frame]) -> dict[str, Any]:
    """What the openai SDK's own accumulator builds from the chunks (each validated as a ChatCompletionChunk)."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for payload in payloads(frames):
        state.handle_chunk(ChatCompletionChunk.model_validate(payload))
    return state.current_completion_snapshot.model_dump(mode="json", exclude_none=True)


def answer(completion: dict[str, Any]) -> dict[str, Any]:
    """What a client reads from a completion, with the SDK snapshot's own extras (index, parsed_arguments) left out."""
    choice = completion["choices"][0]
    message = choice["message"]
    calls = [
        {"id": c["id"], "type": c["type"], "function": {k: c["function"][k] for k in ("name", "arguments")}}
        for c in message.get("tool_calls") or []
    ]
    return {
        # The first chunk's ``content: ""`` makes a tool-only stream accumulate "" where the body has null.
        "content": message.get("content") or None,
        "tool_calls": calls,
        "reasoning_content": message.get("reasoning_content"),
        "finish_reason": choice["finish_reason"],
        "usage": completion.get("usage"),
    }


def aggregate(events: list[dict[str, Any]]) -> ResponseAggregator:
    agg = ResponseAggregator()
    for ev in events:
        agg.feed(ev)
    return agg


def non_streaming(events: list[dict[str, Any]], **kwargs: bool) -> dict[str, Any]:
    agg = aggregate(events)
    assert failure_from_aggregate(agg) is None
    body = chat_completion(agg, completion_id=CHAT_ID, created=CREATED, model=MODEL, **kwargs)
    ChatCompletion.model_validate(body)
    return body


def sdk_stream(frames: list[Frame]) -> list[ChatCompletionChunk]:
    """Read the frames through the openai SDK's real SSE client code, as bytes on the wire."""
    wire = b"".join(sse.encode(payload, event) for event, payload in frames)
    request = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    client = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:1/v1")
    response = httpx2.Response(200, content=wire, request=request, headers={"content-type": "text/event-stream"})
    return list(openai.Stream(cast_to=ChatCompletionChunk, response=response, client=client))


@pytest.mark.parametrize("name", sorted(SUCCESSFUL))
def test_stream_rules_hold_for_every_successful_answer(name: str) -> None:
    tr, frames = run(SUCCESSFUL[name]())
    assert frames[-1] == (None, "[DONE]")
    chunks = payloads(frames)
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks} == {
        (CHAT_ID, "chat.completion.chunk", CREATED, MODEL)
    }
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert sum("role" in d for d in deltas(frames)) == 1
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]]
    assert len(finishes) == 1 and chunks[-1]["choices"][0]["finish_reason"] == finishes[0]
    assert all("usage" not in c for c in chunks)
    assert tr.usage is not None
    assert len(sdk_stream(frames)) == len(chunks)


def unparsed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` as the relay hands them over: the types in ``unread`` as their name and unparsed text."""
    return [{"type": e["type"], "raw": json.dumps(e)} if e["type"] in ECHO_EVENTS else e for e in events]


@pytest.mark.parametrize("name", sorted(SUCCESSFUL))
@pytest.mark.parametrize("reasoning_content", [False, True])
def test_events_left_unparsed_change_no_chunk(name: str, reasoning_content: bool) -> None:
    assert translator().unread == ECHO_EVENTS
    events = SUCCESSFUL[name]()
    _, full = run(events, reasoning_content=reasoning_content, include_usage=True)
    _, stubs = run(unparsed(events), reasoning_content=reasoning_content, include_usage=True)
    assert stubs == full


def test_the_answers_checked_with_unparsed_events_have_every_such_event() -> None:
    assert {e["type"] for build in SUCCESSFUL.values() for e in build()} >= ECHO_EVENTS


@pytest.mark.parametrize("name", sorted(SUCCESSFUL))
@pytest.mark.parametrize("reasoning_content", [False, True])
def test_streamed_chunks_accumulate_to_the_non_streaming_answer(name: str, reasoning_content: bool) -> None:
    events = SUCCESSFUL[name]()
    _, frames = run(events, reasoning_content=reasoning_content, include_usage=True)
    assert answer(accumulate(frames)) == answer(non_streaming(events, reasoning_content=reasoning_content))


def test_text_answer_streams_content_deltas() -> None:
    _, frames = run(text_answer())
    assert [d.get("content") for d in deltas(frames)] == ["", "Hey", "!", " How can I help", " you today?", None]
    assert payloads(frames)[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}


def test_reasoning_summary_is_hidden_by_default_and_never_in_content() -> None:
    _, hidden = run(reasoning_then_text())
    assert not any("reasoning_content" in d for d in deltas(hidden))
    assert accumulate(hidden)["choices"][0]["message"]["content"] == "5! = 120"
    _, shown = run(reasoning_then_text(), reasoning_content=True)
    message = accumulate(shown)["choices"][0]["message"]
    assert message["content"] == "5! = 120"
    assert message["reasoning_content"] == "**Calculating**\n\nFive factorial.\n\n**Done**"


def test_one_tool_call_streams_openai_style() -> None:
    _, frames = run(one_tool_call())
    calls = [d["tool_calls"][0] for d in deltas(frames) if "tool_calls" in d]
    assert calls[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(c == {"index": 0, "function": {"arguments": c["function"]["arguments"]}} for c in calls[1:])
    assert "".join(c["function"]["arguments"] for c in calls) == '{"location":"New York, NY","unit":"F"}'
    assert payloads(frames)[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_parallel_calls_get_indexes_in_start_order_even_when_interleaved() -> None:
    for events, names in (
        (two_tool_calls(), ["get_weather", "calculate_distance"]),
        (interleaved_tool_calls(), ["get_weather", "get_time"]),
    ):
        _, frames = run(events)
        starts = [d["tool_calls"][0] for d in deltas(frames) if "tool_calls" in d and "id" in d["tool_calls"][0]]
        assert [(s["index"], s["function"]["name"]) for s in starts] == list(enumerate(names))
    tool_calls = accumulate(run(interleaved_tool_calls())[1])["choices"][0]["message"]["tool_calls"]
    assert [(t["id"], t["function"]["arguments"]) for t in tool_calls] == [
        ("call_1", '{"city":"Oslo"}'),
        ("call_2", '{"tz":"CET"}'),
    ]


def test_tool_call_only_in_item_done_is_still_emitted() -> None:
    assert answer(accumulate(run(call_only_in_item_done())[1]))["tool_calls"] == [
        {"id": "call_abc", "type": "function", "function": {"name": "shell_command", "arguments": '{"command":"ls"}'}}
    ]


def test_structured_output_arrives_as_json_content() -> None:
    content = accumulate(run(structured_output())[1])["choices"][0]["message"]["content"]
    assert json.loads(content) == {"answer": "four", "answer_type": "word"}


def test_text_is_not_doubled_when_item_done_repeats_it() -> None:
    assert accumulate(run(minimal_text_without_item_ids())[1])["choices"][0]["message"]["content"] == "Hello"
    assert accumulate(run(text_only_in_item_done())[1])["choices"][0]["message"]["content"] == "Only in done"


@pytest.mark.parametrize(
    ("events", "reason"), [(incomplete_max_tokens, "length"), (incomplete_content_filter, "content_filter")]
)
def test_incomplete_responses_finish_with_length_or_content_filter(
    events: Callable[[], list[dict[str, Any]]], reason: str
) -> None:
    _, frames = run(events())
    assert payloads(frames)[-1]["choices"][0]["finish_reason"] == reason
    assert frames[-1] == (None, "[DONE]")


def test_include_usage_adds_null_usage_everywhere_and_a_final_usage_chunk() -> None:
    tr, frames = run(one_tool_call(), include_usage=True)
    chunks = payloads(frames)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 2354,
        "completion_tokens": 342,
        "total_tokens": 2696,
        "prompt_tokens_details": {"cached_tokens": 1536},
        "completion_tokens_details": {"reasoning_tokens": 256},
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert frames[-1] == (None, "[DONE]")
    assert tr.usage == Usage(input_tokens=2354, cached_tokens=1536, output_tokens=342, reasoning_tokens=256)
    assert sdk_stream(frames)[-1].usage is not None


def assert_error_end(frames: list[Frame], code: str, kind: str) -> dict[str, Any]:
    """The stream ends with one error chunk: no finish_reason and no [DONE] (so it cannot pass as finished)."""
    assert (None, "[DONE]") not in frames
    last = frames[-1][1]
    assert isinstance(last, dict)
    assert last["error"]["code"] == code and last["error"]["type"] == kind
    assert set(last["error"]) == {"message", "type", "code", "param"}
    assert not any(c["choices"][0]["finish_reason"] for c in payloads(frames) if c.get("choices"))
    with pytest.raises(openai.APIError) as info:
        sdk_stream(frames)
    assert info.value.code == code
    return last["error"]


def test_response_failed_mid_stream_ends_with_an_error_chunk() -> None:
    events = (
        Recorder()
        .created()
        .message("Partial")
        .failed("context_length_exceeded", "Your input exceeds the context window.")
    )
    tr, frames = run(events)
    error = assert_error_end(frames, "context_length_exceeded", "invalid_request_error")
    assert error["message"] == "Your input exceeds the context window."
    assert tr.feed({"type": "response.completed", "response": {}}) == [] and tr.finish() == []


def test_error_event_ends_the_stream_and_a_following_failed_event_is_ignored() -> None:
    rec = Recorder().created()
    rec.add("error", error={"type": "server_error", "code": "server_is_overloaded", "message": "busy", "param": None})
    events = rec.failed("server_is_overloaded", "busy")
    _, frames = run(events)
    assert_error_end(frames, "server_is_overloaded", "server_error")
    assert sum("error" in p for p in payloads(frames)) == 1


def test_missing_terminal_event_is_an_error_not_a_normal_end() -> None:
    events = Recorder().created().message("Hey", " there").events
    tr, frames = run(events, end=False)
    assert frames[-1] != (None, "[DONE]")
    closing = tr.finish()
    assert_error_end(frames + closing, "stream_closed", "server_error")


def test_fail_called_by_the_server_after_text() -> None:
    tr, frames = run(text_answer()[:8], end=False)
    timeout = CodexdError(ErrorKind.TIMEOUT, "The upstream went silent.", code="timeout")
    closing = tr.fail(timeout)
    error = assert_error_end(frames + closing, "timeout", "server_error")
    assert error["message"] == "The upstream went silent."
    assert tr.fail(timeout) == [] and tr.finish() == []


def test_non_streaming_completion_shape() -> None:
    body = non_streaming(text_then_tool_call())
    assert body["id"] == CHAT_ID and body["object"] == "chat.completion" and body["model"] == MODEL
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["logprobs"] is None
    assert choice["message"]["content"] == "Checking the weather."
    assert choice["message"]["refusal"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
    assert body["usage"]["prompt_tokens"] == 2354


def test_non_streaming_tool_only_answer_has_null_content_and_text_has_no_tool_calls() -> None:
    assert non_streaming(two_tool_calls())["choices"][0]["message"]["content"] is None
    assert "tool_calls" not in non_streaming(text_answer())["choices"][0]["message"]


def test_non_streaming_answer_from_text_deltas_alone() -> None:
    """Text that came only in deltas (no item done, an empty ``output`` at the end) is still the answer."""
    pieces = ["Bonjour ", "à ", "tous", " — ", "😀 "] * 2000
    events = Recorder().created().message(*pieces).completed(echo_output=False)
    events = [e for e in events if e["type"] != "response.output_item.done"]
    assert non_streaming(events)["choices"][0]["message"]["content"] == "".join(pieces)


def test_failed_and_truncated_aggregates_become_errors_for_the_server() -> None:
    failed = aggregate(Recorder().created().failed("usage_not_included", "No Codex access on this plan."))
    err = failure_from_aggregate(failed)
    assert err is not None and err.status == 403 and err.message == "No Codex access on this plan."
    truncated = aggregate(Recorder().created().message("Hi").events)
    err = failure_from_aggregate(truncated)
    assert err is not None and err.status == 502


@pytest.mark.parametrize("name", sorted(SUCCESSFUL))
def test_pre_rendered_chunks_are_byte_identical_to_encoding_the_chunk(name: str) -> None:
    events = SUCCESSFUL[name]()
    _, frames = run(events, include_usage=True, reasoning_content=True)
    rendered = [p for _, p in frames if isinstance(p, str) and p != "[DONE]"]
    for text in rendered:
        assert sse.encode(text) == sse.encode(json.loads(text))
    if any(e["type"] == "response.output_text.delta" for e in events):
        assert any('"content":' in text for text in rendered), "text deltas should take the pre-rendered path"
    if any(e["type"] == "response.function_call_arguments.delta" for e in events):
        assert any('"arguments":' in text for text in rendered), "argument deltas should take it too"


def test_a_long_tool_call_is_forwarded_once_and_whole() -> None:
    """Each argument delta goes out once as it came, the done events add nothing, and the chunks add up to the
    arguments (large, with non-ASCII text and characters JSON escapes)."""
    arguments = json.dumps({"content": 'é "quoted" \\ line\n' * 5000}, ensure_ascii=False)
    pieces = [arguments[i : i + 3] for i in range(0, len(arguments), 3)]
    _, frames = run(Recorder().created().reasoning().call("write_file", *pieces).completed(USAGE_02))
    sent = [d["tool_calls"][0]["function"]["arguments"] for d in deltas(frames) if "tool_calls" in d]
    assert sent == ["", *pieces]
    assert accumulate(frames)["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == arguments
