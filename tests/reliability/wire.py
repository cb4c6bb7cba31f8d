"""What the reliability tests send to each API endpoint and how a failure must look in its dialect.

``Answer`` is a whole response read as raw bytes (with the time it took), so a test can check the
status before the first byte or, for a started stream, the terminal in-band error of the dialect.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from codexd.sse import SSEDecoder, SSEEvent


@dataclass(frozen=True)
class Endpoint:
    """One API endpoint: its path, dialect and a minimal valid body."""

    name: str
    path: str
    dialect: str  # "openai" or "anthropic"
    valid: dict[str, Any]

    @property
    def route(self) -> str:
        """The endpoint label in codexd's metrics."""
        return {"chat": "chat_completions"}.get(self.name, self.name)

    def body(self, stream: bool, text: str = "hi") -> dict[str, Any]:
        """The valid body, streaming or not, with ``text`` as the user's prompt."""
        body = json.loads(json.dumps(self.valid).replace('"hi"', json.dumps(text)))
        body["stream"] = stream
        return body


RESPONSES = Endpoint("responses", "/v1/responses", "openai", {"model": "gpt-5.5", "input": "hi"})
CHAT = Endpoint(
    "chat", "/v1/chat/completions", "openai", {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
)
MESSAGES = Endpoint(
    "messages",
    "/v1/messages",
    "anthropic",
    {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]},
)
COUNT_TOKENS = Endpoint(
    "count_tokens",
    "/v1/messages/count_tokens",
    "anthropic",
    {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]},
)
STREAMING = (RESPONSES, CHAT, MESSAGES)


@dataclass
class Answer:
    """A response as the client received it."""

    code: int
    headers: Any
    raw: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.raw)

    def events(self) -> list[SSEEvent]:
        decoder = SSEDecoder()
        return decoder.feed(self.raw) + decoder.close()


async def fetch(url: str, body: Any, timeout: float = 20, headers: dict[str, str] | None = None) -> Answer:
    """POST ``body`` (JSON) and read the whole answer, whatever its status."""
    raw: list[bytes] = []
    client = SimpleAsyncHTTPClient(force_instance=True)
    request = HTTPRequest(
        url,
        method="POST",
        body=json.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
        streaming_callback=raw.append,
        request_timeout=timeout,
    )
    t0 = time.monotonic()
    try:
        response = await client.fetch(request, raise_error=False)
    finally:
        client.close()
    return Answer(response.code, response.headers, b"".join(raw), time.monotonic() - t0)


def assert_error_body(dialect: str, body: Any) -> dict[str, Any]:
    """``body`` is an error in the dialect's shape; returns its inner error object."""
    if dialect == "anthropic":
        assert body["type"] == "error", body
        assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str), body
    else:
        assert isinstance(body["error"]["message"], str) and "type" in body["error"], body
    inner: dict[str, Any] = body["error"]
    return inner


def assert_in_band_failure(endpoint: Endpoint, answer: Answer, by_codexd: bool = True) -> dict[str, Any]:
    """A started stream that ended with the dialect's terminal error; returns the error object.

    ``by_codexd``: codexd wrote the failure (an upstream ``response.failed`` reaches Responses clients as is).
    """
    assert answer.code == 200, answer.raw[:500]
    events = answer.events()
    assert events, "the stream sent nothing"
    last = events[-1]
    if endpoint.name == "responses":
        error, failed = events[-2], events[-1]
        if by_codexd:
            assert error.event == "error" and json.loads(error.data)["type"] == "error", error
        assert failed.event == "response.failed", failed
        assert json.loads(failed.data)["response"]["status"] == "failed"
        assert not [e for e in events if e.event == "response.completed"]
        return dict(json.loads(failed.data)["response"]["error"])
    if endpoint.name == "chat":
        assert "[DONE]" not in [e.data for e in events], "a failed chat stream must not end with [DONE]"
        payload = json.loads(last.data)
        return assert_error_body("openai", payload)
    assert last.event == "error", last
    assert not [e for e in events if e.event == "message_stop"]
    return assert_error_body("anthropic", json.loads(last.data))


def streamed_text(endpoint: Endpoint, answer: Answer) -> str:
    """The answer text a streaming client assembled from the deltas."""
    out: list[str] = []
    for event in answer.events():
        if not event.data.startswith("{"):
            continue
        data = json.loads(event.data)
        if endpoint.name == "responses" and data.get("type") == "response.output_text.delta":
            out.append(data["delta"])
        elif endpoint.name == "chat":
            for choice in data.get("choices") or []:
                out.append(choice["delta"].get("content") or "")
        elif endpoint.name == "messages" and data.get("type") == "content_block_delta":
            out.append(data["delta"].get("text", ""))
    return "".join(out)


async def wait_for(predicate: Any, limit: float, what: str = "condition") -> float:
    """Poll ``predicate`` every 10 ms; the seconds it took, or AssertionError after ``limit``."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"{what} not met within {limit:g} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


def plain_text(endpoint: Endpoint, body: Any) -> str:
    """The answer text of a non-streaming answer."""
    if endpoint.name == "responses":
        return "".join(part["text"] for item in body["output"] if item["type"] == "message" for part in item["content"])
    if endpoint.name == "chat":
        return str(body["choices"][0]["message"]["content"])
    return "".join(block["text"] for block in body["content"] if block["type"] == "text")
