"""Hostile input on every POST endpoint: random JSON, almost-valid bodies, wrong types, huge strings, deep
nesting, invalid UTF-8 and wrong content types. The answer is a 4xx in the endpoint's error shape or a 200,
never a 5xx or a traceback, nothing is logged at ERROR, and the server keeps serving.

Hypothesis runs synchronously against the threaded stack through ``http.client``.
"""

from __future__ import annotations

import copy
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Stack, threaded_stack, write_login
from tests.reliability.wire import CHAT, COUNT_TOKENS, MESSAGES, RESPONSES, Endpoint, assert_error_body

TOOL_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
RICH: dict[str, dict[str, Any]] = {
    "responses": {
        "model": "gpt-5.5",
        "instructions": "Be brief.",
        "input": [
            {"role": "system", "content": "rule"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
        "tools": [{"type": "function", "name": "weather", "parameters": TOOL_SCHEMA}],
        "tool_choice": "auto",
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"verbosity": "low"},
        "include": ["reasoning.encrypted_content"],
        "temperature": 0.2,
        "stream": False,
    },
    "chat": {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": TOOL_SCHEMA}}],
        "tool_choice": "auto",
        "max_tokens": 50,
        "temperature": 0.2,
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
        "stream": False,
        "stream_options": {"include_usage": True},
    },
    "messages": {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "tu1", "name": "weather", "input": {"city": "Paris"}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": "sunny"}]},
        ],
        "tools": [{"name": "weather", "description": "Weather", "input_schema": TOOL_SCHEMA}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "u1"},
        "stop_sequences": ["END"],
        "stream": False,
    },
    "count_tokens": {
        "model": "claude-sonnet-4-6",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tools": [{"name": "weather", "input_schema": TOOL_SCHEMA}],
    },
}
ENDPOINTS = [RESPONSES, CHAT, MESSAGES, COUNT_TOKENS]
DELETE = object()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home: Path = tmp_path_factory.mktemp("hostile") / "codex"
    write_login(home)
    with threaded_stack(home) as running:
        yield running


def post(stack: Stack, path: str, raw: bytes, content_type: str | None = "application/json") -> tuple[int, bytes]:
    """One POST on a fresh connection; the status and the whole body."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    try:
        headers = {"Content-Type": content_type} if content_type is not None else {}
        conn.request("POST", path, body=raw, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def check(stack: Stack, endpoint: Endpoint, raw: bytes, content_type: str | None = "application/json") -> int:
    """POST and assert the answer is a 200 or a 4xx in the dialect's error shape, with no traceback."""
    status, body = post(stack, endpoint.path, raw, content_type)
    assert status < 500, (status, body[:500], raw[:300])
    assert b"Traceback" not in body, body[:500]
    if status != 200:
        assert 400 <= status < 500
        assert_error_body(endpoint.dialect, json.loads(body))
    return status


def dump(value: Any) -> bytes:
    return json.dumps(value).encode()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of ``body`` with the value at ``path`` replaced by ``new`` (or removed, for ``DELETE``)."""
    if not path:
        return new
    out = copy.deepcopy(body)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if new is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return out


# Text with lone surrogates too: json.dumps writes them as \udXXX escapes, which json.loads accepts.
CHARS = st.characters(codec=None, exclude_categories=()) | st.sampled_from(["\ud800", "\udfff", "\x00", "\u2028"])
TEXT = st.text(CHARS, max_size=30) | st.sampled_from(
    ["", "gpt-5.5", "claude-3-haiku", "user", "assistant", "system", "tool", "text", "function", "auto", "none"]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(sorted({k for body in RICH.values() for k in body})) | TEXT
RANDOM_BODY = st.dictionaries(KEYS, JSON, max_size=6) | JSON
JSON_OK, REFUSED = (200,), (415,)
CONTENT_TYPES = [  # (Content-Type, acceptable statuses) for a valid JSON body
    (None, JSON_OK),
    ("application/json", JSON_OK),
    ("application/json; charset=utf-8", JSON_OK),
    ("text/plain", JSON_OK),  # what some clients send by default
    ("application/x-www-form-urlencoded", JSON_OK),  # curl -d
    ("application/vnd.api+json", JSON_OK),
    (";;;", JSON_OK),  # no media type at all: as if absent
    ("text/html", REFUSED),
    ("application/xml", REFUSED),
    ("application/octet-stream", REFUSED),
    ("image/png", REFUSED),
    ("multipart/form-data; boundary=xyz", (400, 415)),  # tornado itself refuses the malformed multipart
]
HYPOTHESIS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_rich_valid_bodies_are_accepted(live, error_trap, endpoint):
    assert check(live, endpoint, dump(RICH[endpoint.name])) == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@HYPOTHESIS
@given(data=st.data())
def test_random_json_bodies(live, error_trap, endpoint, data):
    check(live, endpoint, dump(data.draw(RANDOM_BODY)))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@HYPOTHESIS
@given(data=st.data())
def test_almost_valid_bodies(live, error_trap, endpoint, data):
    body = RICH[endpoint.name]
    path = data.draw(st.sampled_from(list(paths(body))), label="path")
    new = data.draw(JSON | st.just(DELETE) if path else JSON, label="value")
    check(live, endpoint, dump(replaced(body, path, new)))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | st.binary(max_size=20).map(lambda b: b'{"model": "' + b + b'"}'))
def test_random_bytes_and_invalid_utf8(live, error_trap, endpoint, raw):
    check(live, endpoint, raw)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize(("content_type", "expected"), CONTENT_TYPES)
def test_content_types(live, error_trap, endpoint, content_type, expected):
    assert check(live, endpoint, dump(RICH[endpoint.name]), content_type) in expected


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_huge_strings_in_every_field(live, error_trap, endpoint):
    body = RICH[endpoint.name]
    huge = "x" * (1 << 20)
    for path in paths(body):
        check(live, endpoint, dump(replaced(body, path, huge)))
        if path and isinstance(path[-1], str):  # a 1 MB key as well
            check(live, endpoint, dump(replaced(body, path[:-1], {huge: 1})))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
@pytest.mark.parametrize(
    "raw_text",
    [b'"gpt-5.5\\ud800"', b'"\\udfff"', b'"\xed\xa0\x80"', b'"\\ud83d\\ude00 ok"'],
    ids=["escaped_lone_high", "escaped_lone_low", "utf8_encoded_surrogate", "escaped_pair"],
)
def test_lone_surrogates_in_every_string(live, error_trap, endpoint, stream, raw_text):
    body = dict(RICH[endpoint.name])
    if endpoint.name != "count_tokens":
        body["stream"] = stream
    for path in paths(body):
        if path and isinstance(_at(body, path), str):
            check(live, endpoint, dump(replaced(body, path, "@S@")).replace(b'"@S@"', raw_text))


def _at(body: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        body = body[key]
    return body


def nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("depth", [90, 100, 500, 980, 10_000])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_deep_nesting(live, error_trap, endpoint, depth, kind):
    check(live, endpoint, nested(depth, kind))  # the whole body
    body = RICH[endpoint.name]
    deep = nested(depth, kind)
    for path in paths(body):
        if path:  # the same nesting in place of each field
            raw = dump(replaced(body, path, "@DEEP@")).replace(b'"@DEEP@"', deep)
            check(live, endpoint, raw)


def body_of(stack: Stack, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_server_is_alive_after_all_of_it(live, error_trap):
    # Runs last: every operational endpoint still answers (a bad model name once broke /metrics for good).
    for path in ("/health", "/ready", "/metrics", "/v1/models"):
        status, body = body_of(live, path)
        assert status == 200, (path, body[:300])
    metrics = body_of(live, "/metrics")[1]
    assert len(metrics) < 200_000, f"/metrics grew to {len(metrics)} bytes"
    assert b'codexd_tokens_total{kind="input",model="other"}' in metrics
