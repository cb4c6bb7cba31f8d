"""One upstream request: status and headers first, then body chunks or decoded events, abortable.

Built on Tornado's curl client. libcurl keeps connections alive; aborting uses the progress callback plus
a pause/unpause kick so the connection closes at once, even while the upstream is silent. Reads are
bounded: past ``_HIGH_WATER`` buffered bytes the transfer is paused until the consumer catches up, so a
slow client slows the upstream instead of filling memory. libcurl calls this stream's write and header
functions itself: no Tornado buffer or loop callback per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import json.scanner
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Container
from typing import Any

import pycurl

from codexd.errors import CodexdError, ErrorKind
from codexd.sse import SSEDecoder

logger = logging.getLogger(__name__)

_HIGH_WATER = 4 * 1024 * 1024
# libcurl's bounds for its upload buffer, and room in it for the request line and headers (a bearer token
# alone is about 2 KiB).
UPLOAD_BUFFER_MIN = 16 * 1024
UPLOAD_BUFFER_MAX = 1024 * 1024
_HEADER_ROOM = 8 * 1024


def upload_buffer_size(body_size: int) -> int:
    """The upload buffer for a request body of ``body_size`` bytes: room for the whole request, within
    libcurl's minimum and a 1 MiB cap.

    libcurl sends at most one buffer per socket event. With the 16 KiB minimum, an 80 KB request went out in
    five loop turns, each waiting for the socket to report writable (strace); with room for all of it, in one.
    A small request keeps the minimum: the buffer stays with the curl handle while its stream is open."""
    return max(UPLOAD_BUFFER_MIN, min(body_size + _HEADER_ROOM, UPLOAD_BUFFER_MAX))


class UpstreamStream:
    """Collects what libcurl delivers; the consumer awaits ``headers_ready`` then iterates."""

    def __init__(self, idle_timeout: float, label: str = "", multiplex: bool = False, body_size: int = 0) -> None:
        self.idle_timeout = idle_timeout
        self.body_size = body_size  # of the request body: sizes libcurl's upload buffer
        self.label = label
        self.multiplex = multiplex  # wait for a connection to share (HTTP/2) rather than open one
        self.http_version = 0  # from the status line: 1 or 2
        self.status = 0
        self.headers: dict[str, str] = {}  # names lower-cased; a repeated header's values joined by commas
        self.bytes_received = 0
        self.aborted = False
        self._abort_reason: CodexdError | None = None
        self._header_lines: list[bytes] = []
        self._headers_done = False
        self._waiter: asyncio.Future[None] | None = None  # the consumer, while it waits for headers or data
        self._watchdog: asyncio.TimerHandle | None = None  # the idle check: one timer per idle period
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._done = False
        self._error: BaseException | None = None
        self._curl: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None  # see _running_loop
        self._last = time.monotonic()
        self.started_at = self._last  # when the request was handed to libcurl
        self.headers_at: float | None = None  # when the status and headers had arrived
        self.finished_at: float | None = None  # when the transfer ended, normally or not

    # --- callbacks wired into the tornado HTTPRequest -------------------------------------------
    def prepare_curl(self, curl: Any) -> None:
        """``prepare_curl_callback``: keep the handle, install the abort hook, and have libcurl hand headers
        and body bytes to this stream directly (Tornado's own callbacks add a buffer, a loop callback and a
        header parse per read, for nothing we use)."""
        self._curl = curl
        curl.setopt(pycurl.NOPROGRESS, 0)
        curl.setopt(pycurl.XFERINFOFUNCTION, self._progress)
        curl.setopt(pycurl.HEADERFUNCTION, self.on_header)
        curl.setopt(pycurl.WRITEFUNCTION, self.on_chunk)
        # Not libcurl's default 64 KiB: the minimum measured 48 KiB less RSS per open stream (500 streams,
        # python -m bench), and a large request is sent in one go (see upload_buffer_size).
        curl.setopt(pycurl.UPLOAD_BUFFERSIZE, upload_buffer_size(self.body_size))
        # Python already ignores SIGPIPE; without NOSIGNAL libcurl would save and restore the SIGPIPE handler
        # (two rt_sigaction calls) around every socket event.
        curl.setopt(pycurl.NOSIGNAL, 1)
        if self.multiplex:
            # Over HTTP/2 (chatgpt.com offers it; libcurl negotiates it by default) concurrent streams share one
            # connection, but a burst started while none was free to share would open one each.
            curl.setopt(pycurl.PIPEWAIT, 1)

    def _progress(self, *_: int) -> int:
        return 1 if self.aborted else 0

    def on_header(self, line: bytes) -> None:
        """libcurl's header function: one raw header line; the blank line ends a header block. Lines are
        only collected here and taken apart once, at the end of the block."""
        if line[:5] == b"HTTP/":
            self._header_lines = []
            parts = line.split(None, 2)
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            self.http_version = 2 if parts[0] == b"HTTP/2" else 1
        elif line not in (b"\r\n", b"\n", b""):
            self._header_lines.append(line)
        elif self.status >= 200 or self.status == 0:  # 1xx blocks are followed by the real one
            headers: dict[str, str] = {}
            for raw in self._header_lines:
                name, sep, value = raw.decode("latin-1").partition(":")
                if sep:
                    name = name.strip().lower()
                    value = value.strip()
                    headers[name] = f"{headers[name]},{value}" if name in headers else value
            self._header_lines = []
            self.headers = headers
            self.headers_at = time.monotonic()
            self._headers_done = True
            self._wake()

    def on_chunk(self, chunk: bytes) -> int | None:
        """libcurl's write function: queue the chunk. Once the consumer lags ``_HIGH_WATER`` bytes behind,
        refuse it: libcurl pauses the transfer, keeps the chunk, and hands it over again when
        ``chunks()`` resumes."""
        if self.aborted:
            return None  # dropped: the progress callback is ending the transfer
        if self._buffered >= _HIGH_WATER:
            self._paused = True
            return int(pycurl.WRITEFUNC_PAUSE)
        self._last = time.monotonic()
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        self.bytes_received += len(chunk)
        self._wake()
        return None

    def on_done(self, error: BaseException | None) -> None:
        """The fetch finished (normally or not)."""
        self._done = True
        self.finished_at = time.monotonic()
        if error is not None and not self.aborted:
            self._error = error
        self._curl = None
        self._headers_done = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _watch(self) -> None:
        """The idle check. It runs once per idle period rather than once per read: a silent upstream wakes
        the waiting consumer, which raises the timeout; data in between only moves the next check."""
        self._watchdog = None
        if self._waiter is None:
            return  # the consumer is busy; it re-arms the check when it waits again
        left = self._last + self.idle_timeout - time.monotonic()
        if left <= 0:
            self._wake()
        else:
            self._watchdog = self._running_loop().call_later(left, self._watch)

    # --- consumer side ---------------------------------------------------------------------------
    async def wait_headers(self, timeout: float) -> None:
        """Wait for the status line and headers (or the end of the request)."""
        if not self._headers_done:
            # A plain future and timer: asyncio.wait_for would add a task and two loop turns before the
            # first byte of every answer.
            loop = self._running_loop()
            self._waiter = loop.create_future()
            timer = loop.call_later(timeout, self._wake)
            try:
                await self._waiter
            finally:
                self._waiter = None
                timer.cancel()
        if not self._headers_done:
            self.abort()
            raise CodexdError(ErrorKind.TIMEOUT, f"the upstream sent no answer within {timeout:g} s", code="timeout")
        if self._error is not None and not self.status:
            raise self._error

    async def body(self) -> bytes:
        """The whole (error) body; for non-2xx answers, which are short."""
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    @property
    def has_data(self) -> bool:
        """Whether body bytes (or the end of the body) are already here, so reading would not wait."""
        return bool(self._chunks) or self._done

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive; raises ``CodexdError`` on idle timeout or a broken connection."""
        try:
            while True:
                if self._abort_reason is not None:
                    raise self._abort_reason
                if self._chunks:
                    batch = b"".join(self._chunks)
                    self._chunks.clear()
                    self._buffered = 0
                    if self._paused:
                        self._resume()
                        self._last = time.monotonic()  # silence counts from now: we held the upstream back
                    yield batch
                    continue
                if self._done:
                    if self._error is not None:
                        raise CodexdError(
                            ErrorKind.UPSTREAM,
                            f"the upstream connection broke: {self._error}",
                            code="upstream_disconnected",
                        )
                    return
                await self._wait_for_data()
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None

    async def _wait_for_data(self) -> None:
        left = self._last + self.idle_timeout - time.monotonic()
        if left <= 0:
            self.abort()
            raise CodexdError(ErrorKind.TIMEOUT, f"the upstream was silent for {self.idle_timeout:g} s", code="timeout")
        loop = self._running_loop()
        if self._watchdog is None:
            self._watchdog = loop.call_later(left, self._watch)
        self._waiter = loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop, looked up once per stream rather than once per read: on Python 3.11 each lookup
        is a ``getpid()`` system call (CPython issue 100363, gone in 3.12)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    async def events(self, unread: Container[str] = frozenset()) -> AsyncIterator[list[dict[str, Any]]]:
        """Decoded JSON events, one list per upstream read (non-JSON data such as ``[DONE]`` skipped); the list
        is empty when a read completed no event. Events named in ``unread`` come as ``{"type": name, "raw":
        text}``, their data not parsed, when it has the backend's shape: ``{"type":"NAME"`` ... ``}``. Other data
        is parsed, and dropped if it is not JSON, as is an event cut off by the end of the stream: what is not
        an event, or only part of one, does not reach a client."""
        decoder = SSEDecoder()
        async for chunk in self.chunks():
            yield _parse(decoder.feed(chunk), unread)
        tail = _parse(decoder.close(), frozenset())
        if tail:
            yield tail

    def abort(self, reason: CodexdError | None = None) -> None:
        """Close the upstream connection now; safe to call at any time, more than once. With a ``reason``,
        a consumer still reading gets that error (for its client) instead of a plain end of stream."""
        if self.aborted:
            return
        self.aborted = True
        self._abort_reason = reason
        curl = self._curl
        if curl is not None:
            try:  # a pause/unpause kick makes libcurl run the progress callback immediately
                curl.pause(pycurl.PAUSE_ALL)
                curl.pause(pycurl.PAUSE_CONT)
            except pycurl.error:
                pass
        self._headers_done = True
        self._wake()

    def _resume(self) -> None:
        """Lift the pause ``on_chunk`` asked for; libcurl may hand over the held chunk before this returns."""
        self._paused = False
        curl = self._curl
        if curl is not None:
            with contextlib.suppress(pycurl.error):  # the transfer failed while paused: on_done reports it
                curl.pause(pycurl.PAUSE_CONT)


_DECODER = json.JSONDecoder()
_SCAN = json.scanner.make_scanner(_DECODER)  # type: ignore[arg-type]  # C scanner: json.loads minus 2 wrappers


def _parse(events: list[Any], unread: Container[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for event in events:
        data = event.data
        if data[:1] != "{":
            continue  # [DONE], keep-alive text: not an event
        name = event.event
        if name is not None and name in unread and data[-1] == "}" and data.startswith(f'{{"type":"{name}"'):
            out.append({"type": name, "raw": data})
            continue
        try:
            parsed, end = _SCAN(data, 0)
            if end != len(data):
                parsed = _DECODER.decode(data)  # trailing whitespace is fine, anything else raises
        except (ValueError, StopIteration, RecursionError):
            logger.debug("skipping a non-JSON upstream event (%d bytes)", len(data))
            continue
        out.append(parsed)
    return out
