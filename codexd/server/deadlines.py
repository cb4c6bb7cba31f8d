"""How long a client connection may take to send a request: its headers (also the limit on sitting idle
between requests) and then its body. A slowloris client holds a socket that long at most.

Tornado enforces both limits by wrapping each read in ``gen.with_timeout``: a chained future, a timer and
two more loop turns per request, even when the request's bytes all arrived at once. Measured in front of the
benchmark's fake backend, that cost 0.07-0.10 ms of every request's time to first byte. Here Tornado's own
timeouts are off; each request in progress has a due time in a dict, and one sweep, which runs only while
some connection is being read, closes the overdue ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from tornado import httputil
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback

logger = logging.getLogger(__name__)


class RequestDeadlines:
    """Due times of the requests being read; ``watch`` each one, the sweep closes the late ones."""

    def __init__(self, header_timeout: float, body_timeout: float) -> None:
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.due: dict[HTTP1Connection, float] = {}
        # A quarter of the shorter limit, at most a second: a late connection is closed within that much.
        self.sweep_every = min(1.0, header_timeout / 4, body_timeout / 4)
        self._sweeper: PeriodicCallback | None = None

    def watch(self, conn: HTTP1Connection, delegate: httputil.HTTPMessageDelegate) -> httputil.HTTPMessageDelegate:
        """Give ``conn`` until the header timeout to send its headers; returns the delegate to read with."""
        self.due[conn] = time.monotonic() + self.header_timeout
        if self._sweeper is None:
            self._sweeper = PeriodicCallback(self.sweep, self.sweep_every * 1000)
            self._sweeper.start()
        return _Watched(self, conn, delegate)

    @property
    def sweeping(self) -> bool:
        """Whether the sweep is scheduled (only while some connection is being read: idle, codexd sleeps)."""
        return self._sweeper is not None

    def sweep(self) -> None:
        """Close the connections past their due time, forget the closed ones; stop when none is left."""
        now = time.monotonic()
        for conn, due in list(self.due.items()):
            if conn.stream is None or conn.stream.closed():
                del self.due[conn]
            elif now >= due:
                del self.due[conn]
                logger.debug("closed a client connection that sent no complete request in time (%s)", conn.context)
                conn.close()
        if not self.due and self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None


LARGE_READ = 1 << 20  # bytes one socket read may take on a connection that has sent a large body


class _Watched(httputil.HTTPMessageDelegate):
    """Passes one request through to Tornado's delegate, moving its due time along as it is read.

    A connection that sends a body larger than Tornado's 64 KiB reads is read in reads of up to ``LARGE_READ``
    bytes from then on: a client that sent one large body (a long session's conversation) sends more. Read
    that way, a 640 KB body sent at once (as the SDKs and Claude Code send theirs) took 1.1 ms from the first
    byte to the answer instead of 2.0-2.2 ms (a Tornado server answering at once, on loopback, the same
    connection each time; see also ``DeadlineHTTPServer``): the whole request came in one read. Raising the
    size only for the rest of the body once the headers were read did not help (2.0-2.1 ms), nor did 256 KiB
    reads. Tornado gives each read a new buffer of that size (15 us to allocate 1 MiB), so connections that
    send small requests keep the 64 KiB reads."""

    __slots__ = ("conn", "deadlines", "delegate")

    def __init__(
        self, deadlines: RequestDeadlines, conn: HTTP1Connection, delegate: httputil.HTTPMessageDelegate
    ) -> None:
        self.deadlines = deadlines
        self.conn = conn
        self.delegate = delegate

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        deadlines = self.deadlines
        deadlines.due[self.conn] = time.monotonic() + deadlines.body_timeout
        stream = self.conn.stream
        length = headers.get("Content-Length", "")
        if stream is not None and length.isdigit() and int(length) > stream.read_chunk_size:
            stream.read_chunk_size = max(stream.read_chunk_size, min(LARGE_READ, stream.max_buffer_size // 2))
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.deadlines.due.pop(self.conn, None)
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.deadlines.due.pop(self.conn, None)
        self.delegate.on_connection_close()


class DeadlineHTTPServer(HTTPServer):
    """Tornado's ``HTTPServer`` with the header and body timeouts of ``RequestDeadlines`` instead of its own."""

    def initialize(  # type: ignore[override]
        self, *args: Any, header_timeout: float, body_timeout: float, **kwargs: Any
    ) -> None:
        super().initialize(*args, **kwargs)
        self.conn_params.header_timeout = None
        self.conn_params.body_timeout = None
        # The body goes to the handler in pieces of what was read, up to this size, not 64 KiB each: with
        # only the reads larger, the 640 KB body of ``_Watched`` took 1.3-1.4 ms, with both 1.1 ms.
        self.conn_params.chunk_size = LARGE_READ
        self.deadlines = RequestDeadlines(header_timeout, body_timeout)

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        delegate = super().start_request(server_conn, request_conn)
        assert isinstance(request_conn, HTTP1Connection)
        return self.deadlines.watch(request_conn, delegate)
