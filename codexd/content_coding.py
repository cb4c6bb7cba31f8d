"""Content codings of request bodies: decoding what clients send, and zstd for what codexd sends upstream.

The Codex CLI zstd-compresses its bodies (level 3, ``Content-Encoding: zstd``) and so does codexd, on the
bodies it sends the Codex backend: agents resend their whole conversation every turn, and a Claude Code
request shrinks to about a third. Tornado decodes gzip bodies itself; zstd and deflate are decoded here,
never to more than the body size limit.

Pure: bytes in, bytes out, ``CodexdError`` for a body that cannot be decoded. ``zstandard`` is imported at
first use, so commands that handle no body never load it.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import Any

from codexd.errors import CodexdError, ErrorKind, too_large

ZSTD_LEVEL = 3  # the Codex CLI's level: a Claude Code request to a third of its size, for about 4 ms per MB
COMPRESS_FROM = 1024  # bytes: a smaller body (a one-line request) gains less on the wire than it costs here
# 8 MiB covers every level up to 19. The format allows windows of up to 2 GiB, which a few bytes could ask for.
MAX_WINDOW = 1 << 23
_READ = 1 << 20  # decoded bytes per read: the limit is checked between reads
DECODED = ("gzip", "deflate", "zstd")


@cache
def _zstd() -> Any:
    """The module, and one compressor and one decompressor for the process (the event loop's thread only)."""
    import zstandard

    return zstandard, zstandard.ZstdCompressor(level=ZSTD_LEVEL), zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)


def compress(data: bytes) -> bytes:
    """``data`` as one zstd frame at the Codex CLI's level, its size written in the frame header."""
    compressor: Any = _zstd()[1]
    out: bytes = compressor.compress(data)
    return out


def decode(body: bytes, coding: str, limit: int) -> bytes:
    """``body`` sent under ``Content-Encoding: coding``, decoded: 413 when it decodes to more than ``limit``
    bytes, 400 when it is damaged, 415 for a coding codexd does not decode."""
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding == "zstd":
        return _unzstd(body, limit)
    if coding == "deflate":
        return _inflate(body, limit)
    raise CodexdError(
        ErrorKind.UNSUPPORTED_MEDIA,
        f"unsupported Content-Encoding '{coding}'; codexd decodes {', '.join(DECODED)}",
    )


def _damaged(coding: str, why: object) -> CodexdError:
    return CodexdError(ErrorKind.BAD_REQUEST, f"the request body is not valid {coding}: {why}")


def _unzstd(body: bytes, limit: int) -> bytes:
    # ``ZstdDecompressor.decompress`` would trust a frame's stated size over any limit and stop after the
    # first frame; the reader does neither. A frame cut short ends the output early: the JSON parser then
    # refuses the truncated text.
    zstandard, _, decompressor = _zstd()
    parts: list[bytes] = []
    total = 0
    try:
        with decompressor.stream_reader(body, read_size=max(len(body), 1), read_across_frames=True) as reader:
            while part := reader.read(_READ):
                total += len(part)
                if total > limit:
                    raise too_large(limit, " once decoded")
                parts.append(part)
    except zstandard.ZstdError as exc:
        raise _damaged("zstd", exc) from None
    if body and not total and not _whole_frame(decompressor, body):
        raise _damaged("zstd", "the frame is cut short")  # in its first block: nothing came out of it
    return b"".join(parts)


def _whole_frame(decompressor: Any, body: bytes) -> bool:
    """Whether ``body`` begins with a complete frame (asked only of frames that decode to nothing)."""
    zstandard = _zstd()[0]
    frame = decompressor.decompressobj()
    try:
        frame.decompress(body)
    except zstandard.ZstdError:
        return False
    return bool(frame.eof)


def _inflate(body: bytes, limit: int) -> bytes:
    # HTTP's deflate is the zlib format; some clients send the bare deflate stream instead.
    why: object = ""
    for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            why = exc
            continue
        if len(out) > limit:
            raise too_large(limit, " once decoded")
        if not inflater.eof:
            raise _damaged("deflate", "the stream is cut short")
        return out
    raise _damaged("deflate", why)
