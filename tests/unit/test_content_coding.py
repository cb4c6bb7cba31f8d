"""``codexd.content_coding``: what decodes, to how much, and what codexd's own zstd frames hold."""

from __future__ import annotations

import zlib

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from codexd.content_coding import compress, decode
from codexd.errors import CodexdError


@given(st.binary(max_size=20_000))
def test_a_compressed_body_decodes_to_itself(data):
    frame = compress(data)
    assert decode(frame, "zstd", len(data)) == data
    assert zstandard.ZstdDecompressor().decompress(frame) == data  # a standard frame, its size in the header
    assert zstandard.frame_content_size(frame) == len(data)


@given(st.binary(max_size=5000), st.sampled_from(["", "identity", " Identity "]))
def test_an_uncoded_body_is_left_alone(data, coding):
    assert decode(data, coding, 0) is data


@pytest.mark.parametrize(
    "pack",
    [compress, zlib.compress, lambda data: zstandard.ZstdCompressor().compress(data[:10]) + compress(data[10:])],
    ids=["zstd", "deflate", "zstd-frames"],
)
def test_the_limit_is_on_the_decoded_size(pack):
    data = b"0123456789" * 100_000
    coding = "deflate" if pack is zlib.compress else "zstd"
    assert decode(pack(data), coding, len(data)) == data
    with pytest.raises(CodexdError) as refused:
        decode(pack(data), coding, len(data) - 1)
    assert refused.value.status == 413 and refused.value.code == "request_too_large"


@pytest.mark.parametrize(
    ("raw", "coding", "status"),
    [
        (b"", "zstd", 200),
        (compress(b"x" * 50_000)[:-3], "zstd", 400),
        (compress(b"")[:-1], "zstd", 400),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 8, "zstd", 400),
        (zlib.compress(b"x" * 50_000)[:-3], "deflate", 400),
        (b"x", "br", 415),
        (b"x", "gzip, zstd", 415),
    ],
)
def test_what_does_not_decode_says_so(raw, coding, status):
    if status == 200:
        assert decode(raw, coding, 10) == b""  # an empty body: the JSON reader says what is wrong with it
        return
    with pytest.raises(CodexdError) as refused:
        decode(raw, coding, 10_000_000)
    assert refused.value.status == status
