"""Request bodies reach the handler whole however codexd's server reads them: after a connection has sent a
large body its reads grow to ``LARGE_READ`` (a long session's next turn then comes in one read), and small
requests, large ones over the read size and gzip-compressed ones on the same connection stay intact."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import random
from typing import Any

import pytest
import tornado.netutil
import tornado.web

from codexd.server.deadlines import LARGE_READ, DeadlineHTTPServer

pytestmark = pytest.mark.gen_test(timeout=30)


class Echo(tornado.web.RequestHandler):
    """The body's size and digest as the handler got it, and the connection's read size."""

    def post(self) -> None:
        stream = self.request.connection.stream  # type: ignore[union-attr]
        body = self.request.body
        self.write({"size": len(body), "sha": hashlib.sha256(body).hexdigest(), "read": stream.read_chunk_size})


def _server() -> tuple[DeadlineHTTPServer, int]:
    server = DeadlineHTTPServer(
        tornado.web.Application([("/", Echo)]),
        decompress_request=True,
        max_body_size=8 << 20,
        header_timeout=10.0,
        body_timeout=10.0,
    )
    sock = tornado.netutil.bind_sockets(0, "127.0.0.1")[0]
    server.add_sockets([sock])
    return server, sock.getsockname()[1]


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes, gz: bool = False) -> Any:
    """One request on a kept-alive connection, sent with a single write, as the SDKs send theirs."""
    sent = gzip.compress(body) if gz else body
    head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(sent)}\r\n"
    head += "Content-Encoding: gzip\r\n\r\n" if gz else "\r\n"
    writer.write(head.encode() + sent)
    await writer.drain()
    status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    length = 0
    while (line := await reader.readline()) != b"\r\n":
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(await reader.readexactly(length))


def _body(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def test_a_connection_that_sent_a_large_body_reads_more_at_once_and_every_body_arrives_whole() -> None:
    server, port = _server()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        small = await _post(reader, writer, b'{"model":"m"}')
        assert small["size"] == 13 and small["read"] == 64 * 1024, "small requests keep Tornado's reads"
        for n, size in enumerate([640_000, 3 * LARGE_READ // 2, 200, 70_000]):
            body = _body(size, n)
            got = await _post(reader, writer, body)
            assert (got["size"], got["sha"]) == (size, hashlib.sha256(body).hexdigest())
            assert got["read"] == LARGE_READ, "from the first large body on"
        body = _body(900_000, 9)
        got = await _post(reader, writer, body, gz=True)
        assert (got["size"], got["sha"]) == (900_000, hashlib.sha256(body).hexdigest())
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await _post(reader, writer, b"{}"))["read"] == 64 * 1024, "another connection starts small"
        writer.close()
    finally:
        server.stop()


async def test_a_large_body_sent_in_pieces_arrives_whole() -> None:
    server, port = _server()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = _body(700_000, 3)
        writer.write(f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for at in range(0, len(body), 50_000):
            writer.write(body[at : at + 50_000])
            await writer.drain()
            await asyncio.sleep(0.005)
        assert await reader.readline() == b"HTTP/1.1 200 OK\r\n"
        while await reader.readline() != b"\r\n":
            pass
        got = json.loads(await reader.read(1000))
        assert (got["size"], got["sha"]) == (700_000, hashlib.sha256(body).hexdigest())
        writer.close()
    finally:
        server.stop()
