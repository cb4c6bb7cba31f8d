"""Freed memory goes back to the system once codexd is idle, and only then."""

from __future__ import annotations

import asyncio
import gc
import json
import platform
import sys
import time
import tracemalloc
import weakref
from typing import Any

import pytest

from codexd import memory
from codexd.server import lifecycle


class Upstream:
    """Records what the idle trim asks of the upstream client."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def release_handles(self) -> int:
        self.calls.append("handles")
        return 3

    def close_idle(self) -> bool:
        self.calls.append("connections")
        return True

    def close_extra_connections(self) -> bool:
        self.calls.append("extra")
        return False


class State:
    """The parts of AppState the idle trim reads."""

    def __init__(self) -> None:
        self.served = 0
        self.last_done = 0.0
        self.in_flight: set[Any] = set()
        self.upstream = Upstream()


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: calls.append(1) or True)
    return calls


def test_trims_once_after_a_burst_then_waits_for_the_next(trims: list[int]) -> None:
    state = State()
    trim = lifecycle.IdleTrim(state)  # type: ignore[arg-type]
    trim()
    assert trims == [], "nothing was served: nothing to give back"
    state.served, state.last_done = 10, time.monotonic() - lifecycle.IDLE_TRIM_AFTER - 0.1
    trim()
    trim()
    assert trims == [1], "one trim per burst"
    state.served += 1
    trim()
    assert trims == [1, 1]


def test_no_trim_while_requests_run_or_right_after_one(trims: list[int]) -> None:
    state = State()
    trim = lifecycle.IdleTrim(state)  # type: ignore[arg-type]
    state.served, state.last_done = 5, time.monotonic()
    trim()
    assert trims == [], "the last request ended just now"
    state.last_done -= lifecycle.IDLE_TRIM_AFTER + 0.1
    state.in_flight.add(object())
    trim()
    assert trims == [], "a request is running"
    state.in_flight.clear()
    trim()
    assert trims == [1]


def test_idle_handles_are_closed_at_the_trim_and_connections_closed_only_once_libcurl_would_not_reuse_them(
    trims: list[int],
) -> None:
    state = State()
    trim = lifecycle.IdleTrim(state)  # type: ignore[arg-type]
    state.served, state.last_done = 4, time.monotonic() - lifecycle.IDLE_TRIM_AFTER - 0.1
    trim()
    trim()
    assert state.upstream.calls == ["handles", "extra"], "only a burst's extra connections are closed"
    state.last_done = time.monotonic() - lifecycle.CONNECTION_MAX_AGE - 0.1
    trim()
    trim()
    assert state.upstream.calls == ["handles", "extra", "connections"], "closed once, then nothing until the next burst"
    assert trims == [1, 1]
    state.served += 1
    state.in_flight.add(object())
    trim()
    assert state.upstream.calls == ["handles", "extra", "connections"], "a request is running"
    state.in_flight.clear()
    trim()
    trim()
    assert state.upstream.calls == ["handles", "extra", "connections", "handles", "extra", "connections"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_systems_can_give_memory_back() -> None:
    assert memory.release_free_memory() is True


def test_giving_memory_back_collects_garbage_cycles_first() -> None:
    """Cycles left by a burst are freed at the trim, not whenever the collector's thresholds are next reached
    (at rest, that may be never); the full collection also empties Python's free lists."""

    class Node:
        pass

    gc.disable()  # no automatic collection may free the cycle before the trim does
    try:
        node = Node()
        node.self = node  # type: ignore[attr-defined]
        alive = weakref.ref(node)
        del node
        assert alive() is not None
        memory.release_free_memory()
        assert alive() is None
    finally:
        gc.enable()


def test_the_trim_lets_go_of_attribute_names_that_the_type_cache_kept() -> None:
    """Tornado finds the handler method by a new string each request (``method.lower()``); CPython's type cache
    keeps the last name looked up in each of its slots, scattering hundreds of them over the burst's arenas."""

    class Handler:
        def post(self) -> None:
            pass

    name = "".join(["po", "st"])  # a new string object, not the interned one
    unheld = sys.getrefcount(name)
    getattr(Handler(), name)
    memory.release_free_memory()
    assert sys.getrefcount(name) == unheld, "the cache still holds the name"


def test_the_trim_frees_the_future_iterators_asyncio_kept_from_the_burst() -> None:
    """asyncio keeps up to 255 freed future iterators for reuse, made wherever the burst left room; the trim
    swaps them for new ones so that the burst's are freed."""

    def traced_here(snapshot: tracemalloc.Snapshot) -> int:
        return sum(s.count for s in snapshot.filter_traces([tracemalloc.Filter(True, __file__)]).statistics("lineno"))

    async def burst_then_trim() -> tuple[int, int]:
        future = asyncio.get_running_loop().create_future()
        iterators = [future.__await__() for _ in range(2 * memory.FUTURE_ITER_FREE_LIST)]  # each await makes one
        del iterators
        kept = traced_here(tracemalloc.take_snapshot())
        memory.release_free_memory()
        future.cancel()
        return kept, traced_here(tracemalloc.take_snapshot())

    tracemalloc.start()
    try:
        kept, after_trim = asyncio.run(burst_then_trim())
    finally:
        tracemalloc.stop()
    if kept < memory.FUTURE_ITER_FREE_LIST:
        pytest.skip("this Python keeps no free list of asyncio future iterators")
    assert after_trim < 10, "asyncio's free list still holds the burst's iterators"


def test_remembered_conversations_are_forgotten_once_clients_have_gone_quiet(trims: list[int]) -> None:
    from codexd.server.base import BODIES
    from codexd.translate.messages_request import to_responses
    from tests.unit.test_messages_request import MODELS

    messages = [{"role": "user", "content": f"Question {n}: " + "words " * 100} for n in range(8)]
    raw = json.dumps({"model": "claude-sonnet-4-5", "system": "x" * 9000, "messages": messages}).encode()

    def turn() -> tuple[Any, Any]:
        body = BODIES.parse(raw)
        return body["messages"][0], to_responses(body, models=MODELS, instructions="").body["input"][0]

    first = turn()
    state = State()
    trim = lifecycle.IdleTrim(state)  # type: ignore[arg-type]
    state.served, state.last_done = 4, time.monotonic() - lifecycle.IDLE_TRIM_AFTER - 0.1
    trim()
    assert all(a is b for a, b in zip(turn(), first, strict=True)), "kept across the short trims"
    state.last_done = time.monotonic() - lifecycle.CONNECTION_MAX_AGE - 0.1
    trim()
    assert all(a is not b for a, b in zip(turn(), first, strict=True)), "parsed and translated anew"


def test_a_conversation_no_request_brought_for_a_while_is_forgotten_while_others_run(
    trims: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from codexd.server.base import BODIES

    now = [5000.0]
    monkeypatch.setattr(BODIES, "clock", lambda: now[0])
    finished, working = (
        json.dumps({"messages": [{"role": "user", "content": f"Agent {k}: " + "words " * 2000}]}).encode()
        for k in range(2)
    )
    first = BODIES.parse(finished)["messages"][0]
    now[0] += lifecycle.CONNECTION_MAX_AGE - 10
    busy = BODIES.parse(working)["messages"][0]
    state = State()
    state.served, state.last_done, state.in_flight = 9, time.monotonic(), {object()}
    trim = lifecycle.IdleTrim(state)  # type: ignore[arg-type]
    trim()
    assert BODIES.parse(finished)["messages"][0] is first, "brought within the last 118 s: kept"
    now[0] += lifecycle.CONNECTION_MAX_AGE + 1
    BODIES.parse(working)
    trim()
    assert BODIES.parse(working)["messages"][0] is busy
    assert BODIES.parse(finished)["messages"][0] is not first, "forgotten, though requests were running"
    assert trims == [], "nothing given back while requests run"
