"""The fake backend over HTTP/2 (TLS, ALPN ``h2``), the protocol chatgpt.com offers and libcurl picks by default.

Same scripts, checks and counters as ``backend.py`` (``responses_answer`` decides every answer), served with
the ``h2`` protocol library because Tornado serves HTTP/1.1 only. It answers ``POST .../responses`` and counts
connections, the TLS sessions they resumed, the most streams open at once on one connection, and streams the
client reset. Script faults map to HTTP/2: ``drop`` resets the stream (RST_STREAM), ``reset`` aborts the whole
TCP connection.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings
from tornado.httputil import HTTPHeaders

from tests.fakes.backend import BackendState, Recorded, request_json, responses_answer
from tests.fakes.scripts import RATE_LIMIT_HEADERS, Script, Step, wire

RESPONSES_PATH = "/backend-api/codex/responses"


@dataclass
class H2Backend:
    """A running HTTP/2 fake."""

    state: BackendState
    server: asyncio.Server
    port: int
    alpn: list[str | None] = field(default_factory=list)  # the protocol each connection negotiated
    resumed: list[bool] = field(default_factory=list)  # whether each connection resumed a TLS session
    most_streams: int = 0  # the most streams open at once on one connection
    resets_from_client: int = 0  # streams the client cancelled (RST_STREAM)
    record: bool = True  # keep every request in state.requests (the benchmark turns it off)
    routes: dict[str, Callable[[bytes], tuple[int, Any]]] = field(default_factory=dict)  # more POST paths: JSON
    live: set[_Connection] = field(default_factory=set)
    max_streams: int = 100  # streams at once the server allows on one connection (its SETTINGS)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/backend-api/codex"

    openai_base_url = base_url  # API-key mode is not served here
    refresh_url = base_url  # nor the token endpoint: tests give codexd a valid login

    def stop(self) -> None:
        """Stop listening and drop every connection (their answer tasks are cancelled)."""
        self.server.close()
        for connection in list(self.live):
            connection.close()
            if connection.task is not None:
                connection.task.cancel()

    def goaway(self) -> None:
        """End every connection the polite way (GOAWAY, then close), as a server does with idle ones."""
        for connection in list(self.live):
            connection.h2.close_connection()
            connection.send()
            connection.writer.close()

    async def aclose(self) -> None:
        """``stop``, then wait until every connection's tasks have ended."""
        tasks = [c.task for c in self.live if c.task is not None]
        self.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.server.wait_closed()


async def start_h2_backend(
    cert: Path, key: Path, state: BackendState | None = None, max_streams: int = 100
) -> H2Backend:
    """Listen on a free loopback port, TLS with ALPN offering only ``h2``, allowing ``max_streams`` streams at
    once on a connection (100 is the h2 library's default, and libcurl's own limit)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    context.set_alpn_protocols(["h2"])
    box: list[H2Backend] = []
    server = await asyncio.start_server(lambda r, w: _Connection(box[0], r, w).run(), "127.0.0.1", 0, ssl=context)
    backend = H2Backend(state or BackendState(), server, server.sockets[0].getsockname()[1], max_streams=max_streams)
    box.append(backend)
    return backend


@dataclass
class _Request:
    headers: HTTPHeaders
    path: str
    body: bytearray = field(default_factory=bytearray)
    task: asyncio.Task[None] | None = None


class _Connection:
    """One client connection: a read loop that feeds the protocol, one task per answered stream."""

    def __init__(self, backend: H2Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.backend = backend
        self.state = backend.state
        self.reader, self.writer = reader, writer
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.h2.local_settings = Settings(  # the library's own, with the stream limit asked for
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: backend.max_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: self.h2.DEFAULT_MAX_HEADER_LIST_SIZE,
            },
        )
        self.requests: dict[int, _Request] = {}
        self.window = asyncio.Event()  # set whenever the client grants more flow-control window
        self.task: asyncio.Task[Any] | None = None

    def send(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def close(self) -> None:
        for request in self.requests.values():
            if request.task is not None:
                request.task.cancel()
        self.writer.transport.abort()

    async def run(self) -> None:
        self.task = asyncio.current_task()
        self.backend.live.add(self)
        self.state.connections += 1
        ssl_object = self.writer.get_extra_info("ssl_object")
        self.backend.alpn.append(ssl_object.selected_alpn_protocol() if ssl_object else None)
        self.backend.resumed.append(bool(ssl_object and ssl_object.session_reused))
        self.h2.initiate_connection()
        self.send()
        try:
            while data := await self.reader.read(65536):
                for event in self.h2.receive_data(data):
                    self.on_event(event)
                self.send()
        except (ProtocolError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.backend.live.discard(self)
            self.close()

    def on_event(self, event: Any) -> None:
        if isinstance(event, RequestReceived):
            headers, pseudo = HTTPHeaders(), {}
            for name, value in event.headers:
                if name.startswith(":"):
                    pseudo[name] = value
                else:
                    headers.add(name, value)
            self.requests[event.stream_id] = _Request(headers, pseudo.get(":path", ""))
        elif isinstance(event, DataReceived):
            self.requests[event.stream_id].body += event.data
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, StreamEnded):
            request = self.requests[event.stream_id]
            request.task = asyncio.ensure_future(self.answer(event.stream_id, request))
        elif isinstance(event, StreamReset):
            request = self.requests.pop(event.stream_id, None)
            if request is not None and request.task is not None and not request.task.done():
                self.backend.resets_from_client += 1
                self.state.closed_by_client += 1
                request.task.cancel()
        elif isinstance(event, (WindowUpdated, RemoteSettingsChanged)):
            self.window.set()
        elif isinstance(event, ConnectionTerminated):
            self.writer.close()

    async def answer(self, stream_id: int, request: _Request) -> None:
        open_now = sum(1 for r in self.requests.values() if r.task is not None and not r.task.done())
        self.backend.most_streams = max(self.backend.most_streams, open_now)
        try:
            path = request.path.split("?")[0]
            if path in self.backend.routes:
                status, payload = self.backend.routes[path](bytes(request.body))
                await self.finish(stream_id, status, {"content-type": "application/json"}, json.dumps(payload).encode())
                return
            if path != RESPONSES_PATH:
                await self.finish(stream_id, 404, {"content-type": "application/json"}, b'{"detail":"Not Found"}')
                return
            raw = bytes(request.body)
            answer = responses_answer(self.state, request.headers, self.parse(request, raw))
            if isinstance(answer, tuple):
                status, payload = answer
                await self.finish(stream_id, status, {"content-type": "application/json"}, json.dumps(payload).encode())
                return
            await self.play(stream_id, request, answer)
        except (StreamClosedError, ConnectionError):
            pass
        finally:
            self.requests.pop(stream_id, None)

    def parse(self, request: _Request, raw: bytes) -> Any:
        body = request_json(request.headers, raw)
        if self.backend.record:
            path = request.path.split("?")[0]
            self.state.requests.append(Recorded("POST", path, dict(request.headers.get_all()), raw, body))
        return body

    async def play(self, stream_id: int, request: _Request, script: Script) -> None:
        if script.reset_before_headers:
            self.writer.transport.abort()
            return
        if script.header_delay:
            await asyncio.sleep(script.header_delay)
        headers = {k.lower(): v for k, v in {**RATE_LIMIT_HEADERS, **script.headers}.items()}
        headers["x-codex-turn-state"] = request.headers.get("x-codex-turn-state") or f"ts-{stream_id}"
        if script.content_type:
            headers["content-type"] = script.content_type
        if script.status != 200:
            await self.finish(stream_id, script.status, headers, script.body or b"")
            return
        self.h2.send_headers(stream_id, [(":status", "200"), *headers.items()])
        self.send()
        self.state.open_streams += 1
        try:
            for step in script.steps:
                if not await self.step(stream_id, step, script.interval):
                    return
            self.h2.end_stream(stream_id)
            self.send()
        finally:
            self.state.open_streams -= 1

    async def step(self, stream_id: int, step: Step, interval: float) -> bool:
        """Send one step; False when it ended the stream or the connection."""
        delay = step.delay or interval
        if delay:
            await asyncio.sleep(delay)
        if step.action == "drop":
            self.h2.reset_stream(stream_id, ErrorCodes.INTERNAL_ERROR)
            self.send()
            return False
        if step.action == "reset":
            self.writer.transport.abort()
            return False
        if step.action == "stall":
            return True
        data = step.raw if step.raw is not None else wire(step.event) if step.event is not None else b""
        await self.send_data(stream_id, data)
        self.state.bytes_sent += len(data)
        return True

    async def send_data(self, stream_id: int, data: bytes) -> None:
        """Send within the client's flow-control window, waiting for it to open: a client that stops reading
        holds the stream back, as it would the real backend."""
        view = memoryview(data)
        while view:
            room = min(self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size)
            if room <= 0:
                self.window.clear()
                await self.window.wait()
                continue
            self.h2.send_data(stream_id, bytes(view[:room]))
            self.send()
            view = view[room:]
        await self.writer.drain()

    async def finish(self, stream_id: int, status: int, headers: dict[str, str], body: bytes) -> None:
        self.h2.send_headers(stream_id, [(":status", str(status)), *headers.items()], end_stream=not body)
        if body:
            await self.send_data(stream_id, body)
            self.h2.end_stream(stream_id)
        self.send()
