"""A bounded soak: many mixed requests against ``codexd serve``, with its memory sampled every second.

Chat, Messages and Responses, streaming and not, and clients that hang up mid-stream, 50 at a time. Every
answer must be complete, every hung-up stream must close its upstream request, nothing may stay in
flight, and the resident memory must not keep growing. ``CODEXD_SOAK_REQUESTS=20000`` runs the full soak
(about 90 s on two cores); the default 8,000 fits the test suite's time budget.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.scripts import Script, text_answer
from tests.harness import write_login
from tests.stress.rig import (
    ENDPOINTS,
    ServeProcess,
    call,
    finished_properly,
    sample_rss,
    serve_process,
    threaded_backend,
    write_config,
)

REQUESTS = int(os.environ.get("CODEXD_SOAK_REQUESTS", "8000"))
CONCURRENCY = 50
SLOW_MODEL = "gpt-5.4"  # the fake answers this model slowly (about 1 s), so hanging up lands mid-stream
GROWTH_LIMIT_KIB = 10 * 1024
GROWTH_LIMIT_RATIO = 0.15

# (endpoint, stream, hang up after the first event); one request in five hangs up.
MIX = [(kind, stream, False) for kind in ENDPOINTS for stream in (True, False)] * 2 + [
    (kind, True, True) for kind in ENDPOINTS
]


def choose(body: Any) -> Script | None:
    """The fake's answer: slow for ``SLOW_MODEL``, else the default quick one."""
    if isinstance(body, dict) and body.get("model") == SLOW_MODEL:
        return Script.events(text_answer(model=SLOW_MODEL), interval=0.05)
    return None


async def load(running: ServeProcess, total: int) -> tuple[list[str], int, float]:
    """Send ``total`` requests from the mix, ``CONCURRENCY`` at a time; returns failures, hang-ups, seconds."""
    plan = itertools.islice(itertools.cycle(MIX), total)
    failures: list[str] = []
    hung_up = 0

    async def worker() -> None:
        nonlocal hung_up
        for kind, stream, hang_up in plan:
            endpoint = ENDPOINTS[kind]
            body = {**endpoint["body"], "stream": stream}
            if hang_up:
                body["model"] = SLOW_MODEL
                answer = await call(running.port, endpoint["path"], body, hang_up_after=b"data: ")
                hung_up += 1
                if answer.status != 200 or b"data: " not in answer.body:
                    failures.append(f"{kind} hang-up: status {answer.status}")
                continue
            try:
                answer = await call(running.port, endpoint["path"], body)
            except (OSError, TimeoutError) as exc:
                failures.append(f"{kind} stream={stream}: {exc!r}")
                continue
            problem = finished_properly(kind, stream, answer)
            if problem is not None:
                failures.append(f"{kind} stream={stream}: {problem}")

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return failures, hung_up, time.monotonic() - started


def growth(samples: list[tuple[float, int]], warm_up: float) -> tuple[float, float]:
    """Median RSS (KiB) of the first and the last third of the samples taken after ``warm_up``."""
    kept = [rss for _, rss in samples[int(len(samples) * warm_up) :]]
    third = max(1, len(kept) // 3)
    return statistics.median(kept[:third]), statistics.median(kept[-third:])


@pytest.mark.slow
def test_soak_mixed_requests_and_hang_ups_keep_memory_flat(tmp_path: Path) -> None:
    home = tmp_path / "codex"
    write_login(home)
    samples: list[tuple[float, int]] = []
    with threaded_backend() as fake:
        fake.call(lambda: setattr(fake.fake.state, "chooser", choose))
        config = write_config(tmp_path / "config.toml", fake.fake)
        with serve_process(tmp_path, home, config) as running:
            stop = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(running, 1.0, stop, samples), daemon=True)
            sampler.start()
            try:
                failures, hung_up, seconds = asyncio.run(load(running, REQUESTS))
            finally:
                stop.set()
                sampler.join(5)
            deadline = time.monotonic() + 5
            while fake.fake.state.open_streams and time.monotonic() < deadline:
                time.sleep(0.05)
            in_flight = running.metric("codexd_in_flight_requests")
            served = running.metric("codexd_requests_total")
            log = running.stderr()
        closed_upstream = fake.fake.state.closed_by_client
        open_upstream = fake.fake.state.open_streams
        posts = len(fake.fake.state.posts)
    first, last = growth(samples, warm_up=0.2)
    print(
        f"\nsoak: {REQUESTS} requests in {seconds:.1f} s ({REQUESTS / seconds:.0f}/s), {hung_up} hang-ups, "
        f"{len(samples)} RSS samples, RSS first third {first / 1024:.1f} MiB, last third {last / 1024:.1f} MiB, "
        f"max {max(r for _, r in samples) / 1024:.1f} MiB"
    )
    assert failures == []
    assert posts == REQUESTS  # one upstream request each: no retries, nothing lost
    assert served >= REQUESTS
    assert in_flight == 1 and open_upstream == 0  # in flight: only the /metrics request itself
    assert closed_upstream == hung_up  # every hang-up closed its upstream stream
    assert "Traceback" not in log and " ERROR " not in log
    assert last - first < max(GROWTH_LIMIT_KIB, GROWTH_LIMIT_RATIO * first), samples
