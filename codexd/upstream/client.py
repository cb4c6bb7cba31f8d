"""The upstream client: credentials, headers, one request, the 401 recovery and the single retry.

Every byte codexd sends to the Codex backend (or, in API-key mode, to api.openai.com) leaves through
``UpstreamClient``. Streams use one curl client sized for many concurrent long streams; short control
calls (token refresh, the model list) use a second instance so they never queue behind streams.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pycurl
from tornado.httpclient import HTTPRequest

from codexd import __version__
from codexd.content_coding import COMPRESS_FROM, compress
from codexd.credentials import Auth, Credentials
from codexd.errors import CodexdError, ErrorKind
from codexd.jsonbody import dumps_body
from codexd.settings import Settings
from codexd.upstream.curlpool import CurlOptions, LazyCurlClient, PreparedRequest, set_options
from codexd.upstream.failures import error_from_answer
from codexd.upstream.stream import UpstreamStream
from codexd.upstream.trust import proxy_trust_options, trust_options

logger = logging.getLogger(__name__)

# Client headers that carry conversation identity; forwarded so prompt caching and routing keep working.
IDENTITY_HEADERS = (
    "session-id",
    "thread-id",
    "x-client-request-id",
    "x-codex-turn-state",
    "x-codex-window-id",
    "x-codex-turn-metadata",
    "x-codex-beta-features",
    "x-openai-subagent",
    "x-codex-parent-thread-id",
    "originator",
    "version",
)
_ALIASES = {"session_id": "session-id", "thread_id": "thread-id"}
IDLE_CONNECTIONS = 32  # idle upstream connections kept for reuse, beside those of running streams
CONNECTION_MAX_AGE = 118.0  # seconds: libcurl reuses no connection idle longer (CURLOPT_MAXAGE_CONN's default)
RETRY_BACKOFF = 0.25  # seconds before the one retry of a transient failure


def proxy_options(settings: Settings) -> list[tuple[int, Any]]:
    """The curl options for ``settings.proxy``: libcurl takes the URL whole (``http://`` when it names no
    scheme), so an ``https://`` proxy is spoken to over TLS and a ``socks5://`` one as SOCKS, and a user name
    and password in it are percent-decoded; ``ca_bundle`` and ``ca_dir`` also check an HTTPS proxy's own
    certificate."""
    proxy = settings.proxy
    if not proxy:
        return []
    return [(pycurl.PROXY, proxy if "://" in proxy else "http://" + proxy), *proxy_trust_options(settings)]


def identity_headers(client_headers: Mapping[str, str]) -> dict[str, str]:
    """The identity headers of a client request, in the hyphenated spelling the backend wants."""
    out: dict[str, str] = {}
    for name, value in client_headers.items():
        lower = name.lower()
        lower = _ALIASES.get(lower, lower)
        if lower in IDENTITY_HEADERS and value:
            out[lower] = value
    return out


@dataclass
class Observer:
    """Hooks for metrics: each upstream answer's headers, and each upstream failure by kind."""

    on_headers: Callable[[Mapping[str, str]], None] = lambda headers: None
    on_error: Callable[[str], None] = lambda kind: None


@dataclass
class UpstreamClient:
    """Opens upstream requests with the user's credentials; see the module docstring."""

    settings: Settings
    credentials: Credentials
    observer: Observer = field(default_factory=Observer)
    _streams: LazyCurlClient | None = None
    _control: LazyCurlClient | None = None

    def __post_init__(self) -> None:
        self.user_agent = f"codexd/{__version__} ({platform.system()} {platform.release()}; {platform.machine()})"
        self.live: set[UpstreamStream] = set()
        # Whether the last answer came over HTTP/2: then new streams wait for that connection rather than
        # each opening its own (libcurl's PIPEWAIT). Not before: against an HTTP/1.1 upstream PIPEWAIT would
        # make a burst of streams open their connections one after the other.
        self.multiplexing = False
        self._options: CurlOptions = ()
        self._options_for: Settings | None = None

    def _client(self, control: bool = False) -> LazyCurlClient:
        if control:
            if self._control is None:
                self._control = LazyCurlClient(force_instance=True, max_clients=16, max_body_size=64 << 20)
            return self._control
        if self._streams is None:
            self._streams = LazyCurlClient(
                force_instance=True,
                max_clients=self.settings.max_clients,
                max_body_size=1 << 40,
                spare_connections=IDLE_CONNECTIONS,
            )
        return self._streams

    def release_handles(self) -> int:
        """Close the stream handles not in use (a used handle keeps about 25 KiB, more with a large request
        body); new ones are made when requests need them. How many were closed. Called when codexd is idle."""
        return self._streams.close_idle_handles() if self._streams is not None else 0

    def close_idle(self) -> bool:
        """Close each curl client that has no transfer running, with its handles and cached connections;
        the next request opens a new one. True when one was closed.

        Called after ``CONNECTION_MAX_AGE`` without requests, when libcurl would not reuse those connections
        any more but would keep them (about 150 KiB each with their TLS state) until the next request.
        """
        closed = self._close_streams()
        if self._control is not None and self._control.at_rest:
            self._control.close()
            self._control = None
            closed = True
        return closed

    def close_extra_connections(self) -> bool:
        """Close the stream connections if, over HTTP/2, a request since the last call opened one beside
        those running; True when closed.

        One HTTP/2 connection carries every stream up to the server's limit (libcurl's is 100), so another is
        opened only when one is full; once idle, the extra ones only hold memory until ``CONNECTION_MAX_AGE``:
        their TLS and HTTP/2 state, and the heap pages that state keeps resident among what the burst freed.
        libcurl cannot close some idle connections and keep one, so all go, and the next request opens one
        again (one TLS handshake). A connection opened in place of one the server closed is not extra: it
        was opened with no other stream running. Over HTTP/1.1 each concurrent stream needs a connection of
        its own: the idle ones are kept for the next burst. Called when codexd is idle after requests.
        """
        streams = self._streams
        if streams is None or not streams.at_rest:
            return False
        extra, streams.extra_connections = streams.extra_connections, 0
        return bool(extra) and self.multiplexing and self._close_streams()

    def _close_streams(self) -> bool:
        """Close the stream client, with its handles and connections, if no transfer runs; True when closed."""
        if self._streams is None or not self._streams.at_rest:
            return False
        self._streams.close()
        self._streams = None
        return True

    def close(self) -> None:
        """Abort every live stream and release the curl handles."""
        for stream in list(self.live):
            stream.abort()
        for client in (self._streams, self._control):
            if client is not None:
                client.close()
        self._streams = self._control = None

    def base_url(self, auth: Auth) -> str:
        """The backend for this login: the Codex backend, or the public API in API-key mode."""
        base = self.settings.openai_base_url if auth.mode == "apikey" else self.settings.chatgpt_base_url
        return base.rstrip("/")

    def _request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "connect_timeout": self.settings.connect_timeout,
            "request_timeout": 0,  # no deadline over the whole stream: the idle timeout covers silence
            "decompress_response": True,
        }
        # After Tornado's own set-up, which knows only a proxy's host and port (an https:// proxy would be
        # spoken to in plain HTTP on its TLS port) and only a CA file.
        options = [*trust_options(self.settings), *proxy_options(self.settings)]
        if options:
            kwargs["prepare_curl_callback"] = partial(set_options, options=options)
        return kwargs

    def _stream_options(self) -> CurlOptions:
        """The curl options of every stream request under the current settings, worked out once."""
        settings = self.settings
        if self._options_for is not settings:
            self._options = stream_options(settings)
            self._options_for = settings
        return self._options

    def _headers(self, auth: Auth, extra: Mapping[str, str], content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "User-Agent": self.user_agent, "originator": "codex_cli_rs"}
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(extra)
        headers.update(auth.headers())
        return headers

    async def open_stream(
        self,
        body: dict[str, Any],
        client_headers: Mapping[str, str] | None = None,
        *,
        path: str = "/responses",
    ) -> UpstreamStream:
        """POST ``body`` and return the stream once a 2xx status arrived; errors raise ``CodexdError``.

        A 401 triggers one credential recovery and one resend; a transient failure before the first byte
        (connection refused or reset, 502/503/504) one resend after a short backoff. Never after that.
        """
        payload = dumps_body(body)
        extra = identity_headers(client_headers or {})
        zipped: bytes | None = None  # the payload compressed, once, for the Codex backend
        auth = await self.credentials.current()
        recovered = retried = False
        while True:
            if self._compresses(auth, payload):
                zipped = zipped or compress(payload)
                stream = self._start(auth, path, zipped, {**extra, "Content-Encoding": "zstd"})
            else:
                stream = self._start(auth, path, payload, extra)
            try:
                await stream.wait_headers(self.settings.idle_timeout)
            except CodexdError:
                self.observer.on_error("timeout")
                raise
            except Exception as exc:
                stream.abort()
                self.observer.on_error("connect")
                if not retried:
                    retried = True
                    logger.warning("upstream connection failed (%s); retrying once", exc)
                    await asyncio.sleep(RETRY_BACKOFF * (1 + random.random()))
                    continue
                raise CodexdError(
                    ErrorKind.UNAVAILABLE,
                    f"cannot reach the upstream at {self.base_url(auth)}: {exc}",
                    status=502,
                    code="upstream_unreachable",
                    transient=True,
                ) from None
            self.multiplexing = stream.http_version == 2
            # Rate-limit bookkeeping waits for the next loop turn: it is not on the way to the first byte.
            asyncio.get_running_loop().call_soon(self.observer.on_headers, stream.headers)
            if 200 <= stream.status < 300:
                return stream
            answer = await _error_body(stream)
            error = error_from_answer(stream.status, answer, stream.headers)
            self.observer.on_error(f"http_{stream.status}")
            logger.warning(
                "upstream answered %d (%s) request-id=%s",
                stream.status,
                error.code or "-",
                stream.headers.get("x-request-id", "-"),
            )
            if stream.status == 401 and not recovered:
                recovered = True
                auth = await self.credentials.after_unauthorized(auth)
                continue
            if error.transient and not retried:
                retried = True
                await asyncio.sleep(RETRY_BACKOFF * (1 + random.random()))
                continue
            raise error

    def _compresses(self, auth: Auth, payload: bytes) -> bool:
        """Whether ``payload`` goes zstd-compressed: to the Codex backend, which takes the Codex CLI's zstd bodies
        (api.openai.com is not known to), when ``upstream.compress`` is on and the body is worth it."""
        return auth.mode != "apikey" and self.settings.compress and len(payload) >= COMPRESS_FROM

    def _start(self, auth: Auth, path: str, payload: bytes, extra: Mapping[str, str]) -> UpstreamStream:
        url = self.base_url(auth) + path
        stream = UpstreamStream(
            self.settings.idle_timeout, label=path, multiplex=self.multiplexing, body_size=len(payload)
        )
        request = PreparedRequest(
            url,
            payload,
            self._headers(auth, extra, "application/json"),
            self._stream_options(),
            stream.prepare_curl,  # headers and body go to the stream directly
        )
        future = self._client().fetch(request, raise_error=False)
        self.live.add(stream)

        def done(fut: asyncio.Future[Any]) -> None:
            self.live.discard(stream)
            response = fut.result() if not fut.cancelled() and fut.exception() is None else None
            error = fut.exception() if not fut.cancelled() else None
            if response is not None and response.error is not None and response.code == 599:
                error = response.error
            stream.on_done(error)

        future.add_done_callback(done)
        return stream

    async def get_json(self, path: str, params: str = "", timeout: float = 10.0) -> tuple[Any, Mapping[str, str]]:
        """GET a small JSON document from the backend (the model catalog), with the user's credentials: the
        document and the answer's headers."""
        auth = await self.credentials.current()
        kwargs = self._request_kwargs()
        kwargs["request_timeout"] = timeout
        request = HTTPRequest(
            self.base_url(auth) + path + (f"?{params}" if params else ""),
            headers=self._headers(auth, {"Accept": "application/json"}, None),
            **kwargs,
        )
        try:
            response = await self._client(control=True).fetch(request, raise_error=False)
        except Exception as exc:  # connection-level failures raise even with raise_error=False
            raise CodexdError(ErrorKind.UNAVAILABLE, f"cannot reach the upstream: {exc}", status=502) from None
        if response.code == 599:
            raise CodexdError(ErrorKind.UNAVAILABLE, f"cannot reach the upstream: {response.error}", status=502)
        if response.code >= 300:
            raise error_from_answer(response.code, response.body or b"", response.headers)
        try:
            return json.loads(response.body), response.headers
        except ValueError:
            raise CodexdError(ErrorKind.UPSTREAM, "the upstream answered with invalid JSON") from None

    def token_post(self) -> Callable[[str, dict[str, Any]], Awaitable[tuple[int, bytes]]]:
        """The ``post`` function ``Credentials`` uses to reach the token endpoint."""

        async def post(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
            kwargs = self._request_kwargs()
            kwargs["request_timeout"] = 30.0
            request = HTTPRequest(
                url,
                method="POST",
                body=json.dumps(body),
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": self.user_agent,
                    "originator": "codex_cli_rs",
                },
                **kwargs,
            )
            try:
                response = await self._client(control=True).fetch(request, raise_error=False)
            except Exception as exc:  # connection-level failures raise even with raise_error=False
                raise OSError(str(exc)) from None
            if response.code == 599:
                raise OSError(str(response.error))
            return response.code, response.body or b""

        return post


def stream_options(settings: Settings) -> CurlOptions:
    """The curl options a stream request needs besides its URL, headers and body: what Tornado's request
    defaults and ``_request_kwargs`` amount to (redirects followed as before, over HTTP(S) only; gzip and
    deflate answers decoded; certificates verified against the CAs ``trust_options`` names; the proxy;
    no overall deadline, as the idle timeout covers silence)."""
    web = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS
    options: list[tuple[int, Any]] = [
        (pycurl.PROTOCOLS, web),
        (pycurl.REDIR_PROTOCOLS, web),
        (pycurl.FOLLOWLOCATION, 1),
        (pycurl.MAXREDIRS, 5),
        (pycurl.CONNECTTIMEOUT_MS, int(1000 * settings.connect_timeout)),
        (pycurl.ENCODING, "gzip,deflate"),
        (pycurl.SSL_VERIFYPEER, 1),
        (pycurl.SSL_VERIFYHOST, 2),
    ]
    return (*options, *trust_options(settings), *proxy_options(settings))


async def _error_body(stream: UpstreamStream) -> bytes:
    try:
        return await asyncio.wait_for(stream.body(), 30.0)
    except (CodexdError, TimeoutError):
        return b""
