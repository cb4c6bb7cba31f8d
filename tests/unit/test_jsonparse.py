"""Request bodies are parsed as json.loads parses them, with large tool lists resent unchanged and the messages of
resent conversations taken from before (``codexd.jsonparse``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codexd.jsonparse import MAX_DEPTH, BodyParser, SharedItems, SharedList, TooDeep

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)
styles = st.sampled_from(
    [
        {"separators": (",", ":")},
        {},
        {"indent": 2},
        {"indent": "\t", "separators": (" , ", " : ")},
        {"ensure_ascii": False},
    ]
)


def tool(n: int, description: str = "Reads a file from the local filesystem.") -> dict[str, Any]:
    schema = {"type": "object", "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}}}
    return {"name": f"Tool{n}", "description": description * 4, "input_schema": schema}


TOOLS = [tool(n) for n in range(20)]  # about 5 KB of JSON


def body(tools: Any = TOOLS, text: str = "hello", **more: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "system": "x" * 9000, "tools": tools, "messages": [text], **more}


def outcome(parse: Any, raw: bytes) -> tuple[str, Any]:
    """What parsing ``raw`` gives: the value, or the exception's type and message."""
    try:
        return "value", parse(raw)
    except Exception as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=150, deadline=None)
@given(members=st.dictionaries(st.text(max_size=6), json_values, max_size=6), tools=json_values, style=styles)
def test_any_body_parses_as_json_loads_parses_it(members: dict[str, Any], tools: Any, style: dict[str, Any]) -> None:
    value = {**members, "tools": tools, "padding": "p" * 9000}
    raw = json.dumps(value, **style).encode()
    parser = BodyParser()
    assert parser.parse(raw) == json.loads(raw)
    assert parser.parse(raw) == json.loads(raw)  # again, with whatever it remembered


@settings(max_examples=200, deadline=None)
@given(style=styles, cut=st.integers(min_value=0), junk=st.sampled_from(["", "]", "}", ",", '"', "x", " 1", "{"]))
def test_broken_bodies_fail_or_succeed_exactly_as_json_loads(style: dict[str, Any], cut: int, junk: str) -> None:
    raw = json.dumps(body(), **style).encode()
    parser = BodyParser()
    parser.parse(raw)  # the tool list is remembered, so the broken copies meet it too
    at = cut % (len(raw) + 1)
    broken = raw[:at] + junk.encode() + raw[at + len(junk) :]
    assert outcome(parser.parse, broken) == outcome(json.loads, broken)


@pytest.mark.parametrize("before, after", [("", " x"), ("", "}"), ("", "{}"), (" \n\t", " \r\n"), ("x", ""), ("", "")])
def test_what_surrounds_a_body_is_judged_as_json_loads_judges_it(before: str, after: str) -> None:
    raw = (before + json.dumps(body()) + after).encode()
    parser = BodyParser()
    for _ in range(2):
        assert outcome(parser.parse, raw) == outcome(json.loads, raw)


def test_a_resent_tool_list_is_the_same_object_and_is_not_parsed_again() -> None:
    parser = BodyParser()
    first = parser.parse(json.dumps(body(text="first")).encode())
    # Another turn of the conversation: the other members change, and move around.
    turn = {"messages": ["first", "second"], "tools": TOOLS, "model": "m", "system": "y" * 9000}
    again = parser.parse(json.dumps(turn).encode())
    assert isinstance(first["tools"], SharedList) and again["tools"] is first["tools"]
    assert again == turn


def test_a_changed_tool_list_is_parsed_and_remembered_in_turn() -> None:
    parser = BodyParser()
    first = parser.parse(json.dumps(body()).encode())["tools"]
    changed_tools = [*TOOLS[:-1], tool(19, "Reads a file.")]  # the same text up to the last description
    changed = parser.parse(json.dumps(body(changed_tools)).encode())["tools"]
    assert changed == changed_tools and changed is not first
    assert parser.parse(json.dumps(body()).encode())["tools"] is first
    assert parser.parse(json.dumps(body(changed_tools)).encode())["tools"] is changed


def test_a_main_agent_and_its_kinds_of_sub_agent_each_find_their_tool_list_again() -> None:
    # Six agents with lists of their own, in turn, as Claude Code's main agent and the sub-agents it runs send them.
    parser = BodyParser()
    lists = [[tool(n, f"Agent {k}. ") for n in range(20)] for k in range(6)]
    first = [parser.parse(json.dumps(body(tools)).encode())["tools"] for tools in lists]
    again = [parser.parse(json.dumps(body(tools, "next")).encode())["tools"] for tools in lists]
    assert all(now is before for before, now in zip(first, again, strict=True))


def test_only_the_last_eight_lists_are_remembered() -> None:
    parser = BodyParser()
    lists = [[tool(n, f"List {k}. ") for n in range(20)] for k in range(9)]
    parsed = [parser.parse(json.dumps(body(tools)).encode())["tools"] for tools in lists]
    assert parser.parse(json.dumps(body(lists[8])).encode())["tools"] is parsed[8]
    assert parser.parse(json.dumps(body(lists[1])).encode())["tools"] is parsed[1]
    oldest = parser.parse(json.dumps(body(lists[0])).encode())["tools"]
    assert oldest == lists[0] and oldest is not parsed[0]


def test_small_bodies_and_small_lists_are_not_remembered() -> None:
    parser = BodyParser()
    small = {"tools": TOOLS[:2], "messages": ["hi"]}
    assert parser.parse(json.dumps(small).encode())["tools"] is not parser.parse(json.dumps(small).encode())["tools"]
    short = body(TOOLS[:1])
    assert type(parser.parse(json.dumps(short).encode())["tools"]) is list


def test_a_list_of_more_than_a_mebibyte_is_parsed_each_time() -> None:
    """Four such lists, kept with their parsed form, would hold several MB for as long as codexd runs."""
    parser = BodyParser()
    huge = body([tool(n, "x" * 1000) for n in range(300)])  # about 1.2 MB of text
    first = parser.parse(json.dumps(huge).encode())["tools"]
    again = parser.parse(json.dumps(huge).encode())["tools"]
    assert again == first == huge["tools"] and again is not first and type(again) is list


def test_a_repeated_key_keeps_its_last_value() -> None:
    parser = BodyParser()
    raw = f'{{"tools": {json.dumps(TOOLS)}, "x": "{"p" * 9000}", "tools": [1]}}'.encode()
    assert parser.parse(raw) == json.loads(raw)
    assert parser.parse(raw)["tools"] == [1]


def test_encodings_json_loads_accepts_are_accepted() -> None:
    text = json.dumps(body(text="naïve ✓"), ensure_ascii=False)
    for raw in (text.encode("utf-16"), text.encode("utf-8-sig"), text.encode("utf-32-le")):
        assert BodyParser().parse(raw) == json.loads(raw)


def test_a_large_body_that_is_not_an_object_parses_as_json_loads_parses_it() -> None:
    raw = json.dumps([TOOLS, "p" * 9000]).encode()
    assert BodyParser().parse(raw) == json.loads(raw)


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("size", [100, 20_000])
def test_depth_is_limited_as_before_for_small_and_large_bodies(size: int) -> None:
    pad = "p" * size
    at_limit = f'{{"a": {deep(MAX_DEPTH - 1)}, "pad": "{pad}"}}'.encode()
    over = f'{{"a": {deep(MAX_DEPTH)}, "pad": "{pad}"}}'.encode()
    assert BodyParser().parse(at_limit) == json.loads(at_limit)
    with pytest.raises(TooDeep):
        BodyParser().parse(over)
    # Bad syntax after a deep value is reported as bad syntax, as json.loads finds it first.
    with pytest.raises(ValueError, match="Expecting"):
        BodyParser().parse(over[:-1] + b",}")


def test_a_too_deep_tool_list_is_refused_every_time() -> None:
    parser = BodyParser()
    raw = json.dumps(body([TOOLS, json.loads(deep(MAX_DEPTH))])).encode()
    for _ in range(2):
        with pytest.raises(TooDeep):
            parser.parse(raw)


# --- conversations ------------------------------------------------------------------------------------


def turn(n: int) -> list[dict[str, Any]]:
    """Two messages of a conversation (about 600 bytes of JSON)."""
    call = {"type": "tool_use", "id": f"toolu_{n}", "name": "Read", "input": {"path": f"/src/file{n}.py"}}
    result = {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": f"line {n}\n" * 50}
    return [{"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]


def conversation(turns: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "Fix the failing test."}] + [m for n in range(turns) for m in turn(n)]


def marked(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """As Claude Code sends it: the last message's last block carries the cache mark."""
    copy = json.loads(json.dumps(messages))
    last = copy[-1]["content"]
    if isinstance(last, list):
        last[-1]["cache_control"] = {"type": "ephemeral"}
    return copy


def chat(messages: Any, **more: Any) -> bytes:
    return json.dumps({"model": "claude-sonnet-4-5", "system": "x" * 9000, "messages": messages, **more}).encode()


def test_a_resent_conversation_shares_its_unchanged_messages() -> None:
    parser = BodyParser()
    first = parser.parse(chat(marked(conversation(10))))["messages"]
    # The next turn: two more messages, and the cache mark moved from message 20 to the new last one.
    sent = marked(conversation(11))
    again = parser.parse(chat(sent))["messages"]
    assert again == sent and type(again) is SharedItems and again is not first
    assert all(again[n] is first[n] for n in range(20)), "unchanged messages are the same objects"
    assert again[20] is not first[20] and again[20] == sent[20], "the message that lost its mark is read anew"
    third = parser.parse(chat(marked(conversation(11)), stream=True))["messages"]
    assert all(third[n] is again[n] for n in range(22)), "the newest conversation is the one remembered"


def test_a_resent_responses_input_shares_its_unchanged_items() -> None:
    parser = BodyParser()
    items = [{"type": "message", "role": "user", "content": "x" * 500, "n": n} for n in range(20)]
    first = parser.parse(json.dumps({"model": "gpt-5.5", "input": items}).encode())["input"]
    again = parser.parse(json.dumps({"input": [*items, {"type": "message"}], "model": "gpt-5.5"}).encode())["input"]
    assert all(again[n] is first[n] for n in range(20)) and again[20] == {"type": "message"}


def test_messages_that_only_start_alike_are_read_whole() -> None:
    parser = BodyParser()
    padding = ["p" * 3000]
    parser.parse(chat([1, "a", [2], *padding]))
    raw = chat([12, "a", [2, 3], *padding])
    assert parser.parse(raw) == json.loads(raw)
    again = chat([1.5, "a", [2], *padding])
    assert parser.parse(again) == json.loads(again)


def test_a_too_deep_message_is_refused_every_time_and_the_rest_still_count() -> None:
    parser = BodyParser()
    messages = conversation(6)
    first = parser.parse(chat(messages))["messages"]
    too_deep = chat([*messages, json.loads(deep(MAX_DEPTH - 1))])  # the body and the list add two levels
    for _ in range(2):
        with pytest.raises(TooDeep):
            parser.parse(too_deep)
    at_limit = chat([*messages, json.loads(deep(MAX_DEPTH - 2))])
    assert parser.parse(at_limit) == json.loads(at_limit)
    assert parser.parse(chat(messages))["messages"][3] is not first[3], "the deep body replaced it, then this"


def test_small_and_oversized_conversations_are_not_remembered() -> None:
    parser = BodyParser(budget=64 * 1024)
    small = chat([{"role": "user", "content": "hi"}])
    assert type(parser.parse(small)["messages"]) is list
    huge = chat(conversation(150))  # about 90 KB of messages
    first, again = (parser.parse(huge)["messages"] for _ in range(2))
    assert type(again) is list and again[5] is not first[5] and again == first


def test_the_last_four_conversations_are_remembered_within_the_budget() -> None:
    parser = BodyParser(conversations=4, budget=64 * 1024)
    sessions = [[{"role": "user", "content": f"Session {k}."}, *conversation(20)] for k in range(6)]
    parsed = [parser.parse(chat(messages))["messages"] for messages in sessions[:5]]  # about 12 KB each
    assert parser.parse(chat(sessions[4]))["messages"][1] is parsed[4][1]
    assert parser.parse(chat(sessions[1]))["messages"][1] is parsed[1][1]
    newest = parser.parse(chat(sessions[0]))["messages"]
    assert newest[1] is not parsed[0][1], "fifth newest: forgotten"
    big = [{"role": "user", "content": "Big."}, *conversation(80)]  # about 54 KB: nothing else fits beside it
    kept = parser.parse(chat(big))["messages"]
    assert parser.parse(chat(big))["messages"][1] is kept[1]
    assert parser.parse(chat(sessions[0]))["messages"][1] is not newest[1], "over the budget beside the big one"
    assert parser.parse(chat(big))["messages"][1] is not kept[1], "and the big one beside the newest"


def test_a_main_agent_and_the_sub_agents_it_runs_are_all_remembered() -> None:
    # Claude Code's main agent late in a session (about 900 KB of messages) and five sub-agents running at once
    # (about 300 KB each) send their conversations in turn; with the default limits each finds its own again.
    parser = BodyParser()
    agents = [[{"role": "user", "content": f"Agent {k}."}, *conversation(400 if k else 1200)] for k in range(6)]
    assert 850_000 < len(chat(agents[0])) < 1_000_000 and 280_000 < len(chat(agents[1])) < 320_000
    first = [parser.parse(chat(messages))["messages"] for messages in agents]
    again = [parser.parse(chat([*messages, {"role": "user", "content": "Go on."}]))["messages"] for messages in agents]
    assert all(now[n] is before[n] for before, now in zip(first, again, strict=True) for n in (1, len(before) - 1))


def test_conversations_no_body_brought_for_a_while_are_forgotten_alone() -> None:
    now = [1000.0]
    parser = BodyParser(clock=lambda: now[0])
    finished, working = ([{"role": "user", "content": f"Agent {k}."}, *conversation(10)] for k in range(2))
    old = parser.parse(chat(finished))["messages"]
    now[0] += 100
    kept = parser.parse(chat(working))["messages"]
    now[0] += 50
    parser.forget_conversations(unused_for=120)
    assert parser.parse(chat(working))["messages"][1] is kept[1], "brought 50 s ago: kept"
    assert parser.parse(chat(finished))["messages"][1] is not old[1], "150 s ago: forgotten"


def test_forgotten_conversations_are_read_anew() -> None:
    parser = BodyParser()
    raw = chat(conversation(6))
    first = parser.parse(raw)["messages"]
    parser.forget_conversations()
    assert parser.parse(raw)["messages"][1] is not first[1]


# --- the settled part of a conversation, compared in pieces -----------------------------------------------


def settled(parser: BodyParser, raw: bytes) -> Any:
    """The messages ``parser`` reads in ``raw``; when it remembers them (2 KiB or more), their text is cut as
    the conversation says: the pieces and the rest are the list's text, each item's place in it its text."""
    messages = parser.parse(raw)["messages"]
    if type(messages) is not SharedItems:
        # Not remembered: its text was under 2 KiB, so its most compact spelling is too (ASCII escaping can
        # triple a text, so the default spelling tells nothing).
        assert len(json.dumps(messages, ensure_ascii=False, separators=(",", ":"))) < 2 * 1024
        return messages
    conversation = messages.conversation
    text = raw.decode()
    first = text.index("[", text.index('"messages"')) + 1
    first += len(text[first:]) - len(text[first:].lstrip())
    whole = "".join(conversation.pieces) + conversation.rest
    assert text.startswith(whole, first) and text[first + len(whole) :].lstrip().startswith("]")
    assert conversation.bounds == sorted(set(conversation.bounds)) and conversation.bounds[-1] < len(messages)
    for n, message in enumerate(messages):
        assert json.loads(conversation.text(n)) == message
    return messages


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(json_values, min_size=1, max_size=8),
    later=st.lists(json_values, max_size=3),
    changed=st.integers(min_value=0, max_value=10),
    style=styles,
    piece=st.sampled_from([1, 40, 200, 16 * 1024]),
    unsettled=st.integers(min_value=0, max_value=4),
)
def test_a_conversation_and_its_next_turns_parse_as_json_loads_parses_them(
    messages: list[Any], later: list[Any], changed: int, style: dict[str, Any], piece: int, unsettled: int
) -> None:
    parser = BodyParser(piece=piece, unsettled=unsettled)
    padded = ["p" * 3000, *messages]  # large enough to be remembered
    turns = [padded, [*padded, *later], [*padded, *later]]
    edited = list(turns[1])
    edited[changed % len(edited)] = {"edited": later}
    turns += [edited, [*edited, 1], [*edited, 12], padded[:-1], padded]
    for sent in turns:
        raw = json.dumps({"messages": sent, "padding": "p" * 9000}, **style).encode()
        assert settled(parser, raw) == json.loads(raw)["messages"]


@settings(max_examples=150, deadline=None)
@given(
    style=styles,
    cut=st.integers(min_value=0),
    junk=st.sampled_from(["", "]", "}", ",", '"', "x", " 1", "[", ", ]"]),
    piece=st.sampled_from([1, 300, 2000, 16 * 1024]),
)
def test_broken_turns_of_a_remembered_conversation_fail_or_succeed_exactly_as_json_loads(
    style: dict[str, Any], cut: int, junk: str, piece: int
) -> None:
    raw = json.dumps({"messages": conversation(8), "system": "x" * 9000}, **style).encode()
    parser = BodyParser(piece=piece, unsettled=1)
    parser.parse(raw)
    parser.parse(raw)
    at = cut % (len(raw) + 1)
    broken = raw[:at] + junk.encode() + raw[at + len(junk) :]
    assert outcome(parser.parse, broken) == outcome(json.loads, broken)
    assert parser.parse(raw) == json.loads(raw), "what was remembered is intact"


def test_a_long_session_keeps_all_but_its_newest_messages_in_pieces_and_shares_them() -> None:
    parser = BodyParser(piece=2000)
    sent = marked(conversation(40))  # about 25 KB of messages
    first = settled(parser, chat(sent))
    conversation_ = first.conversation
    assert len(conversation_.pieces) >= 10 and len(first) - 12 <= conversation_.bounds[-1] <= len(first) - 4
    sent = marked(conversation(41))  # the next turn: two more messages, the mark moved
    again = settled(parser, chat(sent))
    assert again == sent and again.conversation is conversation_
    assert all(again[n] is first[n] for n in range(len(first) - 1)), "the pieces' messages and the unsettled ones"
    assert again[len(first) - 1] is not first[len(first) - 1], "the message that lost its mark is read anew"
    middle = json.loads(json.dumps(sent))
    middle[7]["content"][0]["content"] = "changed"  # a piece no longer matches: item by item from there
    third = settled(parser, chat(middle))
    assert third == middle and third[6] is again[6] and third[7] is not again[7] and third[8] is again[8]
    assert settled(parser, chat(middle))[7] is third[7], "and the pieces are cut anew"
