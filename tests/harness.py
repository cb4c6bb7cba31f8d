"""Start the fake backend and codexd together, in the test's loop or in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from codexd.server.base import AppState
from codexd.server.lifecycle import build_state, make_server
from codexd.settings import Settings
from tests.fakes.backend import FakeBackend, start_backend
from tests.fakes.tokens import auth_document, write_auth


def make_settings(backend: FakeBackend, codex_home: Path, **overrides: Any) -> Settings:
    """Settings that point codexd at the fake backend and the test's auth.json."""
    base = Settings(
        chatgpt_base_url=backend.base_url,
        openai_base_url=backend.openai_base_url,
        refresh_url=backend.refresh_url,
        codex_home=codex_home,
        idle_timeout=5.0,
        connect_timeout=2.0,
        ping_interval=0.0,
    )
    return base.replace(**overrides)


def write_login(codex_home: Path, **kwargs: Any) -> Path:
    """A valid ChatGPT login in ``codex_home/auth.json``."""
    return write_auth(codex_home / "auth.json", auth_document(**kwargs))


@dataclass
class Stack:
    """A running codexd in front of a fake backend."""

    backend: FakeBackend
    state: AppState
    server: HTTPServer
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()
        self.state.upstream.close()
        self.backend.stop()


def start_stack(codex_home: Path, backend: FakeBackend | None = None, **overrides: Any) -> Stack:
    """Start (in the current loop) a fake backend, unless given, and codexd pointed at it."""
    backend = backend or start_backend()
    state = build_state(make_settings(backend, codex_home, **overrides))
    server = make_server(state)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    return Stack(backend, state, server, sockets[0].getsockname()[1])


@contextmanager
def threaded_stack(codex_home: Path, **overrides: Any) -> Iterator[Stack]:
    """The same stack on a background event loop, for blocking clients such as the official SDKs."""
    ready = threading.Event()
    box: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            box["stack"] = start_stack(codex_home, **overrides)
            ready.set()

        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="codexd-stack", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the test stack did not start")
    stack: Stack = box["stack"]
    try:
        yield stack
    finally:
        done = threading.Event()

        def stop() -> None:
            stack.stop()
            done.set()

        loop.call_soon_threadsafe(stop)
        done.wait(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
