"""What codexd holds for upstream requests: curl handles only as many as requests need, none of them once
idle, and after a longer idle no upstream connections either."""

from __future__ import annotations

import asyncio
import ctypes
import platform

import pytest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from tests.fakes.scripts import Builder, Script
from tests.handlers.client import post_json, stream_sse
from tests.harness import start_stack
from tests.reliability.wire import wait_for

pytestmark = pytest.mark.gen_test(timeout=30)

BURST = 32


MALLINFO2 = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2]


def malloc_in_use() -> int:
    """Bytes glibc's malloc has handed out and not had back (mallinfo2, glibc 2.33 and later)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


async def burst(stack, n: int = BURST) -> None:
    """``n`` streamed requests open at the same time, each with a 64 KiB body, all read to the end."""
    for _ in range(n):
        stack.backend.state.push(Script.events(Builder().start().text("x" * 40).completed(), interval=0.02))
    client = SimpleAsyncHTTPClient(force_instance=True, max_clients=n)
    body = {"input": "y" * 65536, "stream": True}
    reads = await asyncio.gather(*(stream_sse(f"{stack.url}/v1/responses", body, client=client) for _ in range(n)))
    client.close()
    assert [r.code for r in reads] == [200] * n
    assert all(r.json()[-1]["type"] == "response.completed" for r in reads)


async def test_closing_idle_handles_keeps_the_warm_connections(stack):
    await burst(stack)
    connections = stack.backend.state.connections
    assert stack.state.upstream.release_handles() == BURST, "every stream of the burst had its own handle"
    assert stack.state.upstream.release_handles() == 0, "nothing was made since"
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 200
    assert stack.backend.state.connections == connections, "the next request reused a cached connection"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="reads glibc's mallinfo2")
async def test_closing_idle_handles_frees_their_buffers(stack):
    await burst(stack)
    before = malloc_in_use()
    stack.state.upstream.release_handles()
    freed = before - malloc_in_use()
    # Each used handle holds its buffers until it is closed: its 16 KiB upload buffer and more with libcurl 8
    # (the pycurl wheel's), about 9 KiB in all with libcurl 7.88 (a pycurl built on Debian 12's).
    assert freed >= BURST * 8 * 1024, f"only {freed} bytes freed"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="reads glibc's mallinfo2")
async def test_handles_are_made_as_requests_need_them(backend, codex_home):
    """A high ``max_clients`` costs nothing until streams use it (a curl handle is about 6.8 KiB)."""
    stack = start_stack(codex_home, backend, max_clients=4000)
    try:
        before = malloc_in_use()
        resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
        grown = malloc_in_use() - before
        assert resp.code == 200
        assert grown < 4 << 20, f"the first request took {grown} bytes"
    finally:
        stack.stop()


async def test_closing_idle_connections_spares_a_running_stream(stack):
    stack.backend.state.push(Script.events(Builder().start().text("z" * 60).completed(), interval=0.05))
    reading = asyncio.ensure_future(stream_sse(f"{stack.url}/v1/responses", {"input": "x", "stream": True}))
    await wait_for(lambda: stack.backend.state.open_streams == 1, 5, "the stream to start")
    stack.state.upstream.close_idle()
    read = await reading
    assert read.json()[-1]["type"] == "response.completed"
    assert "".join(e["delta"] for e in read.json() if e["type"] == "response.output_text.delta") == "z" * 60


async def test_after_closing_idle_connections_the_next_request_opens_a_new_one(stack):
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 200
    connections = stack.backend.state.connections
    assert stack.state.upstream.close_idle() is True
    assert stack.state.upstream.close_idle() is False, "nothing left to close"
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi again"})
    assert resp.code == 200
    assert stack.backend.state.connections == connections + 1
