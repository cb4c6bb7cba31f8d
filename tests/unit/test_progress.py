"""Remembered conversations resumed turn after turn (translate/progress.py), for both translators and the
``/v1/responses`` normaliser: whatever the turns do to the conversation, the backend receives what a fresh
translation of each turn would send."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codexd.errors import CodexdError
from codexd.jsonbody import EncodedList, dumps_body
from codexd.jsonparse import BodyParser, Remembered, SharedItems
from codexd.models import ModelMap
from codexd.translate import chat_request, messages_request, responses_body

MODELS = ModelMap("gpt-5.5", "gpt-5.4-mini", {})
TEXT = st.sampled_from(["", "Go.", "Done.", "Use JSON."])


def _chat(messages: list[Any]) -> dict[str, Any]:
    body = {"model": "gpt-5.5", "messages": messages, "response_format": {"type": "json_object"}}
    return chat_request.to_responses(body, models=MODELS, default_effort="medium", instructions="x").upstream


def _messages(messages: list[Any]) -> dict[str, Any]:
    body = {"model": "claude-x", "max_tokens": 10, "messages": messages}
    return messages_request.to_responses(body, models=MODELS, instructions="x").body


IDS = st.sampled_from(["a", "b", "c", "d", "e"])  # few call ids: a call id used twice is common


def _chat_call(i: str) -> dict[str, Any]:
    call = {"id": i, "type": "function", "function": {"name": "read", "arguments": "{}"}}
    return {"role": "assistant", "content": "Reading.", "tool_calls": [call]}


def _chat_output(i: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": i, "content": "contents"}


LEGACY_CALL = {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}}
LEGACY_OUTPUT = {"role": "function", "name": "f", "content": "done"}
# Steps a conversation grows by: mostly answered calls, so that turns can resume, and everything else too.
CHAT_STEP = st.one_of(
    st.builds(lambda role, text: [{"role": role, "content": text}], st.sampled_from(["system", "user"]), TEXT),
    IDS.map(lambda i: [_chat_call(i), _chat_output(i)]),
    IDS.map(lambda i: [_chat_call(i)]),
    IDS.map(lambda i: [_chat_output(i)]),
    st.just([LEGACY_CALL, LEGACY_OUTPUT]),
    st.sampled_from([[LEGACY_CALL], [LEGACY_OUTPUT], [{"role": "developer", "content": "Be brief."}]]),
    st.integers(min_value=0, max_value=5).map(lambda n: [_chat_output(f"call_legacy_{n}")]),  # by the call's id
    st.just([{"role": "user", "content": 7}]),  # refused
)


def _messages_call(i: str) -> dict[str, Any]:
    use = {"type": "tool_use", "id": i, "name": "Read", "input": {}}
    return {"role": "assistant", "content": [{"type": "text", "text": "Reading."}, use]}


def _messages_output(i: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": "contents"}]}


MESSAGES_STEP = st.one_of(
    st.builds(lambda role, text: [{"role": role, "content": text}], st.sampled_from(["system", "user"]), TEXT),
    IDS.map(lambda i: [_messages_call(i), _messages_output(i)]),
    IDS.map(lambda i: [_messages_call(i)]),
    IDS.map(lambda i: [_messages_output(i)]),
    st.just([{"role": "assistant", "content": [{"type": "tool_use"}]}]),  # refused
)


def _responses(items: list[Any]) -> dict[str, Any]:
    return responses_body.normalise({"model": "gpt-5.5", "input": items}, models=MODELS, instructions="x").upstream


def _said(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def _responses_call(i: str, custom: bool = False) -> dict[str, Any]:
    if custom:  # the Codex CLI's apply_patch
        return {"type": "custom_tool_call", "id": f"ctc_{i}", "call_id": i, "name": "apply_patch", "input": "*** x"}
    return {"type": "function_call", "id": f"fc_{i}", "call_id": i, "name": "read", "arguments": "{}"}


def _responses_output(i: str, custom: bool = False) -> dict[str, Any]:
    return {"type": "custom_tool_call_output" if custom else "function_call_output", "call_id": i, "output": "ok"}


RESPONSES_STEP = st.one_of(
    st.builds(lambda role, text: [_said(role, text)], st.sampled_from(["system", "developer", "user"]), TEXT),
    st.builds(lambda role, text: [{"role": role, "content": text}], st.sampled_from(["system", "user"]), TEXT),
    st.builds(lambda i, c: [_responses_call(i, c), _responses_output(i, c)], IDS, st.booleans()),
    st.builds(lambda i, c: [_responses_call(i, c)], IDS, st.booleans()),
    st.builds(lambda i, c: [_responses_output(i, c)], IDS, st.booleans()),
    st.builds(lambda text: [_said("assistant", text)], TEXT),
    st.sampled_from(
        [
            [{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"}],
            [{"type": "reasoning", "id": "rs_2", "summary": []}],  # dropped: the backend keeps no items
            [{"type": "item_reference", "id": "msg_1"}],
            [{"type": "function_call", "name": "read", "arguments": "{}"}],  # refused: no call_id
            [7],  # refused
        ]
    ),
)
DIALECTS = {
    "chat": (_chat, CHAT_STEP),
    "messages": (_messages, MESSAGES_STEP),
    "responses": (_responses, RESPONSES_STEP),
}


def _wire(translate: Callable[[list[Any]], dict[str, Any]], messages: list[Any]) -> Any:
    """What the backend receives for these messages, or the refusal's field and message."""
    try:
        return json.loads(dumps_body(translate(messages)))
    except CodexdError as err:
        return err.param, str(err)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_turn_resumed_from_the_one_before_translates_as_a_fresh_one(dialect: str, data: st.DataObject) -> None:
    translate, step = DIALECTS[dialect]
    steps = st.lists(step, min_size=1, max_size=3).map(lambda done: [m for messages in done for m in messages])
    conversation = Remembered()
    turn: list[Any] = []
    for _ in range(data.draw(st.integers(min_value=1, max_value=8), label="turns")):
        edit = data.draw(st.sampled_from(["grow", "grow", "grow", "copy", "replace", "cut"]), label="edit")
        at = data.draw(st.integers(min_value=0, max_value=max(len(turn) - 1, 0)), label="at")
        if edit == "grow" or not turn:
            turn = [*turn, *data.draw(steps, label="more")]
        elif edit == "copy":  # equal, but no longer the same object
            turn = [*turn[:at], json.loads(json.dumps(turn[at])), *turn[at + 1 :]]
        elif edit == "replace":
            turn = [*turn[:at], *data.draw(step, label="new"), *turn[at + 1 :]]
        else:
            turn = turn[: at + 1]
        fresh = _wire(translate, list(turn))
        assert _wire(translate, SharedItems(turn, conversation)) == fresh
        assert _wire(translate, SharedItems(turn, conversation)) == fresh, "resumed from itself"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_resumed_conversation_is_not_translated_again_and_goes_upstream_as_its_joined_text(dialect: str) -> None:
    translate = DIALECTS[dialect][0]
    if dialect == "chat":
        asked = [
            {"role": "user", "content": "Go."},
            {
                "role": "assistant",
                "content": "Reading.",
                "tool_calls": [{"id": "a", "type": "function", "function": {"name": "read", "arguments": "{}"}}],
            },
        ]
        answer = {"role": "tool", "tool_call_id": "a", "content": "contents"}
    elif dialect == "responses":
        asked = [_said("user", "Go."), _said("assistant", "Reading."), _responses_call("a")]
        answer = _responses_output("a")
    else:
        asked = [
            {"role": "user", "content": "Go."},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Reading."},
                    {"type": "tool_use", "id": "a", "name": "Read", "input": {}},
                ],
            },
        ]
        answer = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "contents"}]}
    first = SharedItems([*asked, answer])
    later = SharedItems([*first, {"role": "assistant", "content": "Done."}], first.conversation)
    one, two = translate(first)["input"], translate(later)["input"]
    assert isinstance(two, EncodedList) and two.intact() and len(two) == 5
    assert two.text == json.dumps(list(two), separators=(",", ":")).encode()
    assert all(two[n] is one[n] for n in range(4)), "the earlier turn's items, not translated again"
    unanswered = translate(SharedItems([*asked, {"role": "user", "content": "Never mind."}], first.conversation))
    kinds = [item.get("type", "message") for item in unanswered["input"]]  # Responses: a message may omit it
    assert kinds == ["message", "message", "message"], "the call dropped"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_system_messages_before_the_first_item_stay_instructions_in_later_turns(dialect: str) -> None:
    translate = DIALECTS[dialect][0]
    first = SharedItems([{"role": "system", "content": "Be brief."}, {"role": "system", "content": "Use tabs."}])
    second = SharedItems(
        [*first, {"role": "system", "content": "No emoji."}, {"role": "user", "content": "Hi."}], first.conversation
    )
    third = SharedItems(
        [*second, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye."}], first.conversation
    )
    for turn in (first, second, third):
        out = translate(turn)
        assert json.loads(dumps_body(out)) == json.loads(dumps_body(translate(list(turn))))
    assert "No emoji." in out["instructions"] and len(out["input"]) == 3


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_forgotten_conversation_takes_what_was_kept_of_it_along(dialect: str) -> None:
    translate = DIALECTS[dialect][0]
    parser = BodyParser()
    raw = json.dumps({"messages": [{"role": "user", "content": f"Question {n}: " + "words " * 60} for n in range(30)]})
    body = parser.parse(raw.encode())
    first = translate(body["messages"])["input"]
    conversation = weakref.ref(body["messages"].conversation)
    assert translate(parser.parse(raw.encode())["messages"])["input"][0] is first[0], "the second turn reuses"
    parser.forget_conversations()
    del body
    gc.collect()
    assert conversation() is None, "nothing else holds the conversation, or what was kept of it"
    assert translate(parser.parse(raw.encode())["messages"])["input"][0] is not first[0]


def test_a_turn_does_not_resume_while_a_legacy_function_call_awaits_its_result() -> None:
    # A tool message answers the legacy call by its id, which leaves the call pending for a later
    # "function" message: that one answers it again (and is dropped), not the second call.
    first = SharedItems([{"role": "user", "content": "Go."}, LEGACY_CALL, _chat_output("call_legacy_1")])
    second = SharedItems([*first, LEGACY_CALL, LEGACY_OUTPUT], first.conversation)
    for turn in (first, second):
        assert _wire(_chat, turn) == _wire(_chat, list(turn))
    assert [item["type"] for item in _chat(second)["input"]] == ["message", "function_call", "function_call_output"]
