"""The Anthropic Messages -> Responses request translator: what reaches the backend, and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codexd.errors import CodexdError, ErrorKind
from codexd.jsonbody import dumps_body
from codexd.jsonparse import TOOL_LISTS, Remembered, SharedItems
from codexd.models import ModelMap
from codexd.translate import thinking_signature
from codexd.translate.messages_request import MessagesRequest, to_responses

MODELS = ModelMap("gpt-5.5", "gpt-5.4-mini", {"fast": "gpt-5.4"})
SIG = thinking_signature.encode("rs_0abc", "gAAAAABenc")
LONG_TOOL = "mcp__plugin_some_server_with_a_long_name__tool_with_an_even_longer_name_x"


def translate(body: dict[str, Any], **kwargs: Any) -> MessagesRequest:
    kwargs.setdefault("models", MODELS)
    kwargs.setdefault("instructions", "You are a helpful assistant.")
    return to_responses(body, **kwargs)


def upstream(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return translate(body, **kwargs).body


def request(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 32000, "messages": list(messages), **fields}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def tool_use(tid: str, name: str = "Read", tool_input: Any = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": tid, "name": name, "input": tool_input if tool_input is not None else {}}


def tool_result(tid: str, content: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tid, "content": content, **extra}


def bad(body: Any) -> CodexdError:
    with pytest.raises(CodexdError) as info:
        translate(body)
    assert info.value.kind is ErrorKind.BAD_REQUEST and info.value.status == 400
    return info.value


# --- the fixed parts of every body --------------------------------------------------------------------


def test_backend_requirements_and_dropped_parameters() -> None:
    body = request(
        user("hi"),
        temperature=1,
        top_p=0.9,
        top_k=5,
        stop_sequences=["END"],
        metadata={"user_id": "u1"},
        context_management={"edits": []},
        stream=True,
    )
    out = translate(body)
    assert out.stream is True and out.model == "claude-sonnet-4-5"
    sent = out.body
    assert sent["stream"] is True and sent["store"] is False
    assert sent["include"] == ["reasoning.encrypted_content"]
    for dropped in ("max_tokens", "max_output_tokens", "temperature", "top_p", "top_k", "stop_sequences", "metadata"):
        assert dropped not in sent
    assert "context_management" not in sent
    assert sent["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]


def test_max_tokens_may_be_missing() -> None:
    assert translate({"model": "claude-haiku-4-5", "messages": [user("count")]}).stream is False


@pytest.mark.parametrize(
    ("model", "slug"),
    [
        ("claude-haiku-4-5-20251001", "gpt-5.4-mini"),
        ("claude-opus-4-8", "gpt-5.5"),
        ("fast", "gpt-5.4"),
        ("gpt-5.4", "gpt-5.4"),
    ],
)
def test_model_mapping_and_echo(model: str, slug: str) -> None:
    out = translate(request(user("hi"), model=model))
    assert out.body["model"] == slug and out.model == model


# --- system prompt ------------------------------------------------------------------------------------


def test_system_blocks_become_instructions_without_the_billing_header() -> None:
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.8a5; cc_entrypoint=sdk-cli;"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
    ]
    assert upstream(request(user("hi"), system=system))["instructions"] == "You are Claude Code.\n\nBe brief."


def test_instructions_fall_back_to_the_default() -> None:
    assert upstream(request(user("hi")), instructions="Default prompt.")["instructions"] == "Default prompt."
    assert (
        upstream(request(user("hi"), system="  "), instructions="Default prompt.")["instructions"] == "Default prompt."
    )
    assert upstream(request(user("hi"), system="Own prompt."))["instructions"] == "Own prompt."


def test_system_messages_fold_in_before_the_conversation_and_stay_in_place_after() -> None:
    body = request(
        {"role": "system", "content": "Available agent types: none"},
        user("hi"),
        {"role": "system", "content": [{"type": "text", "text": "Mode changed."}]},
        system="Base.",
    )
    sent = upstream(body)
    assert sent["instructions"] == "Base.\n\nAvailable agent types: none"
    assert sent["input"][-1] == {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "Mode changed."}],
    }
    assert all(item.get("role") != "system" for item in sent["input"])


# --- content ------------------------------------------------------------------------------------------


def test_text_and_tool_calls_keep_their_order_and_empty_text_is_dropped() -> None:
    body = request(
        user("go"),
        assistant(
            [
                {"type": "text", "text": "First I read."},
                tool_use("toolu_1", "Read", {"file_path": "/a"}),
                {"type": "text", "text": ""},
                {"type": "text", "text": "Then I grep."},
                tool_use("toolu_2", "Grep", {"pattern": "x"}),
            ]
        ),
        user([tool_result("toolu_1"), tool_result("toolu_2", "no match"), {"type": "text", "text": "continue"}]),
    )
    items = upstream(body)["input"]
    assert [(i["type"], i.get("role")) for i in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("function_call", None),
        ("message", "assistant"),
        ("function_call", None),
        ("function_call_output", None),
        ("function_call_output", None),
        ("message", "user"),
    ]
    assert items[1]["content"] == [{"type": "output_text", "text": "First I read."}]
    assert items[2] == {
        "type": "function_call",
        "call_id": "toolu_1",
        "name": "Read",
        "arguments": '{"file_path":"/a"}',
    }
    assert items[6] == {"type": "function_call_output", "call_id": "toolu_2", "output": "no match"}
    assert items[7]["content"] == [{"type": "input_text", "text": "continue"}]


def test_images_and_pdfs() -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
            "title": "spec",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
    ]
    parts = upstream(request(user(content)))["input"][0]["content"]
    assert parts == [
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
        {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
        {"type": "input_file", "filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
        {"type": "input_text", "text": "plain words"},
    ]


@pytest.mark.parametrize(
    ("block", "param"),
    [
        ({"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}, "messages.0.content.0.source.type"),
        (
            {"type": "document", "source": {"type": "base64", "media_type": "application/msword", "data": "AA=="}},
            "messages.0.content.0.source.media_type",
        ),
        ({"type": "image", "source": {"type": "file", "file_id": "file_1"}}, "messages.0.content.0.source.type"),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png"}},
            "messages.0.content.0.source.data",
        ),
    ],
)
def test_unusable_media_is_a_clear_400(block: dict[str, Any], param: str) -> None:
    assert bad(request(user([block]))).param == param


def test_tool_results_with_images_errors_and_lists() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}
    body = request(
        user("look"),
        assistant([tool_use("toolu_img"), tool_use("toolu_err"), tool_use("toolu_list"), tool_use("toolu_none")]),
        user(
            [
                tool_result("toolu_img", [{"type": "text", "text": "screenshot:"}, image]),
                tool_result("toolu_err", "<tool_use_error>InputValidationError</tool_use_error>", is_error=True),
                tool_result("toolu_list", [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
                {"type": "tool_result", "tool_use_id": "toolu_none"},
            ]
        ),
    )
    outputs = {i["call_id"]: i["output"] for i in upstream(body)["input"] if i["type"] == "function_call_output"}
    assert outputs["toolu_img"] == [
        {"type": "input_text", "text": "screenshot:"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBOR"},
    ]
    assert outputs["toolu_err"].startswith("[tool error]") and "InputValidationError" in outputs["toolu_err"]
    assert outputs["toolu_list"] == "a\nb"
    assert outputs["toolu_none"] == ""


def test_unpaired_calls_and_outputs_are_dropped() -> None:
    body = request(
        user("x"),
        assistant([tool_use("toolu_paired"), tool_use("toolu_lonely")]),
        user([tool_result("toolu_paired"), tool_result("toolu_stray")]),
    )
    ids = [(i["type"], i["call_id"]) for i in upstream(body)["input"] if "call_id" in i]
    assert ids == [("function_call", "toolu_paired"), ("function_call_output", "toolu_paired")]


def test_long_call_ids_are_shortened_the_same_on_both_sides() -> None:
    long_id = "toolu_" + "x" * 80
    items = upstream(request(user("x"), assistant([tool_use(long_id)]), user([tool_result(long_id)])))["input"]
    call_ids = {i["call_id"] for i in items if "call_id" in i}
    assert len(call_ids) == 1 and len(call_ids.pop()) <= 64


# --- thinking -----------------------------------------------------------------------------------------


def test_signature_codec_round_trips_and_rejects_everything_else() -> None:
    assert thinking_signature.decode(SIG) == thinking_signature.ReasoningRef("rs_0abc", "gAAAAABenc")
    assert SIG.startswith("codexd1.") and "=" not in SIG
    assert thinking_signature.decode(thinking_signature.encode(None, "e")) == thinking_signature.ReasoningRef(None, "e")
    for other in (
        "",
        "EqQBCkgIARAB",
        "codexd1.",
        "codexd1.!!!!",
        "codexd1.W10",
        "codexd1.e30",
        "codexd1.\u00e9",
        None,
        5,
    ):
        assert thinking_signature.decode(other) is None


def test_thinking_with_our_signature_becomes_a_reasoning_item_without_id() -> None:
    body = request(
        user("q"),
        assistant(
            [
                {"type": "thinking", "thinking": "Let me see.", "signature": SIG},
                {"type": "thinking", "thinking": "foreign", "signature": "EqQBCkgIARABGAIiQL"},
                {"type": "thinking", "thinking": "replayed by Claude Code", "signature": ""},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy"},
                {"type": "text", "text": "Answer."},
            ]
        ),
        user("more"),
    )
    items = upstream(body)["input"]
    assert items[1] == {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Let me see."}],
        "encrypted_content": "gAAAAABenc",
    }
    assert [i["type"] for i in items] == ["message", "reasoning", "message", "message"]


def test_signature_only_thinking_replays_with_an_empty_summary() -> None:
    body = request(user("q"), assistant([{"type": "thinking", "thinking": "", "signature": SIG}]), user("go"))
    assert upstream(body)["input"][1] == {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAABenc"}


@pytest.mark.parametrize(
    ("budget", "effort"),
    [
        (512, "minimal"),
        (513, "low"),
        (1024, "low"),
        (1025, "medium"),
        (8192, "medium"),
        (24576, "high"),
        (24577, "xhigh"),
        (31999, "xhigh"),
    ],
)
def test_budget_tokens_map_to_effort(budget: int, effort: str) -> None:
    out = translate(request(user("q"), thinking={"type": "enabled", "budget_tokens": budget}))
    assert out.body["reasoning"] == {"effort": effort, "summary": "auto"} and out.thinking is True


@pytest.mark.parametrize(
    ("asked", "effort"), [("low", "low"), ("medium", "medium"), ("high", "high"), ("xhigh", "xhigh"), ("max", "xhigh")]
)
def test_adaptive_thinking_uses_output_config_effort(asked: str, effort: str) -> None:
    body = request(user("q"), thinking={"type": "adaptive"}, output_config={"effort": asked})
    assert upstream(body)["reasoning"] == {"effort": effort, "summary": "auto"}


def test_without_thinking_the_default_effort_applies_and_no_summary_is_asked() -> None:
    for thinking in (None, {"type": "disabled"}):
        body = request(user("q"), **({"thinking": thinking} if thinking else {}))
        out = translate(body, default_effort="high")
        assert out.body["reasoning"] == {"effort": "high"} and out.thinking is False
    adaptive = translate(request(user("q"), thinking={"type": "adaptive"}), default_effort="low")
    assert adaptive.body["reasoning"] == {"effort": "low", "summary": "auto"}


def test_omitted_display_keeps_thinking_blocks_but_asks_for_no_summary() -> None:
    out = translate(request(user("q"), thinking={"type": "enabled", "budget_tokens": 4000, "display": "omitted"}))
    assert out.body["reasoning"] == {"effort": "medium"} and out.thinking is True


def test_web_search_lifts_minimal_effort() -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}]
    body = request(user("q"), thinking={"type": "enabled", "budget_tokens": 100}, tools=tools)
    assert upstream(body)["reasoning"]["effort"] == "low"


# --- tools --------------------------------------------------------------------------------------------


def test_tools_are_strict_false_cleaned_and_allow_listed() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "when": {"type": "string", "format": "date-time"},
            "format": {"type": "string", "description": "a property that happens to be called format"},
            "options": {"type": "object"},
            "items": {"type": "array", "items": {"anyOf": [{"type": "object"}, {"const": "x"}]}},
        },
        "required": ["url"],
        "additionalProperties": False,
    }
    tool = {
        "name": "WebFetch",
        "description": "Fetch a page",
        "input_schema": schema,
        "cache_control": {"type": "ephemeral"},
        "defer_loading": True,
        "eager_input_streaming": True,
        "input_examples": [{}],
    }
    (spec,) = upstream(request(user("q"), tools=[tool]))["tools"]
    assert set(spec) == {"type", "name", "description", "parameters", "strict"}
    assert spec["strict"] is False and spec["type"] == "function"
    params = spec["parameters"]
    assert "$schema" not in params and params["additionalProperties"] is False and params["required"] == ["url"]
    assert params["properties"]["url"] == {"type": "string"}
    assert params["properties"]["when"]["format"] == "date-time"
    assert params["properties"]["format"]["type"] == "string"
    assert params["properties"]["options"] == {"type": "object", "properties": {}}
    assert params["properties"]["items"]["items"]["anyOf"][0] == {"type": "object", "properties": {}}


def test_repeated_tool_lists_translate_as_the_first_time_and_changes_are_seen() -> None:
    def tools(description: str) -> list[dict[str, Any]]:
        schema = {"type": "object", "properties": {"path": {"type": "string", "format": "uri"}}}
        return [
            {"name": "Read", "description": description, "input_schema": schema},
            {"name": "mcp__" + "x" * 70, "input_schema": schema},
        ]

    first = translate(request(user("q"), tools=tools("Read a file")))
    again = translate(request(user("q"), tools=tools("Read a file")))  # equal, not the same objects
    assert again.body["tools"] == first.body["tools"] and again.tool_names == first.tool_names
    assert again.body["tools"] is not first.body["tools"]  # a request may not change another's list
    # The repeat brings the first one's JSON text, which the upstream body splices in.
    assert again.body["tools"].text is first.body["tools"].text
    assert json.loads(dumps_body(again.body)) == json.loads(json.dumps(first.body))
    for other in range(TOOL_LISTS + 1):  # more different lists than are remembered
        translate(request(user("q"), tools=tools(f"Other {other}")))
    changed = translate(request(user("q"), tools=tools("Read a text file")))
    assert changed.body["tools"][0]["description"] == "Read a text file"
    assert translate(request(user("q"), tools=tools("Read a file"))).body["tools"] == first.body["tools"]
    # A main agent and the kinds of sub-agent it runs send lists of their own, in turn: each is translated once.
    agents = [translate(request(user("q"), tools=tools(f"Agent {k}"))) for k in range(6)]
    resent = [translate(request(user("q2"), tools=tools(f"Agent {k}"))) for k in range(6)]
    assert all(a.body["tools"].text is b.body["tools"].text for a, b in zip(agents, resent, strict=True))

    def default_of(tools_list: list[dict[str, Any]]) -> Any:
        request_ = translate(request(user("q"), tools=tools_list))
        return request_.body["tools"][0]["parameters"]["properties"]["path"]["default"]

    typed = tools("Read a file")
    typed[0]["input_schema"]["properties"]["path"]["default"] = True
    assert default_of(typed) is True
    typed[0]["input_schema"]["properties"]["path"]["default"] = 1  # equal to True in Python, not in JSON
    assert type(default_of(typed)) is int
    with pytest.raises(CodexdError):  # a bad list is refused every time, never remembered
        translate(request(user("q"), tools=[*tools("Read a file"), {"name": ""}]))
    with pytest.raises(CodexdError):
        translate(request(user("q"), tools=[*tools("Read a file"), {"name": ""}]))


def test_a_tool_without_schema_gets_an_empty_object_schema() -> None:
    (spec,) = upstream(request(user("q"), tools=[{"name": "Ping"}]))["tools"]
    assert spec["parameters"] == {"type": "object", "properties": {}}


def test_long_tool_names_are_shortened_and_mapped_back() -> None:
    other = "mcp__another_server_with_a_long_name__tool_with_an_even_longer_name_x"
    body = request(
        user("q"),
        assistant([tool_use("toolu_1", LONG_TOOL)]),
        user([tool_result("toolu_1")]),
        tools=[{"name": LONG_TOOL, "input_schema": {"type": "object"}}, {"name": other}, {"name": "Read"}],
        tool_choice={"type": "tool", "name": LONG_TOOL},
    )
    out = translate(body)
    names = [t["name"] for t in out.body["tools"]]
    assert all(len(n) <= 64 for n in names) and len(set(names)) == 3 and names[2] == "Read"
    assert out.tool_names == {names[0]: LONG_TOOL, names[1]: other}
    call = next(i for i in out.body["input"] if i["type"] == "function_call")
    assert call["name"] == names[0]
    assert out.body["tool_choice"] == {"type": "function", "name": names[0]}
    assert translate(body).tool_names == out.tool_names  # deterministic, so the prompt cache stays warm


def test_web_search_server_tool() -> None:
    tool = {
        "type": "web_search_20250305",
        "name": "web_search",
        "max_uses": 8,
        "allowed_domains": ["docs.python.org"],
        "blocked_domains": ["example.com"],
        "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
    }
    sent = upstream(request(user("q"), tools=[tool], tool_choice={"type": "tool", "name": "web_search"}))
    assert sent["tools"] == [
        {
            "type": "web_search",
            "filters": {"allowed_domains": ["docs.python.org"]},
            "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
        }
    ]
    assert sent["tool_choice"] == {"type": "web_search"}


def test_other_server_tools_are_refused() -> None:
    err = bad(request(user("q"), tools=[{"type": "bash_20250124", "name": "bash"}]))
    assert err.param == "tools.0.type" and "bash_20250124" in err.message


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        (None, "auto", True),
        ({"type": "auto"}, "auto", True),
        ({"type": "any"}, "required", True),
        ({"type": "none"}, "none", True),
        ({"type": "tool", "name": "Read"}, {"type": "function", "name": "Read"}, True),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
    ],
)
def test_tool_choice(choice: dict[str, Any] | None, expected: Any, parallel: bool) -> None:
    body = request(user("q"), tools=[{"name": "Read"}], **({"tool_choice": choice} if choice else {}))
    sent = upstream(body)
    assert sent["tool_choice"] == expected and sent["parallel_tool_calls"] is parallel


def test_tool_choice_naming_an_unknown_tool_is_refused() -> None:
    assert (
        bad(request(user("q"), tools=[{"name": "Read"}], tool_choice={"type": "tool", "name": "Write"})).param
        == "tool_choice.name"
    )


def test_structured_output_format() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    sent = upstream(request(user("q"), output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert sent["text"] == {"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": False}}


# --- prompt cache key ---------------------------------------------------------------------------------


def test_prompt_cache_key_is_stable_per_session() -> None:
    turn1 = request(user("hello"))
    turn2 = request(user("hello"), assistant("hi"), user("and now?"))
    a = translate(turn1, session_id="5f0c3f0e-aaaa-bbbb-cccc-000000000001")
    b = translate(turn2, session_id="5f0c3f0e-aaaa-bbbb-cccc-000000000001")
    c = translate(turn1, session_id="5f0c3f0e-aaaa-bbbb-cccc-000000000002")
    assert a.body["prompt_cache_key"] == b.body["prompt_cache_key"] == a.session_key
    assert c.body["prompt_cache_key"] != a.body["prompt_cache_key"]


def test_prompt_cache_key_from_metadata_user_id() -> None:
    new_style = json.dumps({"device_id": "d1", "account_uuid": "", "session_id": "s-1"})
    old_style = "user_abc123_account__session_0c9b6a8e-1111-2222-3333-444455556666"
    for user_id in (new_style, old_style):
        first = upstream(request(user("a"), metadata={"user_id": user_id}))
        later = upstream(request(user("a"), assistant("b"), user("c"), metadata={"user_id": user_id}))
        assert first["prompt_cache_key"] == later["prompt_cache_key"]
    other_device = json.dumps({"device_id": "d2", "account_uuid": "", "session_id": "s-1"})
    assert (
        upstream(request(user("a"), metadata={"user_id": other_device}))["prompt_cache_key"]
        == upstream(request(user("a"), metadata={"user_id": new_style}))["prompt_cache_key"]
    )


def test_prompt_cache_key_without_session_follows_the_conversation_start() -> None:
    first = upstream(request(user("a")))
    later = upstream(request(user("a"), assistant("b"), user("c")))
    other = upstream(request(user("z")))
    assert first["prompt_cache_key"] == later["prompt_cache_key"] != other["prompt_cache_key"]


# --- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (request(), "messages"),
        ({"model": "claude-x", "max_tokens": 5}, "messages"),
        ({"model": "claude-x", "messages": "hi"}, "messages"),
        (request("hi"), "messages.0"),
        (request({"role": "robot", "content": "x"}), "messages.0.role"),
        (request({"role": "user"}), "messages.0.content"),
        (request(user([{"type": "text"}])), "messages.0.content.0.text"),
        (request(user([{"text": "no type"}])), "messages.0.content.0.type"),
        (request(user(["bare string"])), "messages.0.content.0"),
        (request(user("x"), model=5), "model"),
        (request(user("x"), max_tokens="10"), "max_tokens"),
        (request(user("x"), max_tokens=True), "max_tokens"),
        (request(user("x"), temperature="hot"), "temperature"),
        (request(user("x"), stop_sequences=[1]), "stop_sequences.0"),
        (request(user("x"), stream="yes"), "stream"),
        (request(user("x"), system=[{"type": "text", "text": 3}]), "system.0.text"),
        (request(user("x"), tools={"name": "x"}), "tools"),
        (request(user("x"), tools=[{"description": "no name"}]), "tools.0.name"),
        (request(user("x"), tools=[{"name": "x", "input_schema": []}]), "tools.0.input_schema"),
        (request(user("x"), tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (request(user("x"), thinking={"type": "enabled", "budget_tokens": "lots"}), "thinking.budget_tokens"),
        (request(user("x"), thinking={"type": "maybe"}), "thinking.type"),
        (request(user("x"), output_config={"effort": "extreme"}), "output_config.effort"),
        (request(user("x"), metadata={"user_id": 7}), "metadata.user_id"),
        (
            request(assistant([{"type": "tool_use", "id": "t", "name": "n", "input": "{}"}])),
            "messages.0.content.0.input",
        ),
        (
            request(user([{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}])),
            "messages.0.content.0.is_error",
        ),
    ],
)
def test_bad_fields_are_400s_naming_their_path(body: Any, param: str) -> None:
    err = bad(body)
    assert err.param == param and err.message.startswith(param)


def test_non_object_body_is_a_400() -> None:
    for body in ([], "x", None, 3):
        bad(body)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
_KEYS = st.sampled_from(
    [
        "type",
        "text",
        "role",
        "content",
        "source",
        "id",
        "name",
        "input",
        "tool_use_id",
        "is_error",
        "signature",
        "thinking",
        "data",
        "media_type",
        "url",
        "title",
        "input_schema",
        "budget_tokens",
        "effort",
        "format",
        "schema",
    ]
)
_VALUES = st.sampled_from(
    [
        "user",
        "assistant",
        "system",
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "base64",
        "url",
        "text",
        "application/pdf",
        "enabled",
        "adaptive",
        "auto",
        "any",
        "tool",
        "none",
        "json_schema",
        "web_search_20250305",
        SIG,
        "codexd1.!!",
        "object",
    ]
)
_SHAPED = st.recursive(
    _VALUES | _JSON,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=40,
)
_BLOCK = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"]
        )
    },
    optional={key: _SHAPED for key in ["text", "source", "id", "name", "input", "tool_use_id", "content", "signature"]}
    | {"thinking": _SHAPED, "is_error": _SHAPED, "title": _SHAPED},
)
_MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system"]),
        "content": st.text(max_size=5) | st.lists(_BLOCK, max_size=4),
    }
)
_TOOL = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=70)},
    optional={"type": st.sampled_from(["custom", "web_search_20250305"]) | _SHAPED, "input_schema": _SHAPED},
)


def _expect_only_codexd_errors(body: Any) -> None:
    try:
        out = to_responses(body, models=MODELS, instructions="x", session_id=None)
    except CodexdError as err:
        assert err.kind is ErrorKind.BAD_REQUEST
        return
    json.dumps(out.body)  # whatever passes must be serialisable for the upstream


@settings(max_examples=200, deadline=None)
@given(_JSON)
def test_random_json_raises_nothing_but_codexd_errors(body: Any) -> None:
    _expect_only_codexd_errors(body)


_BASE = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@settings(max_examples=200, deadline=None)
@given(st.lists(_MESSAGE, min_size=1, max_size=4))
def test_random_messages_raise_nothing_but_codexd_errors(messages: list[Any]) -> None:
    _expect_only_codexd_errors({**_BASE, "messages": messages})


@pytest.mark.parametrize("field", ["system", "tools", "tool_choice", "thinking", "output_config", "metadata"])
@settings(max_examples=60, deadline=None)
@given(value=st.lists(_TOOL, max_size=3) | _SHAPED)
def test_random_top_level_fields_raise_nothing_but_codexd_errors(field: str, value: Any) -> None:
    _expect_only_codexd_errors({**_BASE, field: value})


# --- conversations the body parser remembered ----------------------------------------------------------


def remembered(*messages: dict[str, Any], after: SharedItems | None = None) -> SharedItems:
    """Messages as the body parser hands over a remembered conversation (later bodies share the objects)."""
    return SharedItems(list(messages), after.conversation if after is not None else None)


def sent(messages: list[Any], **fields: Any) -> dict[str, Any]:
    """A request with this very list of messages (``request`` copies them into a plain list)."""
    return {"model": "claude-sonnet-4-5", "max_tokens": 32000, "messages": messages, **fields}


def wire(out: MessagesRequest) -> Any:
    """What the backend receives."""
    return json.loads(dumps_body(out.body))


def test_a_remembered_message_follows_a_changed_tool_list() -> None:
    tools = [{"name": LONG_TOOL, "input_schema": {"type": "object"}}]
    turn = remembered(user("Go."), assistant([tool_use("t1", LONG_TOOL)]), user([tool_result("t1")]))
    short = upstream(sent(turn, tools=tools))["input"][1]["name"]
    renamed = [{"name": short, "input_schema": {"type": "object"}}, *tools]  # the short name is taken now
    again = upstream(sent(turn, tools=renamed))["input"][1]["name"]
    assert short != LONG_TOOL and again == upstream(request(*list(turn), tools=renamed))["input"][1]["name"] != short
    assert upstream(sent(turn, tools=tools))["input"][1]["name"] == short


def test_a_remembered_system_message_translates_for_where_it_stands() -> None:
    note = {"role": "system", "content": "Be brief."}
    hello = user("Hello.")
    first = remembered(note, hello)
    leading = translate(sent(first))
    later = translate(sent(remembered(hello, note, after=first)))
    assert "Be brief." in leading.body["instructions"] and len(leading.body["input"]) == 1
    assert later.body["input"][1]["role"] == "developer"


def test_a_bad_remembered_message_is_refused_every_time() -> None:
    turn = remembered(user("Go."), assistant([tool_use("t1")]), user([tool_result(7)]))  # type: ignore[arg-type]
    for _ in range(2):
        assert bad(sent(turn)).param == "messages.2.content.0.tool_use_id"


@settings(max_examples=200, deadline=None)
@given(st.lists(_MESSAGE, min_size=1, max_size=6), st.integers(min_value=0, max_value=6))
def test_random_remembered_conversations_translate_as_plain_ones(messages: list[Any], cut: int) -> None:
    def result(value: list[Any]) -> Any:
        try:
            return wire(to_responses({**_BASE, "messages": value}, models=MODELS, instructions="x"))
        except CodexdError as err:
            return err.param, str(err)

    conversation = Remembered()
    result(SharedItems(messages[:cut], conversation))  # an earlier turn of the same conversation
    assert result(SharedItems(messages, conversation)) == result(list(messages))
    assert result(SharedItems(messages, conversation)) == result(list(messages))
