"""The official openai SDK against codexd and the fake backend: what the client gets and what the fake saw."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import openai
import pytest

from codexd.translate.chat_messages import convert_messages
from tests.fakes.scripts import Builder, Script, usage_limit_error


@pytest.fixture
def client(live) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0, timeout=20) as sdk:
        yield sdk  # closed afterwards, so no pooled socket is left to the garbage collector


def test_chat_non_streaming(client, live):
    answer = client.chat.completions.create(
        model="gpt-5.5",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        temperature=0.2,
        max_tokens=50,
    )
    assert answer.choices[0].message.content == "Hello! How can I help you today?"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.prompt_tokens == 2239 and answer.usage.prompt_tokens_details.cached_tokens == 2176
    sent = live.backend.state.posts[-1].body
    assert sent["instructions"] == "Be brief."
    assert "temperature" not in sent and "max_tokens" not in sent and "max_output_tokens" not in sent
    assert sent["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]}]


def test_each_turn_of_a_long_conversation_reaches_upstream_whole(client, live):
    """Agents resend the history every turn; codexd reuses what it read and translated of it before
    (codexd.jsonparse, translate/progress.py), and the backend still receives each turn whole."""
    history: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}]
    for n in range(6):  # from the third turn on, the body is large enough to be read message by message
        history.append({"role": "user", "content": f"Question {n}: " + "context " * 300})
        client.chat.completions.create(model="gpt-5.5", messages=history)
        sent = live.backend.state.posts[-1].body
        assert sent["instructions"] == "Be brief."
        assert sent["input"] == convert_messages(json.loads(json.dumps(history))).items
        history.append({"role": "assistant", "content": f"Answer {n}."})


def test_chat_streaming_with_usage(client, live):
    live.backend.state.push(Script.events(Builder().start().text("streamed words here").completed(), interval=0.02))
    chunks = list(
        client.chat.completions.create(
            model="gpt-5.5",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed words here"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 2254
    assert len({c.id for c in chunks}) == 1


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "strict": True,
        },
    }
]


def test_tool_round_trip(client, live):
    live.backend.state.push(
        Script.events(Builder().start().tool_calls([("get_weather", '{"city":"Paris"}')]).completed())
    )
    first = client.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS, tool_choice="auto"
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    sent_tools = live.backend.state.posts[-1].body["tools"]
    assert sent_tools == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": TOOLS[0]["function"]["parameters"],
            "strict": True,
        }
    ]
    live.backend.state.push(Script.events(Builder().start().text("It is sunny in Paris.").completed()))
    second = client.chat.completions.create(
        model="gpt-5.5",
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
    )
    assert second.choices[0].message.content == "It is sunny in Paris."
    items = live.backend.state.posts[-1].body["input"]
    assert [i.get("type") for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1]["call_id"] == items[2]["call_id"] == call.id
    assert items[2]["output"] == "sunny, 21C"


def test_parallel_tool_calls_streamed(client, live):
    calls = [("get_weather", '{"city":"Paris"}'), ("get_weather", '{"city":"Tokyo"}')]
    live.backend.state.push(Script.events(Builder().start().reasoning().tool_calls(calls, interleave=True).completed()))
    stream = client.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "Both?"}], tools=TOOLS, stream=True
    )
    args: dict[int, str] = {}
    names: dict[int, str] = {}
    for chunk in stream:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
            if tc.function.name:
                names[tc.index] = tc.function.name
    assert sorted(args) == [0, 1]
    assert [json.loads(args[i])["city"] for i in (0, 1)] == ["Paris", "Tokyo"]


def test_image_and_response_format(client, live):
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    live.backend.state.push(Script.events(Builder().start().text('{"n": 3}').completed()))
    answer = client.chat.completions.create(
        model="gpt-5.5",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "count"},
                    {"type": "image_url", "image_url": {"url": png, "detail": "high"}},
                ],
            }
        ],
        response_format={"type": "json_schema", "json_schema": {"name": "count", "schema": schema, "strict": True}},
    )
    assert json.loads(answer.choices[0].message.content) == {"n": 3}
    sent = live.backend.state.posts[-1].body
    parts = sent["input"][0]["content"]
    assert parts[1] == {"type": "input_image", "image_url": png, "detail": "high"}
    assert sent["text"]["format"]["type"] == "json_schema" and sent["text"]["format"]["schema"] == schema


def test_rate_limit_surfaces_as_rate_limit_error(client, live):
    live.backend.state.push(usage_limit_error(resets_in=90))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["retry-after"] == "90"
    assert len(live.backend.state.posts) == 1


def test_n_greater_than_one_is_a_400(client, live):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}], n=2)
    assert info.value.body["param"] == "n"
    assert live.backend.state.posts == []


def test_mid_stream_failure_raises_and_is_not_a_normal_finish(client, live):
    live.backend.state.push(Script.events(Builder().start().text("partial answer").completed()).then_drop(8))
    stream = client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}], stream=True)
    seen = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            seen.append(chunk)
    assert not any(c.choices and c.choices[0].finish_reason for c in seen)


def test_responses_api_through_the_sdk(client, live):
    answer = client.responses.create(model="gpt-5.5", input="Hello", instructions="Be kind.")
    assert answer.output_text == "Hello! How can I help you today?"
    with client.responses.stream(model="gpt-5.5", input="Hello") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello! How can I help you today?"


def test_api_key_mode_goes_natively_to_the_public_api(apikey_home):
    from tests.harness import threaded_stack

    with (
        threaded_stack(apikey_home) as live,
        openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0, timeout=20) as client,
    ):
        answer = client.chat.completions.create(
            model="gpt-5.5", messages=[{"role": "user", "content": "hi"}], temperature=0.7
        )
        assert answer.choices[0].message.content == "public api answer"
        chunks = list(
            client.chat.completions.create(model="gpt-5.5", stream=True, messages=[{"role": "user", "content": "hi"}])
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "public api answer"
        seen = [r for r in live.backend.state.requests if r.path == "/v1/chat/completions"]
        assert len(seen) == 2 and seen[0].body["temperature"] == 0.7  # forwarded as the client sent it
        assert seen[0].headers["Authorization"] == "Bearer sk-test-public-key-123456"
        assert live.backend.state.posts == []  # nothing went to the Codex backend
