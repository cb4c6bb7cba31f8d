"""SIGTERM while ``codexd serve`` is busy: in-flight streams finish, new connections are refused, exit 0;
streams still running at ``server.drain_timeout`` are cut short, ending with their dialect's error event,
and the process still exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.scripts import Script, text_answer
from tests.harness import write_login
from tests.stress.rig import ENDPOINTS, Answer, ServeProcess, call, serve_process, threaded_backend, write_config

STREAMS = 50
IN_BAND_ERROR = {"responses": b"event: response.failed", "chat": b'data: {"error":', "messages": b"event: error"}


def kinds_of(count: int) -> list[str]:
    """The endpoint of each of ``count`` requests, in turn."""
    return [list(ENDPOINTS)[i % len(ENDPOINTS)] for i in range(count)]


async def start_streams(running: ServeProcess, count: int) -> list[asyncio.Task[Answer]]:
    """``count`` streaming requests spread over the three endpoints."""
    return [
        asyncio.ensure_future(
            call(running.port, ENDPOINTS[kind]["path"], {**ENDPOINTS[kind]["body"], "stream": True}, timeout=60)
        )
        for kind in kinds_of(count)
    ]


async def refused(port: int) -> bool:
    """True when a new TCP connection to ``port`` is refused."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.transport.abort()
    return False


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.slow
def test_sigterm_lets_every_started_stream_finish_then_exits_0(tmp_path: Path) -> None:
    home = tmp_path / "codex"
    write_login(home)
    with threaded_backend() as fake:
        # About 2 s per answer: 18 events, 0.11 s apart.
        fake.call(lambda: setattr(fake.fake.state, "default", Script.events(text_answer(), interval=0.11)))
        config = write_config(tmp_path / "config.toml", fake.fake, drain_timeout=10)
        with serve_process(tmp_path, home, config) as running:

            async def scenario() -> tuple[list[Answer], float, float, int]:
                tasks = await start_streams(running, STREAMS)
                await wait_until(lambda: fake.fake.state.open_streams == STREAMS, 10, "every stream to start")
                signalled = time.monotonic()
                running.process.send_signal(signal.SIGTERM)
                while not await refused(running.port):
                    assert time.monotonic() - signalled < 1.5, "still accepting connections after SIGTERM"
                    await asyncio.sleep(0.02)
                refused_after = time.monotonic() - signalled
                still_streaming = fake.fake.state.open_streams
                answers = await asyncio.gather(*tasks)
                return answers, signalled, refused_after, still_streaming

            answers, signalled, refused_after, still_streaming = asyncio.run(scenario())
            status = running.process.wait(15)
            exited_after = time.monotonic() - signalled
            log = running.stderr()
    assert still_streaming > 0  # new connections were refused while the old streams were still running
    assert refused_after < 1.0
    kinds = kinds_of(STREAMS)
    cut = [kind for kind, answer in zip(kinds, answers, strict=True) if answer.status != 200 or not answer.complete]
    unfinished = [
        kind for kind, answer in zip(kinds, answers, strict=True) if ENDPOINTS[kind]["terminal"] not in answer.body
    ]
    assert cut == [] and unfinished == []
    assert status == 0, log
    assert exited_after < 10  # within the drain limit, and not waiting for it: all were done
    assert f"draining {STREAMS} in-flight request(s)" in log
    assert "Traceback" not in log and " ERROR " not in log


@pytest.mark.slow
def test_streams_running_past_the_drain_limit_are_cut_and_the_exit_is_still_0(tmp_path: Path) -> None:
    home = tmp_path / "codex"
    write_login(home)
    count = 6
    with threaded_backend() as fake:
        # About 10 s per answer, far past the 1 s drain limit.
        fake.call(lambda: setattr(fake.fake.state, "default", Script.events(text_answer(), interval=0.55)))
        config = write_config(tmp_path / "config.toml", fake.fake, drain_timeout=1)
        with serve_process(tmp_path, home, config) as running:

            async def scenario() -> tuple[list[Answer], float]:
                tasks = await start_streams(running, count)
                await wait_until(lambda: fake.fake.state.open_streams == count, 10, "every stream to start")
                signalled = time.monotonic()
                running.process.send_signal(signal.SIGTERM)
                return await asyncio.gather(*tasks), signalled

            answers, signalled = asyncio.run(scenario())
            status = running.process.wait(15)
            exited_after = time.monotonic() - signalled
            log = running.stderr()
        # The fake notices a closed connection only at its next write (its events are 0.55 s apart).
        deadline = time.monotonic() + 5
        while fake.fake.state.closed_by_client < count and time.monotonic() < deadline:
            time.sleep(0.05)
        closed_upstream = fake.fake.state.closed_by_client
    kinds = kinds_of(count)
    for kind, answer in zip(kinds, answers, strict=True):
        assert answer.status == 200  # the stream had started ...
        assert ENDPOINTS[kind]["terminal"] not in answer.body  # ... never pretends to have finished ...
        assert IN_BAND_ERROR[kind] in answer.body  # ... and says so in its own dialect before it ends
        assert b"codexd is shutting down" in answer.body  # ... naming the real reason
    assert status == 0, log
    assert 1 <= exited_after < 4
    assert "drain limit reached with 6 request(s) still running" in log
    assert "Traceback" not in log and " ERROR " not in log
    assert closed_upstream == count  # the upstream requests were closed, not left running
