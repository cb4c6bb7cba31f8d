"""Shared fixtures: a temporary CODEX_HOME with a valid login, the fake backend, and codexd."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.backend import BackendState, FakeBackend, start_backend
from tests.fakes.tokens import write_auth
from tests.harness import Stack, start_stack, write_login


@pytest.fixture(autouse=True, scope="session")
def default_event_loop() -> Iterator[None]:
    """A default asyncio loop the session owns and closes. Without one, the first ``io_loop`` (pytest-tornado)
    makes asyncio create one implicitly that nobody closes; once a test replaces it (``asyncio.run`` sets none),
    its ResourceWarning surfaced in whichever later test collected garbage, and failed it there."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    """A CODEX_HOME whose auth.json holds a ChatGPT login valid for an hour."""
    home = tmp_path / "codex"
    write_login(home)
    return home


@pytest.fixture
def apikey_home(tmp_path: Path) -> Path:
    """A CODEX_HOME whose auth.json holds an API key (API-key mode: requests go to the public API), the key the
    fake's public API accepts."""
    home = tmp_path / "codex-apikey"
    api_key = BackendState().api_key
    write_auth(
        home / "auth.json", {"auth_mode": "apikey", "OPENAI_API_KEY": api_key, "tokens": None, "last_refresh": None}
    )
    return home


@pytest.fixture
def backend(io_loop: Any) -> Iterator[FakeBackend]:
    """The fake Codex backend on 127.0.0.1 (in pytest-tornado's loop)."""
    fake = start_backend()
    yield fake
    fake.stop()


@pytest.fixture
def stack(io_loop: Any, backend: FakeBackend, codex_home: Path) -> Iterator[Stack]:
    """codexd in front of the fake backend, in pytest-tornado's loop."""
    running = start_stack(codex_home, backend)
    yield running
    running.stop()
