"""libcurl's upload buffer is sized to each request: large requests go out in one pass of the event loop,
small ones keep the 16 KiB minimum (the buffer stays with the handle while the stream is open)."""

from __future__ import annotations

from typing import Any

import pycurl

from codexd.upstream.stream import UPLOAD_BUFFER_MAX, UPLOAD_BUFFER_MIN, UpstreamStream, upload_buffer_size


class RecordingCurl:
    """Stands in for a curl handle: remembers the options set on it."""

    def __init__(self) -> None:
        self.options: dict[int, Any] = {}

    def setopt(self, option: int, value: Any) -> None:
        self.options[option] = value


def test_small_requests_keep_libcurls_minimum_buffer() -> None:
    assert upload_buffer_size(0) == UPLOAD_BUFFER_MIN == 16 * 1024
    assert upload_buffer_size(2_000) == UPLOAD_BUFFER_MIN


def test_a_claude_code_sized_request_fits_in_one_buffer_with_its_headers() -> None:
    # Request line and headers (a bearer token is about 2 KiB) share the buffer with the body.
    assert upload_buffer_size(80_000) >= 80_000 + 4 * 1024


def test_huge_requests_are_capped() -> None:
    assert upload_buffer_size(50 * 1024 * 1024) == UPLOAD_BUFFER_MAX == 1024 * 1024


def test_the_stream_sets_the_size_for_its_own_body_on_the_curl_handle() -> None:
    for body_size in (300, 80_000):
        curl = RecordingCurl()
        UpstreamStream(idle_timeout=5, body_size=body_size).prepare_curl(curl)
        assert curl.options[pycurl.UPLOAD_BUFFERSIZE] == upload_buffer_size(body_size)
