"""Reliability fixtures: codexd with a short idle timeout and a quick retry backoff, and an ERROR-log trap."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codexd.upstream import client as upstream_client
from tests.fakes.backend import FakeBackend
from tests.harness import Stack, start_stack

IDLE_TIMEOUT = 0.5


@pytest.fixture
def stack(io_loop: Any, backend: FakeBackend, codex_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """codexd in front of the fake backend with ``idle_timeout`` 0.5 s and a 50 ms retry backoff."""
    monkeypatch.setattr(upstream_client, "RETRY_BACKOFF", 0.05)
    running = start_stack(codex_home, backend, idle_timeout=IDLE_TIMEOUT)
    yield running
    running.stop()


class ErrorTrap(logging.Handler):
    """Collects every ERROR (or worse) log record, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The fake backend's access log says ERROR for the 5xx it is told to send; codexd's never does.
        if record.name != "tornado.access":
            self.records.append(record)

    def lines(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records]


@pytest.fixture
def error_trap() -> Iterator[ErrorTrap]:
    """Fails the test when anything logs at ERROR (codexd logs an unexpected exception that way)."""
    trap = ErrorTrap()
    root = logging.getLogger()
    root.addHandler(trap)
    try:
        yield trap
    finally:
        root.removeHandler(trap)
    assert not trap.records, "unexpected ERROR log lines:\n" + "\n".join(trap.lines())
