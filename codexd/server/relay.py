"""``DialectHandler``, the base of the API endpoints: it opens the upstream stream, then relays it through a
translator as SSE (``relay``), passes it on as it is (``relay_raw``), or collects it for one JSON answer.

Errors raised before the first byte go through ``BaseHandler.write_error``; once a stream has started they
go in-band, in the translator's dialect, with the status untouched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from tornado import iostream
from tornado.http1connection import HTTP1Connection

from codexd.dialects import openai
from codexd.errors import CodexdError, ErrorKind
from codexd.models import catalog_etag
from codexd.server.base import BaseHandler
from codexd.sse import frame_text
from codexd.translate.aggregate import ResponseAggregator
from codexd.translate.protocol import Frame, StreamTranslator, carries_token
from codexd.upstream.answer_headers import passed_on
from codexd.upstream.stream import UpstreamStream

logger = logging.getLogger(__name__)


class DialectHandler(BaseHandler):
    """An API endpoint: opens an upstream stream and relays it through a translator."""

    async def open_stream(
        self, body: dict[str, Any], client_headers: Mapping[str, str], **options: Any
    ) -> UpstreamStream:
        """``UpstreamClient.open_stream`` for this request. When the upstream refuses or cannot be reached,
        the time spent trying is the upstream's, not codexd's, in ``overhead_ms``."""
        asked = time.monotonic()
        try:
            return await self.state.upstream.open_stream(body, client_headers, **options)
        except CodexdError:
            self.upstream_wait += time.monotonic() - asked
            raise

    def start_sse(self, stream: UpstreamStream) -> None:
        """Commit the 200 and the SSE headers (nothing is sent until the first flush)."""
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        self.pass_upstream_headers(stream)
        self.send_writes_at_once()

    def send_writes_at_once(self) -> None:
        """Turn Nagle's algorithm off for this response (Tornado turns it back on when the response ends).

        With it on, a write waits while an earlier one is not yet acknowledged, and a client's TCP stack may
        hold that acknowledgement back for tens of milliseconds. With the backend pausing 10 ms before the
        first token, the token reached a client in another process 10-20 ms late, or only when the response
        ended (tests/e2e/test_stream_pacing.py)."""
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection) and connection.stream is not None:
            connection.stream.set_nodelay(True)

    def pass_upstream_headers(self, stream: UpstreamStream) -> None:
        """Headers the client should see from the upstream answer: the sticky-routing token, the rate limits and
        the rest of ``passed_on``, and the catalog's ETag as codexd's catalog has it."""
        for name, value in passed_on(stream.headers).items():
            self.set_header(name, value)
        etag = stream.headers.get("x-models-etag")
        if etag:
            self.set_header("x-models-etag", catalog_etag(etag, self.settings_.aliases))
        self.show_overhead()

    async def relay(
        self,
        stream: UpstreamStream,
        translator: StreamTranslator,
        ping: Callable[[], list[Frame]] | None = None,
    ) -> None:
        """Send each upstream read's translated frames in one write and one flush; errors go in-band."""
        self.upstream_stream = stream
        self.start_sse(stream)
        pinger = asyncio.ensure_future(self._ping_loop(ping)) if ping else None
        try:
            if not stream.has_data:
                # Show the 200 now rather than with the first event. When events came with the headers,
                # the headers go out with their frames instead: one write and one loop turn less.
                await self._flush_first()
            token_sent = False
            async for batch in stream.events(translator.unread):
                frames: list[Frame] = []
                for event in batch:
                    out = translator.feed(event)
                    frames += out
                    if not token_sent and out and carries_token(event):
                        # The first token goes out before the rest of its read is translated, without waiting
                        # for the client to take it (a client gone shows at the next awaited write): when the
                        # whole answer arrives in one read, translating it first would hold the token back.
                        token_sent = True
                        flushed = self._write_now(sse_bytes(frames))
                        if flushed is not None:
                            flushed.add_done_callback(_consume_error)
                        frames = []
                # Only the bytes wait for a slow client, not the parsed events and frames: hundreds of
                # waiting streams would otherwise spread them over many of Python's 1 MiB arenas, which
                # a few long-lived objects then keep from going back to the system.
                del batch
                if frames:
                    data = sse_bytes(frames)
                    del frames
                    await self._write(data)
                elif self.first_byte_at is None:
                    await self._flush_first()
            await self._send(translator.finish())
        except CodexdError as err:
            logger.warning("stream failed after it started: %s [%s]", err.message, self.request_id)
            await self._send(translator.fail(err), quiet=True)
        except iostream.StreamClosedError:
            self.client_gone = True
            stream.abort()
        except Exception:
            # A bug must not look like a finished answer: end with the dialect's in-band error.
            logger.exception("unexpected error in a started stream [%s]", self.request_id)
            stream.abort()
            internal = CodexdError(ErrorKind.INTERNAL, "internal error in codexd; see its log")
            await self._send(translator.fail(internal), quiet=True)
        finally:
            if pinger is not None:
                pinger.cancel()
            self.usage = translator.usage
        if not self.client_gone and not self._finished:
            self.finish()

    async def _flush_first(self) -> None:
        await self.flush()
        self.first_byte_at = time.monotonic()

    async def _send(self, frames: list[Frame], quiet: bool = False) -> None:
        if frames:
            await self._write(sse_bytes(frames), quiet)

    async def _write(self, data: bytes, quiet: bool = False) -> None:
        flushed = self._write_now(data)
        if flushed is None:
            return
        try:
            await flushed
        except iostream.StreamClosedError:
            if not quiet:
                raise
            self.client_gone = True

    def _write_now(self, data: bytes) -> asyncio.Future[None] | None:
        """Write and flush; the flush's future, for the caller to await (None once the client is gone)."""
        if self.client_gone:
            return None
        self.write(data)
        self._last_write = time.monotonic()
        if self.first_byte_at is None:
            self.first_byte_at = self._last_write
        return self.flush()

    async def _ping_loop(self, ping: Callable[[], list[Frame]]) -> None:
        interval = self.settings_.ping_interval
        if interval <= 0:
            return
        self._last_write = time.monotonic()
        while not self.client_gone:
            await asyncio.sleep(max(0.05, self._last_write + interval - time.monotonic()))
            if time.monotonic() - self._last_write >= interval:
                await self._send(ping(), quiet=True)

    async def relay_raw(self, stream: UpstreamStream) -> None:
        """Send the upstream body on unchanged, chunk by chunk (API-key mode pass-through)."""
        self.upstream_stream = stream
        self.set_header("Content-Type", stream.headers.get("content-type", "application/json"))
        self.pass_upstream_headers(stream)
        self.send_writes_at_once()
        try:
            async for chunk in stream.chunks():
                self.write(chunk)
                await self.flush()
                if self.first_byte_at is None:
                    self.first_byte_at = time.monotonic()
        except CodexdError as err:
            # Headers are out already; the SDKs read a JSON error line as the stream's failure.
            logger.warning("pass-through stream failed: %s [%s]", err.message, self.request_id)
            self.write(b"data: " + json.dumps(openai.error_body(err)).encode() + b"\n\n")
        except iostream.StreamClosedError:
            self.client_gone = True
            stream.abort()
            return
        if not self._finished:
            self.finish()

    async def collect(self, stream: UpstreamStream) -> ResponseAggregator:
        """Read a whole upstream stream for a non-streaming client (errors raise before any byte)."""
        self.upstream_stream = stream
        agg = ResponseAggregator()
        async for batch in stream.events():
            for event in batch:
                agg.feed(event)
        self.usage = agg.usage
        return agg

    def send_json(self, payload: Any, status: int = 200) -> None:
        """Write one JSON answer."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if self.upstream_stream is not None:
            self.pass_upstream_headers(self.upstream_stream)
        self.first_byte_at = time.monotonic()
        try:
            data = json.dumps(payload, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate (e.g. echoed from the request): send it escaped
            data = json.dumps(payload).encode()
        self.finish(data)


def _consume_error(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it; the next awaited write raises its own


def sse_bytes(frames: list[Frame]) -> bytes:
    """The SSE bytes of ``frames``; text with a lone surrogate (fine in JSON, not in UTF-8) goes out escaped."""
    try:
        return "".join([frame_text(payload, event) for event, payload in frames]).encode()
    except UnicodeEncodeError:
        return "".join([frame_text(_ascii_json(payload), event) for event, payload in frames]).encode()


def _ascii_json(payload: dict[str, Any] | str) -> str:
    if isinstance(payload, str):
        return payload.encode("utf-8", "backslashreplace").decode()
    return json.dumps(payload, separators=(",", ":"))  # ensure_ascii: every non-ASCII character escaped
