"""A local, offline estimate of a Messages request's input tokens (``POST /v1/messages/count_tokens``).

The Codex backend has no counting endpoint and a real tokenizer would need a download, so text is
estimated with a small causal model of o200k tokenisation: the text is cut into runs (words, digits,
punctuation, spaces, newlines, CJK, other symbols) and each run costs a fixed amount plus a per-character
amount. The weights were fitted against o200k_base on prose (licences, Markdown docs), Python, C/JS and
JSON. Expected accuracy: on chunks of a few KB, 97 % fall within ±10 % of the real o200k count (the
overall total within ±2 %); the worst seen were -25 % (long runs of one punctuation character) and +11 %.
Chinese and Japanese come out within about ±20 %, other scripts within about ±30 %.

Structure costs a fixed amount (per message, per tool call or result, per tool definition); tool schemas
are counted as their compact JSON text. Images cost OpenAI's tile formula (85 + 170 per 512 px tile after
scaling to fit 2048 px and 768 px on the short side) when the size can be read from a base64 PNG, JPEG,
GIF or WebP header, else a 1024 x 1024 image (765); PDFs cost 1,300 per page. Thinking signatures (the
encrypted reasoning) are not counted. So the structure, images and PDFs are rougher (±25 % or more) than
plain text. Every part adds a non-negative amount, so appending anything never lowers the count.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from collections.abc import Iterable, Iterator
from typing import Any

from codexd.dialects.anthropic import invalid
from codexd.errors import bad_request

_CJK = "\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff"
_HANGUL = "\uac00-\ud7af"
_PUNCT = r"\x00-\x08\x0b\x0c\x0e-\x1f!-/:-@\[-`{-\x7f"
_RUNS = re.compile(
    rf"(?P<word> ?[^\W\d_{_CJK}{_HANGUL}]+)|(?P<cjk>[{_CJK}]+)|(?P<hangul>[{_HANGUL}]+)"
    r"|(?P<digits>\d+)|(?P<spaces>[ \t]+)|(?P<newlines>[\r\n]+)"
    rf"|(?P<punct>[{_PUNCT}]+)|(?P<other>.)",
    re.DOTALL,
)
# Where a text can be cut without changing its estimate: no run crosses these points, and the run after
# them costs the same whatever came before. After a line break; before one space and what is not a space;
# between a letter or digit and punctuation, which minified JSON and code without spaces are full of (a
# punctuation run costs the same wherever it starts; a word after one would not); and between a letter and
# a digit, either way round, as in hex digests and other encoded data.
_CUT = re.compile(
    rf"(?<=[\r\n])(?=[^\r\n])|(?<=[^ \t])(?= [^ \t])|(?<=[^\W_])(?=[{_PUNCT}])"
    r"|(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])"
)
_PIECE = 16 * 1024  # characters a part of a long text holds at least: about 5 ms of estimating
_CAMEL = re.compile(r"[a-z](?=[A-Z])")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")

# Fitted weights (tokens). A word costs one token (less right after a single punctuation character,
# which o200k merges into it); letters past the 7th, camel-case humps and non-ASCII letters add more.
_WORD, _WORD_AFTER_PUNCT, _LONG_AFTER, _LONG, _CAMEL_HUMP, _NON_ASCII_LETTER = 0.98, 0.28, 7, 0.11, 0.7, 0.05
_INDENT, _NEWLINE, _PUNCT_FIRST, _PUNCT_NEXT = 0.5, 1.22, 1.05, 0.125
_CJK_CHAR, _HANGUL_CHAR, _SYMBOL_BY_UTF8_LEN = 0.76, 0.49, (1.05, 1.05, 1.0, 0.86, 1.4)

_PER_REQUEST = 3
_PER_MESSAGE = 4
_PER_TOOL_ITEM = 8  # a tool call or a tool result
_PER_TOOL = 8  # a tool definition
_DEFAULT_IMAGE = 765
_PER_PDF_PAGE = 1300
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_HEADER_B64 = 87_384  # base64 characters for the first 64 KiB, where image sizes are found


def count_tokens(body: Any) -> int:
    """The estimated input tokens of a count_tokens (or messages) request body."""
    return tokens_of(count_parts(body))


def tokens_of(parts: Iterable[float]) -> int:
    """The estimate from its parts (``count_parts``): their sum, rounded up."""
    return math.ceil(sum(parts))


def count_parts(body: Any) -> Iterator[float]:
    """The estimate in parts (``tokens_of`` makes the count of them): the request, its system prompt, each
    message's structure and blocks, a long text in pieces of about 16K characters, then each tool. A bad
    body raises ``CodexdError`` before the first part.

    About 0.3 us a character of text: a caller on an event loop can let other work run between parts
    (a conversation near the context window takes 0.3-0.4 s in all; one part, at most a few ms unless a
    text runs on for long without a space, a line break, punctuation after a word or a digit next to a
    letter: see ``_CUT``)."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise invalid("messages", "Input should be a valid list")
    yield _PER_REQUEST
    yield from _content_parts(body.get("system"))
    for message in messages:
        yield _PER_MESSAGE
        if isinstance(message, dict):
            yield from _content_parts(message.get("content"))
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        yield _tool(tool)


def text_parts(text: str) -> Iterator[float]:
    """``text_tokens(text)`` in parts, the text cut every 16K characters or so where no run crosses."""
    start = 0
    while len(text) - start > 2 * _PIECE:
        cut = _CUT.search(text, start + _PIECE)
        if cut is None:
            break
        yield text_tokens(text[start : cut.start()])
        start = cut.start()
    yield text_tokens(text[start:] if start else text)


def text_tokens(text: str) -> float:
    """The estimated o200k token count of ``text`` (fractional; sum, then round up)."""
    total = 0.0
    after_single_punct = False
    for match in _RUNS.finditer(text):
        kind, run = match.lastgroup, match.group()
        n = len(run)
        if kind == "word":
            # A single space before a word joins it (so it breaks the punctuation discount).
            spaced = run[0] == " "
            run = run[1:] if spaced else run
            n -= spaced
            total += _WORD_AFTER_PUNCT if after_single_punct and not spaced else _WORD
            if n > _LONG_AFTER:
                total += _LONG * (n - _LONG_AFTER)
            if not run.islower():
                total += _CAMEL_HUMP * len(_CAMEL.findall(run, 0, _LONG_AFTER))
            if not run.isascii():
                total += _NON_ASCII_LETTER * len(_NON_ASCII.findall(run))
        elif kind == "digits":
            total += math.ceil(n / 3)
        elif kind == "spaces":
            total += _INDENT if n > 1 else 0.0  # a single space joins the next word
        elif kind == "newlines":
            total += _NEWLINE
        elif kind == "punct":
            total += _PUNCT_FIRST + _PUNCT_NEXT * (n - 1)
        elif kind == "cjk":
            total += _CJK_CHAR * n
        elif kind == "hangul":
            total += _HANGUL_CHAR * n
        else:
            total += _SYMBOL_BY_UTF8_LEN[_utf8_len(ord(run))]
        after_single_punct = kind == "punct" and n == 1
    return total


def _utf8_len(code: int) -> int:
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def _json_parts(value: Any) -> Iterator[float]:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):
        return
    yield from text_parts(text)


def _content_parts(content: Any) -> Iterator[float]:
    """A system prompt, message content or tool result content: a string or a list of blocks."""
    if isinstance(content, str):
        yield from text_parts(content)
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, dict):
                yield from _block_parts(block)


def _block_parts(block: dict[str, Any]) -> Iterator[float]:
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        yield from text_parts(block["text"])
    elif kind == "thinking" and isinstance(block.get("thinking"), str):
        yield from text_parts(block["thinking"])
    elif kind == "image":
        yield float(_image(block.get("source")))
    elif kind == "document":
        yield from _document_parts(block.get("source"))
    elif kind == "tool_use":
        name: str = block["name"] if isinstance(block.get("name"), str) else ""
        yield _PER_TOOL_ITEM + text_tokens(name)
        yield from _json_parts(block.get("input"))
    elif kind == "tool_result":
        yield _PER_TOOL_ITEM
        yield from _content_parts(block.get("content"))
    # Anything else (redacted thinking, server tool history) is not sent upstream.


def _tool(tool: Any) -> float:
    if not isinstance(tool, dict):
        return 0.0
    total = float(_PER_TOOL)
    for key in ("name", "description"):
        if isinstance(tool.get(key), str):
            total += text_tokens(tool[key])
    if isinstance(tool.get("input_schema"), dict):
        total += sum(_json_parts(tool["input_schema"]))
    return total


def _document_parts(source: Any) -> Iterator[float]:
    if not isinstance(source, dict):
        return
    data = source.get("data")
    if source.get("type") == "text" and isinstance(data, str):
        yield from text_parts(data)
    elif source.get("type") == "base64" and isinstance(data, str):
        raw = _b64(data)
        pages = len(_PDF_PAGE.findall(raw)) or len(raw) // 60_000 + 1
        yield float(_PER_PDF_PAGE * pages)
    else:
        yield float(_PER_PDF_PAGE)


def _image(source: Any) -> int:
    if not isinstance(source, dict) or source.get("type") != "base64" or not isinstance(source.get("data"), str):
        return _DEFAULT_IMAGE
    size = image_size(_b64(source["data"][:_HEADER_B64]))
    return _tile_tokens(*size) if size else _DEFAULT_IMAGE


def _b64(data: str) -> bytes:
    cut = data[: len(data) - len(data) % 4]
    try:
        return base64.b64decode(cut)
    except (binascii.Error, ValueError):
        return b""


def _tile_tokens(width: int, height: int) -> int:
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    tiles = math.ceil(w * scale / 512) * math.ceil(h * scale / 512)
    return 85 + 170 * tiles


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of a PNG, GIF, JPEG or WebP file; None when unknown."""
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            size = struct.unpack(">II", head[16:24])
        elif head[:6] in (b"GIF87a", b"GIF89a"):
            size = struct.unpack("<HH", head[6:10])
        elif head.startswith(b"\xff\xd8"):
            return _jpeg_size(head)
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_size(head)
        else:
            return None
    except struct.error:
        return None
    return (int(size[0]), int(size[1])) if size[0] > 0 and size[1] > 0 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return (width, height) if width and height else None
        if marker in (0x01, 0xFF) or 0xD0 <= marker <= 0xD9:
            i += 1 if marker == 0xFF else 2
            continue
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return (width & 0x3FFF, height & 0x3FFF) if width & 0x3FFF and height & 0x3FFF else None
    if chunk == b"VP8L" and len(data) >= 25:
        b = data[21:25]
        return 1 + (((b[1] & 0x3F) << 8) | b[0]), 1 + (((b[3] & 0x0F) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None
