"""Chat Completions request bodies -> the Responses body the Codex backend accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codexd.errors import CodexdError, ErrorKind
from codexd.jsonbody import dumps_body
from codexd.jsonparse import Remembered, SharedItems
from codexd.models import ModelMap
from codexd.translate.chat_request import FALLBACK_INSTRUCTIONS, ChatRequest, to_responses

MODELS = ModelMap(default="gpt-5.5", small="gpt-5.4-mini", aliases={"fast": "gpt-5.4-mini"})
# Every key the backend accepts from us; anything else in the upstream body is a leak.
UPSTREAM_KEYS = {
    "model",
    "instructions",
    "input",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "store",
    "stream",
    "include",
    "reasoning",
    "text",
    "service_tier",
    "prompt_cache_key",
}
HELLO = [{"role": "user", "content": "Hello"}]


def convert(body: Any, **kwargs: Any) -> ChatRequest:
    options: dict[str, Any] = {"models": MODELS, "default_effort": "medium", "instructions": "Default prompt."}
    return to_responses(body, **{**options, **kwargs})


def upstream(body: Any, **kwargs: Any) -> dict[str, Any]:
    return convert(body, **kwargs).upstream


def rejected(body: Any) -> CodexdError:
    with pytest.raises(CodexdError) as info:
        convert(body)
    assert info.value.kind is ErrorKind.BAD_REQUEST and info.value.status == 400
    return info.value


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def test_minimal_request_gets_every_required_backend_field() -> None:
    req = convert({"model": "gpt-5.5", "messages": HELLO})
    assert req.upstream["input"] == [user_text("Hello")]
    assert req.upstream["stream"] is True and req.upstream["store"] is False
    assert req.upstream["instructions"] == "Default prompt."
    assert req.upstream["include"] == ["reasoning.encrypted_content"]
    assert req.upstream["reasoning"] == {"effort": "medium"}
    assert (req.upstream["tools"], req.upstream["tool_choice"], req.upstream["parallel_tool_calls"]) == (
        [],
        "auto",
        True,
    )
    assert set(req.upstream) <= UPSTREAM_KEYS
    assert (req.stream, req.model, req.include_usage) == (False, "gpt-5.5", False)


def test_model_goes_through_the_model_map_but_the_client_name_is_kept() -> None:
    assert convert({"model": "fast", "messages": HELLO}).upstream["model"] == "gpt-5.4-mini"
    req = convert({"model": "claude-3-5-haiku", "messages": HELLO})
    assert (req.upstream["model"], req.model) == ("gpt-5.4-mini", "claude-3-5-haiku")
    assert convert({"messages": HELLO}).model == "gpt-5.5"


def test_empty_default_instructions_still_give_nonempty_instructions() -> None:
    assert upstream({"messages": HELLO}, instructions="")["instructions"] == FALLBACK_INSTRUCTIONS


def test_leading_system_and_developer_become_instructions_later_ones_developer_items() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Now answer in French."},
        ]
    }
    up = upstream(body)
    assert up["instructions"] == "Be terse.\n\nUse metric units."
    assert up["input"] == [
        user_text("Hi"),
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Now answer in French."}]},
    ]
    assert all(item.get("role") != "system" for item in up["input"])


def test_user_content_parts() -> None:
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": "https://example.com/b.png"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/", "detail": "low", "extra": 1},
        {"type": "input_text", "text": "raw"},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"}},
    ]
    content = upstream({"messages": [{"role": "user", "content": parts}]})["input"][0]["content"]
    assert content == [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "high"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"},
        {"type": "input_image", "image_url": "https://example.com/b.png", "detail": "auto"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/", "detail": "low"},
        {"type": "input_text", "text": "raw"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"},
    ]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "file", "file": {"file_id": "file-abc"}}, "messages[0].content[1].file.file_id"),
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "messages[0].content[1].type"),
        ({"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}, "messages[0].content[1].image_url.url"),
        (
            {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": ["high"]}},
            "messages[0].content[1].image_url.detail",
        ),
        ({"type": "video", "video": {}}, "messages[0].content[1].type"),
        ({"type": "text", "text": 5}, "messages[0].content[1].text"),
    ],
)
def test_unsupported_content_parts_are_a_400_with_their_path(part: dict[str, Any], param: str) -> None:
    err = rejected({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, part]}]})
    assert err.param == param


def conversation_with_tools() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {
            "role": "tool",
            "tool_call_id": "call_2",
            "content": [{"type": "text", "text": "2"}, {"type": "text", "text": "5C"}],
        },
        {"role": "assistant", "content": "Paris 18C, Rome 25C."},
    ]


def test_assistant_history_tool_calls_and_results() -> None:
    assert upstream({"messages": conversation_with_tools()})["input"] == [
        user_text("Weather in Paris and Rome?"),
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_2", "output": "25C"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Paris 18C, Rome 25C."}]},
    ]


def test_unpaired_calls_and_outputs_are_dropped() -> None:
    messages = conversation_with_tools()
    del messages[3]  # call_2 never answered
    messages.append({"role": "tool", "tool_call_id": "call_unknown", "content": "?"})
    items = upstream({"messages": messages})["input"]
    call_ids = [(i["type"], i["call_id"]) for i in items if "call_id" in i]
    assert call_ids == [("function_call", "call_1"), ("function_call_output", "call_1")]


def test_tool_message_with_null_content_gives_empty_output() -> None:
    messages = [
        *conversation_with_tools()[:2],
        {"role": "tool", "tool_call_id": "call_1", "content": None},
        {"role": "tool", "tool_call_id": "call_2", "content": "ok"},
    ]
    outputs = [i["output"] for i in upstream({"messages": messages})["input"] if i["type"] == "function_call_output"]
    assert outputs == ["", "ok"]


def test_legacy_functions_function_call_and_role_function() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "{}"}},
            {"role": "function", "name": "get_weather", "content": "sunny"},
        ],
        "functions": [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}],
        "function_call": {"name": "get_weather"},
    }
    up = upstream(body)
    call, output = up["input"][1], up["input"][2]
    assert (call["type"], call["name"], output["type"], output["output"]) == (
        "function_call",
        "get_weather",
        "function_call_output",
        "sunny",
    )
    assert call["call_id"] == output["call_id"]
    assert up["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather",
            "strict": False,
            "parameters": {"type": "object"},
        }
    ]
    assert up["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert upstream({**body, "function_call": "none"})["tool_choice"] == "none"


def test_tools_are_flattened_from_an_allow_list() -> None:
    tools = [
        {
            "type": "function",
            "cache_control": {"type": "ephemeral"},
            "function": {
                "name": "get_weather",
                "description": "Get the weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                "strict": True,
                "x-vendor": "leak",
            },
        },
        {"type": "function", "function": {"name": "ping"}},
    ]
    assert upstream({"messages": HELLO, "tools": tools})["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Get the weather",
            "strict": True,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
        # strict is written explicitly: the Responses API would default a missing one to true
        {
            "type": "function",
            "name": "ping",
            "description": "",
            "strict": False,
            "parameters": {"type": "object", "properties": {}},
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "function": {"name": "ping"}}, {"type": "function", "name": "ping"}),
    ],
)
def test_tool_choice_mapping(choice: Any, expected: Any) -> None:
    tools = [{"type": "function", "function": {"name": "ping"}}]
    assert upstream({"messages": HELLO, "tools": tools, "tool_choice": choice})["tool_choice"] == expected


def test_allowed_tools_filters_tools_and_sends_the_mode() -> None:
    tools = [{"type": "function", "function": {"name": n}} for n in ("a", "b", "c")]
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "b"}}]},
    }
    up = upstream({"messages": HELLO, "tools": tools, "tool_choice": choice})
    assert ([t["name"] for t in up["tools"]], up["tool_choice"]) == (["b"], "required")


def test_repeated_tools_are_reused_with_their_encoding_and_changes_are_seen() -> None:
    def tools(default: Any) -> list[dict[str, Any]]:
        schema = {"type": "object", "properties": {"path": {"type": "string", "default": default}}}
        return [{"type": "function", "function": {"name": n, "parameters": schema}} for n in ("a", "b", "c")]

    first = upstream({"messages": HELLO, "tools": tools(True)})
    again = upstream({"messages": HELLO, "tools": tools(True)})  # equal, not the same objects
    assert again["tools"] == first["tools"] and again["tools"] is not first["tools"]
    assert again["tools"].text is first["tools"].text  # encoded once
    assert json.loads(dumps_body(again)) == json.loads(json.dumps(first))
    one = upstream({"messages": HELLO, "tools": tools(1)})  # equal to True in Python, not in JSON
    assert json.loads(dumps_body(one))["tools"][0]["parameters"]["properties"]["path"]["default"] == 1
    # Six agents with lists of their own, in turn: each list is translated and encoded once.
    agents = [upstream({"messages": HELLO, "tools": tools(f"agent {k}")}) for k in range(6)]
    resent = [upstream({"messages": HELLO, "tools": tools(f"agent {k}")}) for k in range(6)]
    assert all(a["tools"].text is b["tools"].text for a, b in zip(agents, resent, strict=True))
    # A request that filters the list (allowed_tools) sends the filtered list, and the next one the whole.
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"function": {"name": "b"}}]}}
    filtered = upstream({"messages": HELLO, "tools": tools(True), "tool_choice": choice})
    assert [t["name"] for t in json.loads(dumps_body(filtered))["tools"]] == ["b"]
    whole = json.loads(dumps_body(upstream({"messages": HELLO, "tools": tools(True)})))
    assert [t["name"] for t in whole["tools"]] == ["a", "b", "c"]
    for _ in range(2):  # a bad list is refused every time, never kept
        assert rejected({"messages": HELLO, "tools": [*tools(True), {"type": "function"}]}).param == "tools[3].function"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {}}}, "tool_choice"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function.name"),
        (
            {"tools": [{"type": "function", "function": {"name": "x", "parameters": "{}"}}]},
            "tools[0].function.parameters",
        ),
        ({"tools": {"type": "function"}}, "tools"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ],
)
def test_bad_tool_fields_are_a_400_with_their_path(body: dict[str, Any], param: str) -> None:
    assert rejected({"messages": HELLO, **body}).param == param


def test_parallel_tool_calls_false_is_forwarded() -> None:
    assert upstream({"messages": HELLO, "parallel_tool_calls": False})["parallel_tool_calls"] is False


def test_json_object_format_adds_a_json_hint_only_when_missing() -> None:
    up = upstream({"messages": HELLO, "response_format": {"type": "json_object"}})
    assert up["text"] == {"format": {"type": "json_object"}}
    assert "JSON" in up["instructions"]
    mentioned = [{"role": "user", "content": "Reply in json please"}]
    assert (
        upstream({"messages": mentioned, "response_format": {"type": "json_object"}})["instructions"]
        == "Default prompt."
    )


def test_json_schema_format_is_flattened() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "math", "description": "An answer", "schema": schema, "strict": True},
    }
    assert upstream({"messages": HELLO, "response_format": fmt})["text"] == {
        "format": {"type": "json_schema", "name": "math", "description": "An answer", "schema": schema, "strict": True}
    }
    assert "text" not in upstream({"messages": HELLO, "response_format": {"type": "text"}})
    assert rejected({"messages": HELLO, "response_format": {"type": "yaml"}}).param == "response_format.type"


def test_reasoning_effort_sources_and_default() -> None:
    assert upstream({"messages": HELLO, "reasoning_effort": "high"})["reasoning"] == {"effort": "high"}
    assert upstream({"messages": HELLO, "reasoning": {"effort": "low"}})["reasoning"] == {"effort": "low"}
    assert upstream({"messages": HELLO}, default_effort="xhigh")["reasoning"] == {"effort": "xhigh"}
    off = upstream({"messages": HELLO}, default_effort="")
    assert "reasoning" not in off and "include" not in off
    none = upstream({"messages": HELLO, "reasoning_effort": "none"})
    assert none["reasoning"] == {"effort": "none"} and "include" not in none
    assert rejected({"messages": HELLO, "reasoning_effort": 3}).param == "reasoning_effort"


def test_reasoning_summary_is_requested_when_configured_or_asked() -> None:
    assert upstream({"messages": HELLO}, reasoning_summary="auto")["reasoning"] == {
        "effort": "medium",
        "summary": "auto",
    }
    asked = {"messages": HELLO, "reasoning": {"effort": "high", "summary": "detailed"}}
    assert upstream(asked)["reasoning"] == {"effort": "high", "summary": "detailed"}


def test_verbosity_and_service_tier() -> None:
    assert upstream({"messages": HELLO, "verbosity": "low"})["text"] == {"verbosity": "low"}
    assert rejected({"messages": HELLO, "verbosity": "loud"}).param == "verbosity"
    assert upstream({"messages": HELLO, "service_tier": "priority"})["service_tier"] == "priority"
    for tier in ("auto", "default", "flex"):
        assert "service_tier" not in upstream({"messages": HELLO, "service_tier": tier})


def test_prompt_cache_key_sources() -> None:
    assert upstream({"messages": HELLO, "prompt_cache_key": "k1"}, session_key="s")["prompt_cache_key"] == "k1"
    assert upstream({"messages": HELLO, "user": "u"}, session_key="sess-9")["prompt_cache_key"] == "sess-9"
    by_user = upstream({"messages": HELLO, "user": "alice"})["prompt_cache_key"]
    assert (
        by_user == upstream({"messages": [{"role": "user", "content": "Other"}], "user": "alice"})["prompt_cache_key"]
    )
    assert by_user != upstream({"messages": HELLO, "user": "bob"})["prompt_cache_key"]


def test_derived_cache_key_is_stable_as_the_conversation_grows() -> None:
    first = upstream({"messages": HELLO})["prompt_cache_key"]
    grown = [*HELLO, {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "More"}]
    assert upstream({"messages": grown})["prompt_cache_key"] == first
    assert upstream({"messages": [{"role": "user", "content": "Bye"}]})["prompt_cache_key"] != first


def test_parameters_the_backend_rejects_are_dropped_and_the_request_succeeds() -> None:
    body = {
        "messages": HELLO,
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 10,
        "max_completion_tokens": 10,
        "frequency_penalty": 1,
        "presence_penalty": 1,
        "logit_bias": {"1": 2},
        "seed": 7,
        "stop": ["\n"],
        "user": "u",
        "stream_options": {"include_usage": True},
        "metadata": {"a": "b"},
        "store": True,
        "top_logprobs": 2,
        "logprobs": False,
        "n": 1,
        "safety_identifier": "x",
        "web_search_options": {},
        "unknown_future_field": 1,
    }
    assert set(upstream(body)) <= UPSTREAM_KEYS
    assert upstream(body)["store"] is False


def test_streaming_and_include_usage() -> None:
    req = convert({"messages": HELLO, "stream": True, "stream_options": {"include_usage": True}})
    assert (req.stream, req.include_usage, req.upstream["stream"]) == (True, True, True)
    # include_usage only exists for streams
    assert convert({"messages": HELLO, "stream_options": {"include_usage": True}}).include_usage is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HELLO, "n": 2}, "n"),
        ({"messages": HELLO, "n": "1"}, "n"),
        ({"messages": HELLO, "logprobs": True}, "logprobs"),
        ({"messages": HELLO, "modalities": ["text", "audio"]}, "modalities"),
        ({"messages": HELLO, "stream": "yes"}, "stream"),
        ({"messages": HELLO, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
        ({"messages": HELLO, "model": 5}, "model"),
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "Hello"}, "messages"),
        ({"messages": ["Hello"]}, "messages[0]"),
        ({"messages": [{"content": "Hello"}]}, "messages[0].role"),
        ({"messages": [{"role": "robot", "content": "Hello"}]}, "messages[0].role"),
        (
            {"messages": [*HELLO, {"role": "assistant", "content": "ok"}, {"role": "user", "content": 5}]},
            "messages[2].content",
        ),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "system", "content": [{"type": "image_url"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "assistant", "content": 1}]}, "messages[0].content"),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 1}}]}
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]},
            "messages[0].tool_calls[0].id",
        ),
    ],
)
def test_invalid_requests_are_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    assert rejected(body).param == param


@pytest.mark.parametrize("body", [None, [], "x", 3, True, [{"messages": HELLO}]])
def test_a_body_that_is_not_an_object_is_a_400(body: Any) -> None:
    rejected(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "role",
        "content",
        "type",
        "text",
        "image_url",
        "url",
        "detail",
        "file",
        "file_data",
        "file_id",
        "tool_calls",
        "id",
        "function",
        "name",
        "arguments",
        "tool_call_id",
        "function_call",
        "refusal",
        "parameters",
        "strict",
        "json_schema",
        "schema",
        "effort",
        "summary",
    ]
)
ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"])
PART_TYPES = st.sampled_from(["text", "input_text", "image_url", "input_image", "file", "input_file", "function"])
# Shaped like a real request, so the fuzzer reaches the deep paths instead of failing at the top.
SHAPED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6) | ROLES | PART_TYPES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(KEYS, children, max_size=4)
        | st.fixed_dictionaries({"type": PART_TYPES}, optional={k: children for k in ("text", "function", "name")})
    ),
    max_leaves=10,
)
TEXT = st.text(max_size=5)
PART = st.fixed_dictionaries(
    {"type": PART_TYPES},
    optional={
        "text": TEXT | SHAPED,
        "image_url": st.sampled_from(["https://x/a.png", "data:image/png;base64,AA"]) | SHAPED,
        "file": st.fixed_dictionaries({}, optional={"file_data": TEXT, "file_id": TEXT, "filename": SHAPED}) | SHAPED,
        "detail": st.sampled_from(["auto", "low"]) | SHAPED,
    },
)
FUNCTION = st.fixed_dictionaries({"name": TEXT | SHAPED}, optional={"arguments": TEXT | SHAPED})
TOOL_CALL = st.fixed_dictionaries({"id": TEXT | SHAPED, "function": FUNCTION | SHAPED}, optional={"type": SHAPED})
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES},
    optional={
        "content": TEXT | st.lists(PART, max_size=3) | SHAPED,
        "tool_calls": st.lists(TOOL_CALL, max_size=2) | SHAPED,
        "tool_call_id": st.sampled_from(["c1", "c2"]) | SHAPED,
        "function_call": FUNCTION | SHAPED,
        "name": TEXT | SHAPED,
        "refusal": TEXT | SHAPED,
    },
)
TOP_KEYS = st.sampled_from(
    [
        "model",
        "tools",
        "functions",
        "tool_choice",
        "function_call",
        "response_format",
        "reasoning",
        "reasoning_effort",
        "stream",
        "stream_options",
        "n",
        "logprobs",
        "parallel_tool_calls",
        "verbosity",
        "user",
        "prompt_cache_key",
        "service_tier",
    ]
)
TOOL = st.fixed_dictionaries({"type": st.just("function") | SHAPED, "function": FUNCTION | SHAPED})
BODY = st.builds(
    lambda messages, extra: {"messages": messages, **extra},
    st.lists(MESSAGE, min_size=1, max_size=4),
    st.dictionaries(TOP_KEYS, SHAPED | st.lists(TOOL, max_size=2), max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON | BODY)
def test_arbitrary_json_never_raises_anything_but_codexd_error(body: Any) -> None:
    try:
        req = convert(body)
    except CodexdError as err:
        assert err.status == 400
        return
    assert req.upstream["instructions"]
    assert set(req.upstream) <= UPSTREAM_KEYS
    assert all(item.get("role") != "system" for item in req.upstream["input"])


# --- conversations the body parser remembered ----------------------------------------------------------


def wire(body: dict[str, Any]) -> Any:
    """What the backend receives for ``body``, or the refusal's field and message."""
    try:
        return json.loads(dumps_body(upstream(body)))
    except CodexdError as err:
        return err.param, str(err)


def test_legacy_function_calls_in_a_remembered_conversation_still_pair_up() -> None:
    legacy = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "{}"}},
        {"role": "function", "name": "get_weather", "content": "sunny"},
    ]
    conversation = Remembered()
    longer = [{"role": "user", "content": "Hi."}, *legacy]
    turns = [SharedItems(legacy, conversation), SharedItems(longer, conversation)]
    for turn in [*turns, *turns]:
        sent = wire({"messages": turn})
        assert sent == wire({"messages": list(turn)})
        assert [i["type"] for i in sent["input"][-2:]] == ["function_call", "function_call_output"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MESSAGE, min_size=1, max_size=6), st.integers(min_value=0, max_value=6))
def test_random_remembered_conversations_translate_as_plain_ones(messages: list[Any], cut: int) -> None:
    conversation = Remembered()
    wire({"messages": SharedItems(messages[:cut], conversation)})  # an earlier turn of the same conversation
    assert wire({"messages": SharedItems(messages, conversation)}) == wire({"messages": list(messages)})
    assert wire({"messages": SharedItems(messages, conversation)}) == wire({"messages": list(messages)})
