"""Small HTTP helpers for handler tests: JSON posts and an SSE reader that records arrival times."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from codexd.sse import SSEDecoder, SSEEvent


async def post_json(
    url: str, body: Any, headers: dict[str, str] | None = None, client: AsyncHTTPClient | None = None, **kwargs: Any
) -> HTTPResponse:
    """POST ``body`` as JSON; never raises on HTTP errors."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = HTTPRequest(
        url,
        method="POST",
        body=raw,
        headers={"Content-Type": "application/json", **(headers or {})},
        request_timeout=kwargs.pop("request_timeout", 20),
        **kwargs,
    )
    return await (client or AsyncHTTPClient()).fetch(request, raise_error=False)


async def get(url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> HTTPResponse:
    """GET; never raises on HTTP errors."""
    return await AsyncHTTPClient().fetch(HTTPRequest(url, headers=headers or {}, **kwargs), raise_error=False)


def body_json(response: HTTPResponse) -> Any:
    return json.loads(response.body)


@dataclass
class SSERead:
    """Events of a streamed answer, each with the time (since the request) it arrived."""

    events: list[SSEEvent] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    chunks: int = 0
    code: int = 0
    headers: Any = None

    def json(self) -> list[Any]:
        return [
            json.loads(e.data) if e.data.startswith(("{", "[")) and e.data != "[DONE]" else e.data for e in self.events
        ]


async def stream_sse(url: str, body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> SSERead:
    """POST and decode the SSE answer incrementally, as a streaming client reads it."""
    read = SSERead()
    decoder = SSEDecoder()
    t0 = time.monotonic()

    def on_chunk(chunk: bytes) -> None:
        read.chunks += 1
        for event in decoder.feed(chunk):
            read.events.append(event)
            read.times.append(time.monotonic() - t0)

    response = await post_json(url, body, headers, streaming_callback=on_chunk, **kwargs)
    read.events += decoder.close()
    read.code = response.code
    read.headers = response.headers
    return read
