"""A fake ChatGPT Codex backend on 127.0.0.1, faithful to ``codex-backend.md``.

It rejects what the real backend rejects (the exact 400 ``detail`` texts), checks the bearer JWT and the
account header, streams realistic SSE (see ``scripts.py``), sends the ``x-codex-*`` headers, and can
drop, stall or fail on demand. It records every request and counts its TCP connections and open
streams, so tests assert on the wire and not only on what the client saw.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import struct
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import zstandard
from tornado import httpserver, iostream, web
from tornado.netutil import bind_sockets

from tests.fakes.scripts import RATE_LIMIT_HEADERS, Script, Step, text_answer, wire
from tests.fakes.tokens import read_claims

REJECTED_PARAMS = (
    "max_output_tokens",
    "temperature",
    "top_p",
    "previous_response_id",
    "max_completion_tokens",
    "frequency_penalty",
    "presence_penalty",
    "truncation",
    "user",
    "safety_identifier",
    "prompt_cache_retention",
    "context_management",
    "stream_options",
    "metadata",
)


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any
    at: float = field(default_factory=time.monotonic)  # when it arrived
    query: str = ""  # the raw query string


def models_etag(models: Any) -> str:
    """The catalog's ETag, as the backend sends it on ``/models`` and, as ``x-models-etag``, on every answer."""
    return '"' + hashlib.sha1(json.dumps(models, sort_keys=True).encode()).hexdigest()[:20] + '"'


def model_info(slug: str, name: str, *, priority: int, visibility: str = "list") -> dict[str, Any]:
    """One catalog entry with the fields of the backend's ``ModelInfo`` (codex-backend.md §12), which the Codex
    CLI requires when it reads the catalog."""
    levels = [{"effort": e, "description": f"{e} reasoning"} for e in ("low", "medium", "high", "xhigh")]
    return {
        "slug": slug,
        "display_name": name,
        "description": f"{name} in the fake backend.",
        "visibility": visibility,
        "priority": priority,
        "default_reasoning_level": "medium",
        "supported_reasoning_levels": levels,
        "supports_reasoning_summaries": True,
        "default_reasoning_summary": "none",
        "reasoning_summary_format": "experimental",
        "support_verbosity": True,
        "default_verbosity": "low",
        "supports_parallel_tool_calls": True,
        "context_window": 272000,
        "max_context_window": 272000,
        "auto_compact_token_limit": None,
        "effective_context_window_percent": 95,
        "input_modalities": ["text", "image"],
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "shell_type": "shell_command",
        "apply_patch_tool_type": "freeform",
        "web_search_tool_type": "text_and_image",
        "experimental_supported_tools": [],
        "supported_in_api": True,
        "minimal_client_version": "0.124.0",
        "prefer_websockets": True,
        "upgrade": None,
        "base_instructions": "You are a coding agent in the fake backend.",
        "service_tiers": [{"id": "priority", "name": "Fast", "description": "Faster, more usage"}],
    }


@dataclass
class BackendState:
    """What the fake will answer and what it saw."""

    scripts: deque[Script] = field(default_factory=deque)
    default: Script | None = None
    requests: list[Recorded] = field(default_factory=list)
    connections: int = 0  # TCP connections accepted
    accepted: list[iostream.IOStream] = field(default_factory=list)  # their streams, to count the open ones
    open_streams: int = 0  # response streams currently being written
    closed_by_client: int = 0  # streams whose client (codexd) went away mid-stream
    bytes_sent: int = 0  # body bytes of streams written (and flushed) so far
    revoked: set[str] = field(default_factory=set)  # access tokens answered with 401
    check_auth: bool = True
    models: dict[str, Any] = field(
        default_factory=lambda: {
            "models": [
                model_info("gpt-5.5", "GPT-5.5", priority=1),
                model_info("gpt-5.4-mini", "GPT-5.4-Mini", priority=3),
                model_info("gpt-5.4", "GPT-5.4", priority=2),
                model_info("codex-auto-review", "hidden", priority=9, visibility="hide"),
            ]
        }
    )
    models_status: int = 200
    models_delay: float = 0.0  # seconds the model list takes
    api_key: str = "sk-test-public-key-123456"  # the key the public API (API-key mode) accepts
    chooser: Any = None  # optional callable(body) -> Script | None, consulted before the queue

    @property
    def open_connections(self) -> int:
        """TCP connections accepted and not closed yet."""
        return sum(1 for stream in self.accepted if not stream.closed())

    def push(self, *scripts: Script) -> None:
        """Queue answers for the next requests, in order."""
        self.scripts.extend(scripts)

    def next_script(self, body: Any) -> Script:
        if self.chooser is not None:
            chosen = self.chooser(body)
            if chosen is not None:
                return chosen
        if self.scripts:
            return self.scripts.popleft()
        if self.default is not None:
            return self.default
        model = body.get("model", "gpt-5.5") if isinstance(body, dict) else "gpt-5.5"
        return Script.events(text_answer(model=model))

    @property
    def posts(self) -> list[Recorded]:
        """The POSTed Responses requests (not model-list or token calls)."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/responses")]


def validation_error(body: Any) -> str | None:
    """The real backend's 400 ``detail`` for a body it rejects, else None (codex-backend.md §3.2)."""
    if not isinstance(body, dict):
        return "Invalid request body"
    if body.get("stream") is not True:
        return "Stream must be set to true"
    if body.get("store") is not False:
        return "Store must be set to false"
    if not isinstance(body.get("instructions"), str) or not body["instructions"]:
        return "Instructions are required"
    for name in REJECTED_PARAMS:
        if name in body:
            return f"Unsupported parameter: {name}"
    items = body.get("input", [])
    if not isinstance(items, list):
        return "Invalid type for 'input'"
    calls, outputs = set(), set()
    for item in items:
        if not isinstance(item, dict):
            return "Invalid input item"
        if item.get("role") == "system":
            return "System messages are not allowed"
        if "id" in item:
            return (
                f"Item with id '{item['id']}' not found. Items are not persisted when `store` is set to false. "
                "Try again with `store` set to true, or remove this item from your input."
            )
        if item.get("type") == "function_call":
            calls.add(item.get("call_id"))
        if item.get("type") == "function_call_output":
            if item.get("call_id") not in calls:
                return f"No tool call found for function call output with call_id {item.get('call_id')}."
            outputs.add(item.get("call_id"))
    for call in calls - outputs:
        return f"No tool output found for function call {call}."
    return None


def auth_error(state: BackendState, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]] | None:
    """The real backend's answer to a missing, expired or revoked token or a wrong account, else None.
    ``headers`` are case-insensitive (Tornado's HTTPHeaders)."""
    if not state.check_auth:
        return None
    header = headers.get("Authorization", "")
    token = header.removeprefix("Bearer ")
    claims = read_claims(token)
    if not header.startswith("Bearer ") or not claims:
        return 401, {"detail": "Unauthorized"}
    if token in state.revoked or claims.get("exp", 0) <= time.time():
        return 401, {
            "error": {
                "message": "Provided authentication token is expired. Please try signing in again.",
                "type": None,
                "code": "token_expired",
                "param": None,
            },
            "status": 401,
        }
    account = claims.get("https://api.openai.com/auth", {}).get("chatgpt_account_id")
    if headers.get("ChatGPT-Account-ID") != account:
        return 403, {"detail": "Account mismatch"}
    return None


def unzstd(raw: bytes) -> bytes | None:
    """A ``Content-Encoding: zstd`` body decoded, or None unless it is exactly one whole zstd frame."""
    decoder = zstandard.ZstdDecompressor().decompressobj()
    try:
        out = decoder.decompress(raw)
    except zstandard.ZstdError:
        return None
    return out if decoder.eof and not decoder.unused_data else None


def request_json(headers: Mapping[str, str], raw: bytes) -> Any:
    """The JSON the backend reads from a request body (decoded first if zstd), or None."""
    encoding = headers.get("Content-Encoding")
    if encoding not in (None, "zstd"):
        return None
    text = unzstd(raw) if encoding == "zstd" else raw
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def responses_answer(state: BackendState, headers: Mapping[str, str], body: Any) -> Script | tuple[int, dict[str, Any]]:
    """What the backend answers a POST to ``/responses`` whose body ``request_json`` read: a plain JSON error
    (status, payload) for a request it rejects, else the next scripted answer."""
    failure = auth_error(state, headers)
    if failure:
        return failure
    encoding = headers.get("Content-Encoding")
    if encoding == "zstd" and body is None:  # ``request_json`` decoded it: not one whole frame (of JSON)
        return 400, {"detail": "Invalid zstd body"}
    if encoding not in (None, "zstd"):
        return 415, {"detail": f"Unsupported Content-Encoding: {encoding}"}
    problem = validation_error(body)
    if problem:
        return 400, {"detail": problem}
    return state.next_script(body)


class _Base(web.RequestHandler):
    def initialize(self, state: BackendState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:
        pass

    def record(self) -> Any:
        raw = self.request.body
        body = request_json(self.request.headers, raw)
        self.state.requests.append(
            Recorded(
                self.request.method or "",
                self.request.path,
                dict(self.request.headers),
                raw,
                body,
                query=self.request.query,
            )
        )
        return body

    def send_json(self, status: int, payload: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))


class ResponsesHandler(_Base):
    """``POST /backend-api/codex/responses``."""

    async def post(self) -> None:
        answer = responses_answer(self.state, self.request.headers, self.record())
        if isinstance(answer, tuple):
            return self.send_json(*answer)
        await self.play(answer)

    async def play(self, script: Script) -> None:
        if script.reset_before_headers:
            self._close(reset=True)
            return
        if script.header_delay:
            try:
                await self._sleep_watching(script.header_delay)
            except iostream.StreamClosedError:
                self.state.closed_by_client += 1
                return
        self.set_status(script.status)
        for name, value in {**RATE_LIMIT_HEADERS, **script.headers}.items():
            self.set_header(name, value)
        turn_state = self.request.headers.get("x-codex-turn-state")
        self.set_header("x-codex-turn-state", turn_state or "ts-" + str(len(self.state.requests)))
        self.set_header("x-models-etag", models_etag(self.state.models))
        if script.content_type:
            self.set_header("Content-Type", script.content_type)
        else:
            self.clear_header("Content-Type")
        if script.status != 200:
            self.finish(script.body or b"")
            return
        self.state.open_streams += 1
        # Every event goes out as it is written, as from the real backend's edge; with Nagle's algorithm
        # (Tornado's default until a response ends) a write waits for the client's ACK of the previous one.
        self.request.connection.stream.set_nodelay(True)  # type: ignore[attr-defined]
        try:
            await self.flush()
            for step in script.steps:
                await self._step(step, script.interval)
            self.finish()
        except iostream.StreamClosedError:
            self.state.closed_by_client += 1
        finally:
            self.state.open_streams -= 1

    def _close(self, reset: bool = False) -> None:
        """Close the connection; with ``reset``, abortively (SO_LINGER 0 makes the kernel send an RST)."""
        connection = self.request.connection
        assert connection is not None
        if reset:
            sock = connection.stream.socket  # type: ignore[attr-defined]
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()  # type: ignore[attr-defined]

    async def _step(self, step: Step, interval: float) -> None:
        if step.action in ("drop", "reset"):
            self._close(reset=step.action == "reset")
            raise iostream.StreamClosedError()
        delay = step.delay or interval
        if delay:
            await self._sleep_watching(delay)
        if step.action == "stall":
            return
        data = b""
        if step.raw is not None:
            data = step.raw
        elif step.event is not None:
            data = wire(step.event)
        self.write(data)
        await self.flush()
        self.state.bytes_sent += len(data)

    async def _sleep_watching(self, seconds: float) -> None:
        """Sleep, but notice at once when the client closes the connection."""
        stream = self.request.connection.stream  # type: ignore[union-attr]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if stream.closed():
                raise iostream.StreamClosedError()
            await asyncio.sleep(min(0.02, deadline - time.monotonic()))

    def on_connection_close(self) -> None:
        pass


class ModelsHandler(_Base):
    """``GET /backend-api/codex/models?client_version=...``."""

    async def get(self) -> None:
        self.record()
        failure = auth_error(self.state, self.request.headers)
        if failure:
            return self.send_json(*failure)
        if self.state.models_delay:
            await asyncio.sleep(self.state.models_delay)
        if not self.get_query_argument("client_version", ""):
            return self.send_json(400, {"detail": "client_version is required"})
        if self.state.models_status == 200:
            self.set_header("Etag", models_etag(self.state.models))
        self.send_json(self.state.models_status, self.state.models if self.state.models_status == 200 else {})


class PublicChatHandler(_Base):
    """``POST /v1/chat/completions`` of the public API (API-key mode): checks the key, answers natively."""

    async def post(self) -> None:
        body = self.record()
        if self.request.headers.get("Authorization") != f"Bearer {self.state.api_key}":
            return self.send_json(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "param": None,
                    }
                },
            )
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self.send_json(
                400,
                {
                    "error": {
                        "message": "messages is required",
                        "type": "invalid_request_error",
                        "code": None,
                        "param": "messages",
                    }
                },
            )
        base = {"id": "chatcmpl-public", "created": 1767225600, "model": body.get("model")}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "public api answer", "refusal": None}
            return self.send_json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                },
            )
        self.set_header("Content-Type", "text/event-stream")
        for delta, finish in (
            ({"role": "assistant", "content": ""}, None),
            ({"content": "public "}, None),
            ({"content": "api answer"}, None),
            ({}, "stop"),
        ):
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }
            self.write(f"data: {json.dumps(chunk)}\n\n")
            await self.flush()
        self.finish("data: [DONE]\n\n")


class CountingServer(httpserver.HTTPServer):
    """An HTTPServer that counts the TCP connections it accepts."""

    state: BackendState

    def handle_stream(self, stream: iostream.IOStream, address: tuple[Any, ...]) -> None:
        self.state.connections += 1
        self.state.accepted = [s for s in self.state.accepted if not s.closed()] + [stream]
        super().handle_stream(stream, address)


@dataclass
class FakeBackend:
    """A running fake: ``base_url`` for codexd's ``chatgpt_base_url``, ``refresh_url`` for tokens."""

    state: BackendState
    server: CountingServer
    port: int
    token_state: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/backend-api/codex"

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def refresh_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth/token"

    def stop(self) -> None:
        self.server.stop()


def start_backend(ssl_options: Any = None) -> FakeBackend:
    """Start the fake on an unused loopback port in the current event loop."""
    state = BackendState()
    routes: list[Any] = [
        (r"/backend-api/codex/responses", ResponsesHandler, {"state": state}),
        (r"/backend-api/codex/models", ModelsHandler, {"state": state}),
        (r"/v1/chat/completions", PublicChatHandler, {"state": state}),
    ]
    token_state = None
    try:
        from tests.fakes.token_endpoint import TokenEndpointHandler, TokenEndpointState
    except ImportError:
        pass
    else:
        token_state = TokenEndpointState()
        routes.append((r"/oauth/token", TokenEndpointHandler, {"state": token_state}))
    app = web.Application(routes)
    server = CountingServer(app, ssl_options=ssl_options, idle_connection_timeout=60)
    server.state = state
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    return FakeBackend(state, server, sockets[0].getsockname()[1], token_state)
