"""Upstream bodies with lists that bring their own JSON text encode to the same JSON as without it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from codexd.jsonbody import EncodedList, compact, dumps_body, inner, joined

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(
    plain=st.dictionaries(st.text(max_size=8), JSON, max_size=5),
    encoded=st.dictionaries(st.text(max_size=8), st.lists(JSON, max_size=4), max_size=3),
)
def test_spliced_text_parses_as_the_plain_encoding(plain: dict[str, Any], encoded: dict[str, Any]) -> None:
    body = {**plain, **{key: EncodedList(items) for key, items in encoded.items()}}
    assert json.loads(dumps_body(body)) == json.loads(compact(body))
    assert dumps_body(body).isascii()  # as before: non-ASCII and lone surrogates escaped


@given(
    runs=st.lists(st.lists(JSON, max_size=3), max_size=6), plain=st.dictionaries(st.text(max_size=8), JSON, max_size=3)
)
def test_a_list_joined_from_its_runs_texts_encodes_as_the_whole(runs: list[list[Any]], plain: dict[str, Any]) -> None:
    items = [item for run in runs for item in run]
    joined_list = joined(items, [inner(run) for run in runs])  # runs of no items give empty pieces
    assert joined_list.text == compact(items)
    body = {**plain, "input": joined_list}
    assert dumps_body(body) == compact({**{k: v for k, v in plain.items() if k != "input"}, "input": items})


def test_the_kept_text_is_used_as_given() -> None:
    items = [{"name": "Read"}]
    body = {"model": "m", "tools": EncodedList(items, b'[{"name":"Read"}]'), "stream": True}
    assert dumps_body(body) == b'{"model":"m","stream":true,"tools":[{"name":"Read"}]}'
    assert dumps_body({"tools": EncodedList(items)}) == b'{"tools":[{"name":"Read"}]}'


def test_a_list_changed_after_it_was_encoded_is_encoded_again() -> None:
    tools = EncodedList([{"name": "Read"}, {"name": "Write"}])
    tools.append({"name": "Bash"})
    assert [t["name"] for t in json.loads(dumps_body({"tools": tools}))["tools"]] == ["Read", "Write", "Bash"]
    tools = EncodedList([{"name": "Read"}, {"name": "Write"}])
    tools[1] = {"name": "Edit"}
    assert json.loads(dumps_body({"tools": tools}))["tools"] == [{"name": "Read"}, {"name": "Edit"}]
    tools = EncodedList([{"name": "Read"}, {"name": "Write"}])
    tools[:] = [t for t in tools if t["name"] == "Write"]
    assert json.loads(dumps_body({"tools": tools}))["tools"] == [{"name": "Write"}]
