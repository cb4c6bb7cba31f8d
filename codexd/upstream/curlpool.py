"""Tornado's curl client with curl handles made when a request needs one, and let go when codexd is idle,
and streamed requests set up without Tornado's general-purpose option code.

Tornado creates ``max_clients`` curl handles up front (6.8 KiB each, so 7 MiB for 1,000 streams) and keeps
every handle it has used, with its upload buffer and its last request body (about 25 KiB more), for as long
as the process lives. Here handles are created on demand, up to ``max_clients``, and ``close_idle_handles``
closes the ones not in use. Upstream connections live in the multi handle, so they stay warm either way.
Every handle keeps its TLS sessions in one cache for the process (``tls_sessions``), which outlives the
clients: a connection opened after codexd closed the idle ones resumes its TLS session.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from io import BytesIO
from typing import Any

import pycurl
from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import HTTPRequest, HTTPResponse

CurlOptions = Sequence[tuple[int, Any]]


@functools.cache
def tls_sessions() -> Any:
    """The process's TLS session cache, made with the first curl handle: made at import, it added 2.9 MiB to
    the RSS at start (three starts each), which the first TLS connection costs anyway.

    libcurl keeps the TLS sessions (tickets) the servers gave in the multi handle, so they went with a client
    closed when idle (after 118 s without requests, or after an HTTP/2 burst), and the next connection made a
    full handshake: certificates sent and checked again. A share keeps them for every handle of the process
    (libcurl keys each by host, port and TLS settings); ``curl_easy_reset`` leaves a handle's share in place.
    """
    share = pycurl.CurlShare()
    share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_SSL_SESSION)
    return share


class PreparedRequest(HTTPRequest):
    """A POST whose curl options are worked out once for many requests: ``LazyCurlClient`` sets them, the URL,
    the headers and the body itself, in about 8 us, where Tornado's ``_curl_setup_request`` took about 60 us
    per request (reading some forty attributes through its request proxy to set options one at a time); it
    is on the way to every first token.

    ``options`` holds every other option the transfer needs (a handle is reset after each transfer);
    ``prepare`` is called last, with the handle (Tornado's ``prepare_curl_callback``)."""

    def __init__(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        options: CurlOptions,
        prepare: Callable[[Any], None],
    ) -> None:
        super().__init__(url, method="POST", body=body)
        self.prepare = prepare
        self.header_map = headers  # not ``headers``: fetch() would copy those into an HTTPHeaders first
        self.curl_options = options


def set_options(curl: Any, options: CurlOptions) -> None:
    """Set each ``(option, value)`` on a curl handle."""
    for option, value in options:
        curl.setopt(option, value)


def header_lines(headers: Mapping[str, str]) -> list[bytes]:
    """Request header lines for libcurl, encoded as Tornado encodes them, with libcurl's own ``Expect:`` (a
    wait for ``100 Continue`` before large bodies) and ``Pragma:`` headers turned off, as Tornado does."""
    lines = [b"%s: %s" % (name.encode("ascii"), value.encode("latin-1")) for name, value in headers.items()]
    lines += [b"Expect:", b"Pragma:"]
    return lines


class LazyCurlClient(CurlAsyncHTTPClient):
    """``CurlAsyncHTTPClient`` with handles on demand; see the module docstring.

    With ``spare_connections``, libcurl's connection cache holds the connections of the running transfers
    plus that many idle ones. libcurl's own limit (``CURLMOPT_MAXCONNECTS``) counts busy connections too: a
    fixed one below the number of concurrent streams would close each connection as its transfer ends, and
    every new request would pay a TLS handshake. Without a limit, libcurl keeps up to four connections per
    running transfer, so a burst of streams would leave hundreds of idle TLS connections behind.
    """

    def initialize(  # type: ignore[override]
        self, max_clients: int = 10, spare_connections: int | None = None, **kwargs: Any
    ) -> None:
        super().initialize(max_clients=0, **kwargs)
        self.max_handles = max_clients
        self.spare_connections = spare_connections
        self._cache_limit = -1
        # Connections opened by transfers that started while others ran (libcurl's NUM_CONNECTS): over HTTP/2,
        # where a transfer waits for a running one's connection, only a full connection makes another.
        self.extra_connections = 0

    def _curl_create(self) -> Any:
        curl = super()._curl_create()
        curl.setopt(pycurl.SHARE, tls_sessions())
        return curl

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]) -> None:
        """Queue the request as Tornado does, with one more handle first if all are busy and the cap allows."""
        if not self._free_list and len(self._curls) < self.max_handles:
            curl = self._curl_create()
            self._curls.append(curl)
            self._free_list.append(curl)
        self._fit_cache(1)
        super().fetch_impl(request, callback)
        if self._requests:
            return  # queued: every handle is busy
        # Tornado lets libcurl start the transfer on the next loop turn (a zero timeout). Starting it now sends
        # the request over a warm connection before this returns: one loop turn less before the first byte.
        if self._timeout is not None:
            self.io_loop.remove_timeout(self._timeout)
            self._timeout = None
        self._handle_timeout()

    def _curl_setup_request(self, curl: Any, request: HTTPRequest, buffer: BytesIO, headers: Any) -> None:
        curl.info["beside_others"] = len(self._curls) - len(self._free_list) > 1  # this one is taken already
        prepared = getattr(request, "request", request)  # fetch() hands a proxy of the request on
        if not isinstance(prepared, PreparedRequest):
            super()._curl_setup_request(curl, request, buffer, headers)
            return
        body = prepared.body
        curl.setopt(pycurl.URL, prepared.url)
        curl.setopt(pycurl.HTTPHEADER, header_lines(prepared.header_map))
        curl.setopt(pycurl.WRITEFUNCTION, buffer.write)  # until ``prepare`` says otherwise
        set_options(curl, prepared.curl_options)
        curl.setopt(pycurl.POST, 1)
        curl.setopt(pycurl.POSTFIELDSIZE_LARGE, len(body))
        curl.setopt(pycurl.POSTFIELDS, body)  # sent from the bytes object itself, which the handle keeps alive
        prepared.prepare(curl)

    def _finish(self, curl: Any, curl_error: int | None = None, curl_message: str | None = None) -> None:
        if curl.info["beside_others"] and curl.getinfo(pycurl.NUM_CONNECTS):
            self.extra_connections += 1
        super()._finish(curl, curl_error, curl_message)
        self._fit_cache(0)

    def _fit_cache(self, starting: int) -> None:
        """Let the connection cache hold every running (or queued) transfer's connection plus the spares.
        libcurl applies the limit when a transfer ends and its connection goes back to the cache."""
        if self.spare_connections is None:
            return
        running = len(self._curls) - len(self._free_list) + len(self._requests) + starting
        limit = running + self.spare_connections
        if limit != self._cache_limit:
            self._multi.setopt(pycurl.M_MAXCONNECTS, limit)
            self._cache_limit = limit

    @property
    def at_rest(self) -> bool:
        """No transfer running or queued."""
        return not self._requests and len(self._free_list) == len(self._curls)

    def close_idle_handles(self) -> int:
        """Close every handle not carrying a request; how many were closed."""
        idle = {id(curl) for curl in self._free_list}
        for curl in self._free_list:
            curl.close()
        self._free_list.clear()
        self._curls = [curl for curl in self._curls if id(curl) not in idle]
        return len(idle)
