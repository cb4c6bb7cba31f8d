"""Two stand-in proxies that do none of codexd's work, so the benchmark can show what any extra hop costs.

``python -m bench.floors relay --upstream-port P`` pipes bytes both ways to the fake's TLS port (asyncio
streams, no parsing; TLS goes end to end through it): the floor of any user-space proxy on the machine.
``python -m bench.floors passthrough --upstream URL --ca CA`` (headers to send upstream, the login among them,
as a JSON object in ``BENCH_UPSTREAM_HEADERS``: a command line is readable by every user) is a stock Tornado
server in front of Tornado's curl client that sends each request body to ``URL`` and each upstream chunk on
as it comes (keep-alive upstream, TCP_NODELAY to the client as codexd sets it): the floor of codexd's own
stack. Each prints its port on stdout, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys

from tornado import web
from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

HEADERS_ENV = "BENCH_UPSTREAM_HEADERS"


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until the end of the stream or a broken connection, then close ``writer``."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def relay(upstream_port: int) -> None:
    """Accept on a free loopback port and pipe each connection to ``upstream_port``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            writer.close()
            return
        for w in (writer, up_writer):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


class PassThrough(web.RequestHandler):
    """POST the body upstream and stream the answer back, one write and flush per upstream chunk."""

    def initialize(self, client: CurlAsyncHTTPClient, upstream: str, ca: str, headers: dict[str, str]) -> None:
        self.client, self.upstream, self.ca, self.upstream_headers = client, upstream, ca, headers

    async def post(self) -> None:
        assert self.request.connection is not None
        self.request.connection.stream.set_nodelay(True)  # type: ignore[attr-defined]
        self.set_header("Content-Type", "text/event-stream")

        def chunk(data: bytes) -> None:
            self.write(data)
            self.flush()

        request = HTTPRequest(
            self.upstream,
            method="POST",
            body=self.request.body,
            headers={"Content-Type": "application/json", "Accept": "text/event-stream", **self.upstream_headers},
            streaming_callback=chunk,
            ca_certs=self.ca,
            request_timeout=0,
        )
        answer = await self.client.fetch(request, raise_error=False)
        if answer.code != 200:
            self.set_status(502)


async def passthrough(upstream: str, ca: str, headers: dict[str, str]) -> None:
    """Serve ``PassThrough`` on a free loopback port."""
    client = CurlAsyncHTTPClient(force_instance=True, max_clients=64, max_body_size=1 << 40)
    app = web.Application(
        [(r"/.*", PassThrough, {"client": client, "upstream": upstream, "ca": ca, "headers": headers})]
    )
    sockets = bind_sockets(0, "127.0.0.1")
    HTTPServer(app).add_sockets(sockets)
    print(sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """Parse the kind and its upstream, then serve forever."""
    parser = argparse.ArgumentParser(prog="bench.floors")
    kinds = parser.add_subparsers(dest="kind", required=True)
    kinds.add_parser("relay").add_argument("--upstream-port", type=int, required=True)
    p = kinds.add_parser("passthrough")
    p.add_argument("--upstream", required=True)
    p.add_argument("--ca", required=True)
    args = parser.parse_args()
    try:
        if args.kind == "relay":
            asyncio.run(relay(args.upstream_port))
        else:
            headers = json.loads(os.environ.get(HEADERS_ENV, "{}"))
            asyncio.run(passthrough(args.upstream, args.ca, headers))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
