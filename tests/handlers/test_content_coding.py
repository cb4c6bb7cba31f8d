"""Compressed bodies both ways: clients' zstd and deflate bodies are decoded (the Codex CLI zstd-compresses
every request), and the bodies codexd sends the Codex backend go zstd-compressed, as the CLI's do."""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tests.fakes.backend import Recorded
from tests.fakes.scripts import Script
from tests.handlers.client import body_json, post_json, stream_sse
from tests.harness import Stack, start_stack

pytestmark = pytest.mark.gen_test(timeout=30)

ZSTD = {"Content-Encoding": "zstd"}
MAGIC = b"\x28\xb5\x2f\xfd"
# A Codex CLI turn: what the CLI sends, plus what codexd must still normalise away.
CLI_TURN = {
    "model": "codex-fast",
    "instructions": "You are Codex.",
    "input": [
        {"type": "message", "role": "user", "id": "msg_1", "content": [{"type": "input_text", "text": "List files."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "shell", "arguments": '{"cmd":"ls"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "README.md\nsrc/\n" * 200},
    ],
    "tools": [],
    "stream": True,
    "store": False,
    "temperature": 0.2,
}
ENDPOINTS = {
    "responses": ("/v1/responses", {"model": "gpt-5.5", "input": "packed"}),
    "chat": ("/v1/chat/completions", {"model": "gpt-5.5", "messages": [{"role": "user", "content": "packed"}]}),
    "messages": (
        "/v1/messages",
        {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "packed"}]},
    ),
}


def zstd(doc: Any, **params: Any) -> bytes:
    return zstandard.ZstdCompressor(**params).compress(json.dumps(doc).encode())


def sent_text(seen: Recorded) -> str:
    """The user text of the request the backend received."""
    return str(seen.body["input"][0]["content"][0]["text"])


@pytest.fixture
def custom(io_loop: Any, codex_home: Path) -> Iterator[Any]:
    """Start codexd with settings of its own; every stack started is stopped at the end."""
    started: list[Stack] = []

    def start(home: Path = codex_home, **settings: Any) -> Stack:
        started.append(start_stack(home, **settings))
        return started[-1]

    yield start
    for stack in started:
        stack.stop()


# --- what clients send ----------------------------------------------------------------------------------


async def test_a_codex_cli_zstd_body_is_decoded_and_normalised(custom):
    stack = custom(aliases={"codex-fast": "gpt-5.4-mini"})
    read = await stream_sse(f"{stack.url}/v1/responses", zstd(CLI_TURN, level=3), ZSTD)
    assert read.code == 200
    assert read.json()[-1]["type"] == "response.completed"
    seen = stack.backend.state.posts[-1].body
    assert seen["model"] == "gpt-5.4-mini"  # the alias applies, which it could not while the bytes went through
    assert "temperature" not in seen
    assert [item.get("id") for item in seen["input"]] == [None, None, None]
    assert seen["input"][2]["output"] == CLI_TURN["input"][2]["output"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_every_endpoint_reads_zstd_and_deflate_bodies(stack, endpoint):
    path, doc = ENDPOINTS[endpoint]
    raw = json.dumps(doc).encode()
    bare = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    sent = [
        ("zstd", zstd(doc)),
        ("deflate", zlib.compress(raw)),
        ("Deflate", bare.compress(raw) + bare.flush()),  # the bare deflate stream, as some clients send it
    ]
    for coding, packed in sent:
        resp = await post_json(f"{stack.url}{path}", packed, {"Content-Encoding": coding})
        assert resp.code == 200, (coding, resp.body)
        assert sent_text(stack.backend.state.posts[-1]) == "packed"


async def test_a_multi_frame_zstd_body_is_read_whole(stack):
    text = json.dumps({"model": "gpt-5.5", "input": "two frames"}).encode()
    packer = zstandard.ZstdCompressor()
    raw = packer.compress(text[:20]) + packer.compress(text[20:])
    resp = await post_json(f"{stack.url}/v1/responses", raw, ZSTD)
    assert resp.code == 200, resp.body
    assert sent_text(stack.backend.state.posts[-1]) == "two frames"


@pytest.mark.parametrize(
    ("raw", "coding", "says"),
    [
        (MAGIC + b"not really zstd", "zstd", "not valid zstd"),
        (b"plain text", "zstd", "not valid zstd"),
        (
            zstd({"model": "gpt-5.5", "input": os.urandom(3000).hex()})[:-40],
            "zstd",
            "frame is cut short",
        ),  # in its one block
        (
            zstd({"model": "gpt-5.5", "input": os.urandom(200_000).hex()})[:-40],
            "zstd",
            "not valid JSON",
        ),  # in a later one
        (zlib.compress(b'{"input": "hi"}')[:-6], "deflate", "not valid deflate"),
        (b"\x00garbage", "deflate", "not valid deflate"),
        (b'{"input": "hi"}', "br", "codexd decodes gzip, deflate, zstd"),
    ],
    ids=["zstd-magic-only", "not-zstd", "zstd-cut-first-block", "zstd-cut-later", "deflate-cut", "not-deflate", "br"],
)
@pytest.mark.parametrize("endpoint", ["responses", "messages"])
async def test_a_body_that_does_not_decode_is_a_4xx_in_the_dialect(stack, raw, coding, says, endpoint):
    path = ENDPOINTS[endpoint][0]
    resp = await post_json(f"{stack.url}{path}", raw, {"Content-Encoding": coding})
    assert resp.code == (415 if coding == "br" else 400)
    error = body_json(resp)["error"]
    assert says in error["message"]
    if endpoint == "messages":
        assert body_json(resp)["type"] == "error"
    assert stack.backend.state.posts == []


async def test_a_zstd_bomb_is_refused_at_the_body_limit(custom):
    stack = custom(max_body_size=200_000)
    bomb = {"model": "gpt-5.5", "input": "0" * 3_000_000}
    with_size = zstd(bomb)
    streamed = zstandard.ZstdCompressor().compressobj()  # no size in the frame header: only decoding tells
    without_size = streamed.compress(json.dumps(bomb).encode()) + streamed.flush()
    assert len(with_size) < 1000 and len(without_size) < 1000
    for raw in (with_size, without_size):
        resp = await post_json(f"{stack.url}/v1/responses", raw, ZSTD)
        assert resp.code == 413
        assert "200000 bytes once decoded" in body_json(resp)["error"]["message"]
    deflated = zlib.compress(json.dumps(bomb).encode())
    assert (await post_json(f"{stack.url}/v1/messages", deflated, ZSTD)).code == 400  # deflate labelled zstd
    resp = await post_json(f"{stack.url}/v1/messages", deflated, {"Content-Encoding": "deflate"})
    assert resp.code == 413 and body_json(resp)["type"] == "error"
    assert stack.backend.state.posts == []


async def test_a_frame_asking_for_a_huge_window_is_refused(stack):
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27, write_content_size=False)
    packer = zstandard.ZstdCompressor(compression_params=params).compressobj()
    raw = packer.compress(json.dumps({"model": "gpt-5.5", "input": "x" * 20_000_000}).encode()) + packer.flush()
    resp = await post_json(f"{stack.url}/v1/responses", raw, ZSTD)
    assert resp.code == 400
    assert "not valid zstd" in body_json(resp)["error"]["message"]


# --- what codexd sends the backend ------------------------------------------------------------------------


def incompressible(size: int) -> str:
    return base64.b64encode(os.urandom(size * 3 // 4)).decode()


async def test_bodies_from_1_kib_go_upstream_zstd_compressed(stack):
    for text, zipped in (("short", False), ("word " * 300, True), (incompressible(4000), True)):
        resp = await post_json(f"{stack.url}/v1/responses", {"model": "gpt-5.5", "input": text})
        assert resp.code == 200, resp.body
        seen = stack.backend.state.posts[-1]
        assert sent_text(seen) == text  # the fake decoded the frame: one whole zstd frame, as the CLI sends
        plain = len(json.dumps(seen.body, separators=(",", ":")).encode())
        if zipped:
            assert seen.headers["Content-Encoding"] == "zstd" and seen.raw.startswith(MAGIC)
            assert zstandard.frame_content_size(seen.raw) == plain  # its size is in the header
        else:
            assert "Content-Encoding" not in seen.headers and len(seen.raw) == plain
    assert len(stack.backend.state.posts[1].raw) < 200  # 1,500 bytes of repeated words


async def test_a_claude_code_turn_reaches_the_backend_compressed_and_intact(stack):
    tools = [
        {"name": f"tool_{i}", "description": "Reads a file. " * 30, "input_schema": {"type": "object"}}
        for i in range(12)
    ]
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are Claude Code. " * 200}],
        "tools": tools,
        "messages": [{"role": "user", "content": "Fix the failing test."}],
    }
    read = await stream_sse(f"{stack.url}/v1/messages", body)
    assert read.code == 200
    seen = stack.backend.state.posts[-1]
    assert seen.headers["Content-Encoding"] == "zstd"
    assert [t["name"] for t in seen.body["tools"]] == [t["name"] for t in tools]
    assert seen.body["instructions"].startswith("You are Claude Code.")
    assert len(seen.raw) * 4 < len(json.dumps(seen.body))


async def test_a_resent_body_is_the_same_compressed_body(stack):
    stack.backend.state.push(Script.error(502, "bad gateway"))
    resp = await post_json(f"{stack.url}/v1/responses", {"model": "gpt-5.5", "input": "again " * 400})
    assert resp.code == 200, resp.body
    first, second = stack.backend.state.posts
    assert first.raw == second.raw and second.headers["Content-Encoding"] == "zstd"
    assert sent_text(second) == "again " * 400


async def test_compression_can_be_turned_off(custom):
    stack = custom(compress=False)
    text = "word " * 2000
    resp = await post_json(f"{stack.url}/v1/responses", {"model": "gpt-5.5", "input": text})
    assert resp.code == 200, resp.body
    seen = stack.backend.state.posts[-1]
    assert "Content-Encoding" not in seen.headers and sent_text(seen) == text
    assert len(seen.raw) > len(text)


async def test_api_key_mode_sends_the_public_api_plain_bodies(custom, apikey_home):
    stack = custom(apikey_home)
    text = "word " * 2000
    resp = await post_json(
        f"{stack.url}/v1/chat/completions", {"model": "gpt-5.5", "messages": [{"role": "user", "content": text}]}
    )
    assert resp.code == 200, resp.body
    (seen,) = [r for r in stack.backend.state.requests if r.path == "/v1/chat/completions"]
    assert "Content-Encoding" not in seen.headers
    assert seen.body["messages"][0]["content"] == text


async def test_the_fake_reads_zstd_as_the_backend_does(backend):
    """The fake every test above talks to: one whole zstd frame of a valid body is taken, anything else under
    ``Content-Encoding: zstd`` is its 400, another coding its 415. (codexd sends one frame; whether the real
    backend reads a second is not known, so the fake does not.)"""
    backend.state.check_auth = False
    body = {"model": "gpt-5.5", "instructions": "x", "input": [], "stream": True, "store": False}
    url = f"{backend.base_url}/responses"
    cases = [
        (zstd(body), "zstd", 200),
        (zstd(body)[:-2], "zstd", 400),
        (zstd(body) + zstd(body), "zstd", 400),
        (json.dumps(body).encode(), "zstd", 400),
        (zstd({**body, "store": True}), "zstd", 400),
        (zstd(body), "br", 415),
    ]
    for raw, coding, status in cases:
        resp = await post_json(url, raw, {"Content-Encoding": coding})
        assert resp.code == status, (raw[:20], coding, resp.body)
