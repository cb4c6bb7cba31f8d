"""The offline token estimate: close to o200k on ordinary text, image sizes read from headers, monotone."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codexd.errors import CodexdError, ErrorKind
from codexd.translate import count_tokens as estimate
from codexd.translate.count_tokens import count_parts, count_tokens, image_size, text_parts, text_tokens

# Reference counts measured with the o200k_base encoding (tiktoken-compatible) once, offline.
PROSE = (
    "The quick brown fox jumps over the lazy dog. Claude Code sends the whole conversation on every turn, "
    "so the server has to translate each request quickly and without losing any of the tool results that "
    "the user has already seen. When the context window fills up, the client compacts the history into a "
    "short summary and starts again from there."
)
CODE = '''def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    result = [0, 1]
    while len(result) < n:
        result.append(result[-1] + result[-2])
    return result[:n]


class Cache:
    def __init__(self, size: int = 128) -> None:
        self._items: dict[str, bytes] = {}
        self._size = size
'''
JSON_SCHEMA = (
    '{"type":"object","properties":{"file_path":{"type":"string","description":"The absolute path to the file '
    'to read"},"offset":{"type":"number","description":"The line number to start reading from"},"limit":'
    '{"type":"number","description":"The number of lines to read"}},"required":["file_path"],'
    '"additionalProperties":false}'
)


@pytest.mark.parametrize(("text", "o200k"), [(PROSE, 67), (CODE, 93), (JSON_SCHEMA, 70)])
def test_text_estimate_is_close_to_o200k(text: str, o200k: int) -> None:
    assert abs(text_tokens(text) - o200k) <= 0.15 * o200k


def test_empty_and_tiny_texts() -> None:
    assert text_tokens("") == 0
    assert 0 < text_tokens("hi") <= 2


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw + b"\x00" * 64).decode()


def png(width: int, height: int) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height) + b"\x08\x02\0\0\0"
    )


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\0\0\0"


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3)
    return b"\xff\xd8" + app0 + sof


def webp(width: int, height: int) -> bytes:
    vp8x = (
        b"VP8X"
        + struct.pack("<I", 10)
        + b"\0\0\0\0"
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
    return b"RIFF" + struct.pack("<I", 30) + b"WEBP" + vp8x


@pytest.mark.parametrize("maker", [png, gif, jpeg, webp])
def test_image_sizes_are_read_from_headers(maker: Any) -> None:
    assert image_size(maker(640, 480)) == (640, 480)


def test_image_size_of_garbage_is_unknown() -> None:
    for head in (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\0\0\0\0WEBPVP8 ", b"not an image"):
        assert image_size(head) is None


def _image_request(source: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "image", "source": source}]}]}


def _image_cost(source: dict[str, Any]) -> int:
    return count_tokens(_image_request(source)) - count_tokens({"messages": [{"role": "user", "content": []}]})


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [(100, 100, 255), (512, 512, 255), (1024, 1024, 765), (4096, 2048, 1105), (800, 600, 765)],
)
def test_images_cost_the_tile_formula(width: int, height: int, tokens: int) -> None:
    source = {"type": "base64", "media_type": "image/png", "data": _b64(png(width, height))}
    assert _image_cost(source) == tokens


def test_images_of_unknown_size_cost_a_default() -> None:
    assert _image_cost({"type": "url", "url": "https://example.com/a.png"}) == 765
    assert _image_cost({"type": "base64", "media_type": "image/png", "data": "!!not base64!!"}) == 765


def test_pdf_pages_are_counted() -> None:
    pages = b"%PDF-1.4\n" + b"".join(b"%d 0 obj << /Type /Page /Parent 2 0 R >>\n" % i for i in range(3))
    pdf = b"2 0 obj << /Type /Pages /Count 3 >>\n" + pages
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": _b64(pdf)}}
    cost = count_tokens({"messages": [{"role": "user", "content": [doc]}]}) - count_tokens(
        {"messages": [{"role": "user", "content": []}]}
    )
    assert cost == 3 * 1300


def test_every_part_of_a_claude_code_request_counts() -> None:
    base: dict[str, Any] = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "foo"}]}
    small = count_tokens(base)
    with_system = count_tokens({**base, "system": [{"type": "text", "text": PROSE}]})
    tool = {
        "name": "Read",
        "description": "Reads a file from the local filesystem.",
        "input_schema": {"type": "object"},
    }
    with_tools = count_tokens({**base, "tools": [tool]})
    history = [
        {"role": "user", "content": "read it"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should read the file.", "signature": "codexd1.xyz"},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/tmp/a.py"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": CODE}]},
    ]
    with_history = count_tokens({**base, "messages": history})
    assert small < with_system and small < with_tools and small < with_history
    assert with_history >= text_tokens(CODE) + text_tokens("I should read the file.")


def test_bad_bodies_are_400s() -> None:
    for body in ([], "x", {"messages": "hi"}, {"model": "m"}):
        with pytest.raises(CodexdError) as info:
            count_tokens(body)
        assert info.value.kind is ErrorKind.BAD_REQUEST


# Texts that are mostly runs (words, spaces, line breaks, punctuation) and their edges, minified JSON's among them.
RUNS_TEXT = st.lists(
    st.sampled_from([*'ab Zé中한😀12².,!"{}:_\t\r\n\x0b', " a", "  ", ". ", "\r\n", "aB", '":"', '","']), max_size=40
).map("".join)


@settings(max_examples=500, deadline=None)
@given(RUNS_TEXT, st.integers(1, 8))
def test_a_long_text_counted_in_parts_comes_to_the_same_estimate(text: str, piece: int) -> None:
    """Parts let the server pause between them; cutting must not change what the text is estimated at."""
    whole = text_tokens(text)
    original, estimate._PIECE = estimate._PIECE, piece  # pieces of a few characters: cuts everywhere
    try:
        parts = list(text_parts(text))
    finally:
        estimate._PIECE = original
    assert math.isclose(sum(parts), whole, abs_tol=1e-9)


def test_one_long_message_comes_in_parts_of_bounded_size() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": CODE * 8000}  # about 1.4 MB
    write = {"type": "tool_use", "id": "toolu_2", "name": "Write", "input": {"content": CODE * 8000}}
    body = {"messages": [{"role": "user", "content": [result]}, {"role": "assistant", "content": [write]}]}
    parts = list(count_parts(body))
    assert len(parts) > 2 * 80  # a part for about every 16K characters, the two texts' 2.8 MB in all
    assert max(parts) < 3 * text_tokens(CODE * (32 * 1024 // len(CODE)))
    assert math.ceil(sum(parts)) == count_tokens(body)
    assert math.isclose(
        sum(parts), 3 + 2 * 4 + 2 * 8 + text_tokens("Write") + 2 * 8000 * text_tokens(CODE), rel_tol=0.01
    )


def _minified_json() -> str:
    rows = [{"id": i, "path": f"/src/module_{i}.py", "lines": [i, i + 40], "ok": True} for i in range(20_000)]
    return json.dumps(rows, separators=(",", ":"))  # about 1.2 MB


def _hex_digests() -> str:
    return "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(16_000))  # about 1 MB


@pytest.mark.parametrize("make", [_minified_json, _hex_digests], ids=["minified-json", "hex"])
def test_long_texts_without_spaces_come_in_parts_too(make: Any) -> None:
    """Minified JSON has punctuation after words to cut at, hex digests (a lock file's, a tool's binary dump)
    letters and digits side by side; neither has a space or a line break."""
    text = make()
    assert " " not in text and "\n" not in text
    parts = list(text_parts(text))
    assert len(parts) > len(text) // (32 * 1024)
    assert math.isclose(sum(parts), text_tokens(text), rel_tol=1e-9)  # floating-point sums of 30-90 parts


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_appending_text_never_lowers_the_estimate(head: str, tail: str) -> None:
    assert text_tokens(head + tail) >= text_tokens(head)
    short = {"messages": [{"role": "user", "content": head}]}
    long = {"messages": [{"role": "user", "content": head + tail}]}
    assert count_tokens(long) >= count_tokens(short)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=5), st.text(max_size=40))
def test_appending_a_message_or_block_never_lowers_the_count(texts: list[str], extra: str) -> None:
    blocks: list[Any] = [{"type": "text", "text": t} for t in texts]
    body = {"system": "sys", "messages": [{"role": "user", "content": blocks}]}
    more_blocks = {**body, "messages": [{"role": "user", "content": [*blocks, {"type": "text", "text": extra}]}]}
    more_messages = {**body, "messages": [*body["messages"], {"role": "assistant", "content": extra}]}
    assert count_tokens(more_blocks) >= count_tokens(body)
    assert count_tokens(more_messages) > count_tokens(body)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "text", "content", "source", "data", "input", "name"]) | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(_JSON, _JSON)
def test_random_json_raises_nothing_but_codexd_errors(messages: Any, tools: Any) -> None:
    try:
        assert count_tokens({"messages": messages, "tools": tools, "system": messages}) >= 0
    except CodexdError as err:
        assert err.kind is ErrorKind.BAD_REQUEST
