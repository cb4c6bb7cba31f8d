"""Clients that go away mid-stream: the upstream request closes at once (also while the upstream is
silent), the in-flight gauge returns to where it was, and a thousand of them leak no task and no fd."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time

import pytest

from tests.fakes.scripts import Builder, Script
from tests.handlers.client import get
from tests.harness import Stack
from tests.reliability.wire import STREAMING, Endpoint, wait_for

LONG = "x" * 800  # 200 deltas


def streaming(interval: float = 0.05) -> Script:
    return Script.events(Builder().start().text(LONG).completed(), interval=interval)


def stalled() -> Script:
    return Script.events(Builder().start().text(LONG).completed()).then_stall(5, 30.0)


async def abandon(port: int, endpoint: Endpoint, text: str = "hi", until: bytes = b"data:") -> None:
    """Send a streaming request on a raw socket, read until ``until`` arrived, then close the socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        raw = json.dumps(endpoint.body(True, text)).encode()
        head = (
            f"POST {endpoint.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
        )
        writer.write(head.encode() + raw)
        await writer.drain()
        got = b""
        while until not in got:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, f"codexd closed the connection first: {got[:300]!r}"
            got += chunk
        assert got.startswith(b"HTTP/1.1 200"), got[:300]
    finally:
        writer.close()
        await writer.wait_closed()


async def in_flight_gauge(stack: Stack) -> float:
    metrics = (await get(stack.url + "/metrics")).body.decode()
    match = re.search(r"^codexd_in_flight_requests (\S+)$", metrics, re.M)
    assert match, "codexd_in_flight_requests is missing from /metrics"
    return float(match.group(1)) - 1  # the /metrics request itself is in flight while it answers


async def quiet(stack: Stack, limit: float = 5) -> None:
    """Wait until nothing runs: no request in codexd, no upstream stream on either side."""
    await wait_for(lambda: not stack.state.in_flight, limit, "no request in flight")
    await wait_for(lambda: not stack.state.upstream.live, limit, "no live upstream request")
    await wait_for(lambda: stack.backend.state.open_streams == 0, limit, "no open stream at the fake")


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("upstream", ["streaming", "stalled"])
@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_disconnect_closes_the_upstream_within_a_second(stack, error_trap, endpoint, upstream):
    baseline = await in_flight_gauge(stack)
    stack.backend.state.push(streaming() if upstream == "streaming" else stalled())
    await abandon(stack.port, endpoint)
    took = await wait_for(lambda: stack.backend.state.open_streams == 0, 1.0, "the upstream stream closed")
    assert took < 1.0
    assert stack.backend.state.closed_by_client == 1
    await quiet(stack)
    assert await in_flight_gauge(stack) == baseline
    metrics = (await get(stack.url + "/metrics")).body.decode()
    assert f'codexd_requests_total{{endpoint="{endpoint.route}",status="499"}}' in metrics


@pytest.mark.gen_test(timeout=120)
async def test_a_thousand_disconnects_leak_no_task_and_no_fd(stack, error_trap):
    stack.backend.state.default = streaming(0.02)
    stall = stalled()
    stack.backend.state.chooser = lambda body: stall if "stall" in json.dumps(body) else None

    async def worker(n: int, offset: int) -> None:
        for i in range(offset, offset + n):
            await abandon(stack.port, STREAMING[i % 3], "stall" if i % 2 else "go")

    async def run(total: int, concurrency: int = 20) -> None:
        each = total // concurrency
        await asyncio.gather(*(worker(each, k * each) for k in range(concurrency)))
        await quiet(stack)

    await run(40)  # warm up: curl handles, logging, metrics label children
    await asyncio.sleep(0.2)
    fds, tasks = len(os.listdir("/proc/self/fd")), len(asyncio.all_tasks())
    baseline = await in_flight_gauge(stack)
    t0 = time.monotonic()
    await run(1000)
    took = time.monotonic() - t0
    await asyncio.sleep(0.2)
    assert took < 60, f"1,000 disconnects took {took:.1f} s"
    assert stack.backend.state.closed_by_client >= 1000
    assert len(os.listdir("/proc/self/fd")) <= fds + 8
    assert len(asyncio.all_tasks()) <= tasks + 3
    assert await in_flight_gauge(stack) == baseline
