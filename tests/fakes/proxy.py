"""A minimal forward HTTP proxy on 127.0.0.1 (absolute-URI requests), counting what it relays; over TLS when
given ``ssl_options`` (an HTTPS proxy: the client speaks TLS to the proxy itself)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from tornado import httpserver, web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.netutil import bind_sockets

_HOP = {
    "connection",
    "proxy-connection",
    "proxy-authorization",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "content-length",
}


@dataclass
class ProxyState:
    urls: list[str] = field(default_factory=list)
    credentials: list[str | None] = field(default_factory=list)  # each request's Proxy-Authorization


class ForwardHandler(web.RequestHandler):
    def initialize(self, state: ProxyState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:
        pass

    async def _relay(self) -> None:
        url = self.request.uri or ""
        self.state.urls.append(url)
        self.state.credentials.append(self.request.headers.get("Proxy-Authorization"))
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in _HOP}

        def on_header(line: str) -> None:
            if line.startswith("HTTP/"):
                self.set_status(int(line.split(" ")[1]))
            elif ":" in line and line.split(":")[0].lower() not in _HOP:
                name, _, value = line.partition(":")
                self.set_header(name.strip(), value.strip())

        def on_chunk(chunk: bytes) -> None:
            self.write(chunk)
            self.flush()

        request = HTTPRequest(
            url,
            method=self.request.method,
            headers=headers,
            body=self.request.body if self.request.method == "POST" else None,
            header_callback=on_header,
            streaming_callback=on_chunk,
            request_timeout=60,
        )
        await AsyncHTTPClient().fetch(request, raise_error=False)
        self.finish()

    get = post = _relay  # type: ignore[assignment]


def start_proxy(ssl_options: ssl.SSLContext | None = None) -> tuple[httpserver.HTTPServer, ProxyState, int]:
    state = ProxyState()
    app = web.Application([(r".*", ForwardHandler, {"state": state})])
    server = httpserver.HTTPServer(app, ssl_options=ssl_options)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    return server, state, sockets[0].getsockname()[1]
