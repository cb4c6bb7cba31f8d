"""The official anthropic SDK against codexd and the fake backend."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import anthropic
import pytest

from tests.fakes.scripts import Builder, Script, usage_limit_error


@pytest.fixture
def client(live) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=live.url, api_key="unused", max_retries=0, timeout=20) as sdk:
        yield sdk  # closed afterwards, so no pooled socket is left to the garbage collector


TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"city": {"type": "string"}, "url": {"type": "string", "format": "uri"}},
            "required": ["city"],
        },
    }
]


def test_create_maps_model_and_drops_rejected_fields(client, live):
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=1024,
        extra_body={"temperature": 0.5, "top_k": 4, "top_p": 0.9, "stop_sequences": ["END"]},
        system=[
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
            {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
        ],
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert message.model == "claude-sonnet-4-6"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello! How can I help you today?"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 2239 - 2176 and message.usage.cache_read_input_tokens == 2176
    sent = live.backend.state.posts[-1].body
    assert sent["model"] == "gpt-5.5" and sent["instructions"] == "You are terse."
    for name in ("max_tokens", "temperature", "top_k", "stop_sequences", "max_output_tokens"):
        assert name not in sent


def test_haiku_maps_to_the_small_model(client, live):
    client.messages.create(
        model="claude-haiku-4-5-20251001", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert live.backend.state.posts[-1].body["model"] == "gpt-5.4-mini"


def test_stream_get_final_message_with_thinking(client, live):
    events = Builder().start().reasoning(["Thinking about it."], encrypted="gAAAAenc1").text("Answer.").completed()
    live.backend.state.push(Script.events(events, interval=0.01))
    with client.messages.stream(
        model="claude-opus-4-8",
        max_tokens=2000,
        messages=[{"role": "user", "content": "q"}],
        thinking={"type": "enabled", "budget_tokens": 1500},
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "Answer."
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Thinking about it." and final.content[0].signature
    sent = live.backend.state.posts[-1].body
    assert sent["reasoning"]["summary"] == "auto" and "reasoning.encrypted_content" in sent["include"]
    # The signature carries the reasoning item back on the next turn.
    live.backend.state.push(Script.events(Builder().start().text("ok").completed()))
    client.messages.create(
        model="claude-opus-4-8",
        max_tokens=100,
        messages=[
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [b.model_dump() for b in final.content]},
            {"role": "user", "content": "more"},
        ],
    )
    replay = [i for i in live.backend.state.posts[-1].body["input"] if i.get("type") == "reasoning"]
    assert replay and replay[0]["encrypted_content"] == "gAAAAenc1" and "id" not in replay[0]


def test_tools_round_trip(client, live):
    live.backend.state.push(
        Script.events(Builder().start().tool_calls([("get_weather", '{"city":"Paris"}')]).completed())
    )
    first = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        tools=TOOLS,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    tool = live.backend.state.posts[-1].body["tools"][0]
    assert tool["strict"] is False and "$schema" not in tool["parameters"]
    assert "format" not in tool["parameters"]["properties"]["url"]
    png = base64.b64encode(b"\x89PNG fake").decode()
    live.backend.state.push(Script.events(Builder().start().text("Sunny.").completed()))
    second = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": use.id,
                        "content": [
                            {"type": "text", "text": "sunny"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                        ],
                    }
                ],
            },
        ],
    )
    assert second.content[0].text == "Sunny."
    items = live.backend.state.posts[-1].body["input"]
    call = next(i for i in items if i.get("type") == "function_call")
    output = next(i for i in items if i.get("type") == "function_call_output")
    assert call["call_id"] == output["call_id"]
    assert [p["type"] for p in output["output"]] == ["input_text", "input_image"]


def test_streamed_parallel_tool_calls(client, live):
    calls = [("get_weather", '{"city":"Paris"}'), ("get_weather", '{"city":"Tokyo"}')]
    live.backend.state.push(Script.events(Builder().start().reasoning().tool_calls(calls, interleave=True).completed()))
    with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "both"}]
    ) as stream:
        final = stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [u.input["city"] for u in uses] == ["Paris", "Tokyo"]
    assert final.stop_reason == "tool_use"


def test_count_tokens(client, live):
    small = client.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}])
    big = client.messages.count_tokens(
        model="claude-sonnet-4-6",
        tools=TOOLS,
        system="You are terse.",
        messages=[{"role": "user", "content": "hello world " * 200}],
    )
    assert 0 < small.input_tokens < big.input_tokens
    assert 300 < big.input_tokens < 1000
    assert live.backend.state.posts == []


def test_errors_have_anthropic_types(client, live):
    live.backend.state.push(usage_limit_error(resets_in=60))
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["error"]["type"] == "rate_limit_error"
    assert info.value.response.headers["retry-after"] == "60"
    assert info.value.response.headers["request-id"]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages="not a list")  # type: ignore[arg-type]
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    live.backend.state.push(Script.events(Builder().start().failed("server_is_overloaded", "busy")))
    with pytest.raises(anthropic.APIStatusError) as over:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert over.value.status_code == 529 and over.value.body["error"]["type"] == "overloaded_error"


def test_mid_stream_failure_is_an_error_event(client, live):
    live.backend.state.push(Script.events(Builder().start().text("partial answer").completed()).then_drop(8))
    with (
        pytest.raises(anthropic.APIError),
        client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        stream.get_final_message()
