"""The measurements, one coroutine per phase; each returns a JSON-ready dict."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from tornado.httpclient import HTTPRequest

from bench.client import Result, Target, make_client, percentile, run_many, stream, summary
from bench.procs import cpu_seconds, rss_kib


@dataclass
class Ctx:
    """What every phase needs: the targets, the fake's control URL, codexd's pid."""

    targets: dict[str, Target]  # "direct", "chat", "responses", "messages" (when wired)
    fake_url: str
    ca: str
    pid: int
    floors: dict[str, tuple[Target, int]] = field(default_factory=dict)  # stand-in proxies: target, pid
    first_delay: float = 0.0  # seconds the fake waits before the first event of a TTFT answer


async def set_mode(
    ctx: Ctx,
    deltas: int,
    interval: float = 0.0,
    reasoning: bool = False,
    model: str = "",
    echo: dict[str, Any] | None = None,
    first_delay: float = 0.0,
    tool: bool = False,
) -> int:
    """Tell the fake what to answer (to requests for ``model`` only, if given; with ``echo``, instructions and
    tools its response objects carry; ``first_delay`` s before the first event; with ``tool``, a tool call's
    argument deltas instead of text deltas); the events per answer."""
    client = make_client(1)
    spec = {
        "deltas": deltas,
        "interval": interval,
        "first_delay": first_delay,
        "reasoning": reasoning,
        "model": model,
        "tool": tool,
    }
    body = json.dumps({**spec, "echo": echo} if echo else spec)
    answer = await client.fetch(HTTPRequest(f"{ctx.fake_url}/bench/mode", method="POST", body=body, ca_certs=ctx.ca))
    client.close()
    return int(json.loads(answer.body)["events"])


def _ms(values: list[float | None], q: float) -> float:
    return round(percentile([v * 1000 for v in values if v is not None], q), 3)


def _ttft_ms(results: list[Result]) -> tuple[float, float]:
    """p50 and p99 of the results' time to first token, in ms."""
    return _ms([r.ttft for r in results], 0.5), _ms([r.ttft for r in results], 0.99)


BACKGROUND_MODEL = "bench-background"


async def _background(ctx: Ctx, streams: int) -> Callable[[], Awaitable[None]]:
    """``streams`` paced chat streams through codexd (an event every 20 ms, about 2 s each), restarted as
    they end; awaiting the returned function lets the running ones finish and stops them."""
    await set_mode(ctx, deltas=100, interval=0.02, model=BACKGROUND_MODEL)
    chat = ctx.targets["chat"]
    body = json.loads(chat.body)
    target = Target("background", chat.url, json.dumps({**body, "model": BACKGROUND_MODEL}).encode(), chat.marker)
    client = make_client(streams)
    running = [True]

    async def keep() -> None:
        while running[0]:
            await stream(client, target)

    tasks = [asyncio.ensure_future(keep()) for _ in range(streams)]
    await asyncio.sleep(1.0)

    async def stop() -> None:
        running[0] = False
        await asyncio.gather(*tasks)
        client.close()

    return stop


async def ttft(
    ctx: Ctx,
    name: str,
    n: int,
    concurrency: int,
    background: int = 0,
    direct_name: str = "direct",
    echo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """TTFT via codexd (first content delta) minus direct (first output_text.delta), p50 and p99.

    ``concurrency`` > 1 is a closed loop (saturation: the numbers include queueing); ``background``
    keeps that many paced streams open through codexd while sequential requests are measured. ``echo``
    goes to the fake (see ``set_mode``); ``direct_name`` is the target that reaches the fake directly.
    """
    await set_mode(ctx, deltas=8, reasoning=True, echo=echo, first_delay=ctx.first_delay)
    stop_background = await _background(ctx, background) if background else None
    client = make_client(max(concurrency, 2))
    direct, via = ctx.targets[direct_name], ctx.targets[name]
    await run_many(2 * concurrency, concurrency, lambda: stream(client, direct))  # warm the connections
    await run_many(2 * concurrency, concurrency, lambda: stream(client, via))
    d_res: list[Result] = []
    c_res: list[Result] = []
    if concurrency == 1:  # alternate, so any drift of the machine hits both sides alike
        for _ in range(n):
            d_res.append(await stream(client, direct))
            c_res.append(await stream(client, via))
    else:
        d_res, _ = await run_many(n, concurrency, lambda: stream(client, direct))
        c_res, _ = await run_many(n, concurrency, lambda: stream(client, via))
    client.close()
    if stop_background is not None:
        await stop_background()
    d50, d99 = _ttft_ms(d_res)
    c50, c99 = _ttft_ms(c_res)
    return {
        "endpoint": name,
        "concurrency": concurrency,
        "background_streams": background,
        "requests": n,
        "direct_p50_ms": d50,
        "direct_p99_ms": d99,
        "codexd_p50_ms": c50,
        "codexd_p99_ms": c99,
        "overhead_p50_ms": round(c50 - d50, 3),
        "overhead_p99_ms": round(c99 - d99, 3),
        "header_overhead_p50_ms": _ms(
            [r.overhead_ms / 1000 if r.overhead_ms is not None else None for r in c_res], 0.5
        ),
        "header_overhead_p99_ms": _ms(
            [r.overhead_ms / 1000 if r.overhead_ms is not None else None for r in c_res], 0.99
        ),
        "direct": summary(d_res),
        "codexd": summary(c_res),
    }


async def floors(ctx: Ctx, n: int) -> dict[str, Any]:
    """Lone chat TTFT through codexd beside the same answer through each stand-in proxy (``bench.floors``), all
    against the direct path, one request each in turn: what any hop, and codexd's stack doing nothing, add on
    this machine. CPU per request of each proxy process too (the whole answer, not only its first token)."""
    await set_mode(ctx, deltas=8, reasoning=True, first_delay=ctx.first_delay)
    paths: dict[str, tuple[Target, int | None]] = {
        "direct": (ctx.targets["direct"], None),
        **ctx.floors,
        "codexd (chat)": (ctx.targets["chat"], ctx.pid),
    }
    client = make_client(2)
    for _ in range(10):  # warm every connection
        for target, _ in paths.values():
            await stream(client, target)
    results: dict[str, list[Result]] = {name: [] for name in paths}
    cpu0 = {name: cpu_seconds(pid) for name, (_, pid) in paths.items() if pid is not None}
    for _ in range(n):
        for name, (target, _) in paths.items():
            results[name].append(await stream(client, target))
    cpu = {name: cpu_seconds(paths[name][1] or 0) - start for name, start in cpu0.items()}
    client.close()
    d50, d99 = _ttft_ms(results["direct"])
    rows = []
    for name, res in results.items():
        if name == "direct":
            continue
        p50, p99 = _ttft_ms(res)
        rows.append(
            {
                "path": name,
                "p50_ms": p50,
                "p99_ms": p99,
                "overhead_p50_ms": round(p50 - d50, 3),
                "overhead_p99_ms": round(p99 - d99, 3),
                "cpu_ms_per_request": round(cpu[name] * 1000 / n, 3),
                "errors": summary(res)["errors"],
            }
        )
    return {"requests": n, "direct_p50_ms": d50, "direct_p99_ms": d99, "rows": rows}


# What marks a delta of a tool-call answer: the fake's argument deltas, and what codexd makes of them (Chat
# Completions streams the arguments; Messages sends a tool's input whole, in one input_json_delta).
TOOL_MARKERS = {
    "direct": b"event: response.function_call_arguments.delta",
    "chat": b'"function":{"arguments":"',
    "messages": b'"input_json_delta"',
}


class _Run(NamedTuple):
    """One run of a throughput row's codexd side."""

    rate: float  # translated events per CPU second; infinite when too short for the CPU clock's 10 ms ticks
    results: list[Result]
    wall: float
    cpu: float


async def throughput(
    ctx: Ctx,
    name: str,
    clients: int,
    rounds: int,
    deltas: int,
    interval: float = 0.0,
    tool: bool = False,
    repeats: int = 1,
) -> dict[str, Any]:
    """Deltas/s to ``clients`` concurrent streams and codexd CPU per 10k events, the fake sending its events
    ``interval`` s apart (0: as fast as it can, so that one upstream read brings several); with ``tool``, the
    answer is one tool call whose arguments come in ``deltas`` deltas. codexd's side runs ``repeats`` times and
    the row is the run with the median events per CPU second (``events_per_cpu_s_runs`` has every run's, and
    ``codexd`` counts the errors of all of them): a run is a second or two of CPU, which a busy moment of a
    shared machine moves by up to 2x."""
    events = await set_mode(ctx, deltas=deltas, interval=interval, tool=tool)
    client = make_client(clients)
    n = clients * rounds
    direct, via = ctx.targets["direct"], ctx.targets[name]
    if tool:
        direct, via = replace(direct, marker=TOOL_MARKERS["direct"]), replace(via, marker=TOOL_MARKERS[name])
    direct_res, direct_wall = await run_many(n, clients, lambda: stream(client, direct))
    # A run too short for the CPU clock's ticks (quick runs) counts as the fastest; it reports no rate.
    runs: list[_Run] = []
    for _ in range(repeats):
        cpu0 = cpu_seconds(ctx.pid)
        res, wall = await run_many(n, clients, lambda: stream(client, via))
        cpu = cpu_seconds(ctx.pid) - cpu0
        translated = sum(r.error is None for r in res) * events
        runs.append(_Run(translated / cpu if cpu else math.inf, res, wall, cpu))
    client.close()
    runs.sort(key=lambda run: run.rate)
    rate, res, wall, cpu = runs[(len(runs) - 1) // 2]
    ok = [r for r in res if r.error is None]
    translated = len(ok) * events
    return {
        "endpoint": name,
        "answer": "tool call" if tool else "text",
        "clients": clients,
        "upstream_interval_s": interval,
        # from the first delta to the end of the answer, as the client saw it: how spread out the events came
        "after_first_delta_p50_ms": _ms([r.total - r.ttft if r.ttft is not None else None for r in ok], 0.5),
        "streams": n,
        "upstream_events_per_stream": events,
        "deltas_received": sum(r.deltas for r in ok),
        "wall_s": round(wall, 3),
        "deltas_per_s": round(sum(r.deltas for r in ok) / wall, 1),
        "direct_deltas_per_s": round(sum(r.deltas for r in direct_res) / direct_wall, 1),
        "codexd_cpu_s": round(cpu, 3),
        "translated_events": translated,
        "cpu_s_per_10k_events": round(cpu / translated * 10_000, 4) if translated else None,
        "events_per_cpu_s": round(rate, 1) if cpu else None,
        "events_per_cpu_s_runs": [round(run.rate, 1) if run.cpu else None for run in runs],
        "codexd": summary([r for run in runs for r in run.results]),
    }


async def concurrency(ctx: Ctx, streams: int, deltas: int, interval: float, deadline: float) -> dict[str, Any]:
    """``streams`` open chat streams on a slow upstream: all progress (>= 2 frames), RSS per stream."""
    await set_mode(ctx, deltas=deltas, interval=interval)
    await asyncio.sleep(0.5)
    rss0 = rss_kib(ctx.pid)
    client = make_client(streams)
    progressed: set[int] = set()

    def on_frames(res: Result) -> None:
        if res.frames >= 2:
            progressed.add(id(res))

    t0 = time.perf_counter()
    timeout = deadline + (deltas + 10) * interval
    tasks = [asyncio.ensure_future(stream(client, ctx.targets["chat"], timeout, on_frames)) for _ in range(streams)]
    peak = rss_at_all = rss0
    all_at = None
    while time.perf_counter() - t0 < deadline:
        peak = max(peak, rss_kib(ctx.pid))
        if len(progressed) >= streams:
            all_at = time.perf_counter() - t0
            rss_at_all = rss_kib(ctx.pid)
            break
        await asyncio.sleep(0.1)
    progressed_at_deadline = len(progressed)
    results = await asyncio.gather(*tasks)
    client.close()
    seconds = [r.t_second for r in results if r.t_second is not None]
    return {
        "streams": streams,
        "upstream_interval_s": interval,
        "deadline_s": deadline,
        "progressed": progressed_at_deadline,
        "starved": streams - progressed_at_deadline,
        "all_progressed_after_s": round(all_at, 3) if all_at else None,
        "second_frame_p50_s": round(percentile(seconds, 0.5), 3),
        "second_frame_max_s": round(max(seconds), 3) if seconds else None,
        "rss_before_kib": rss0,
        "rss_all_open_kib": rss_at_all,
        "rss_peak_kib": peak,
        "rss_per_stream_kib": round((max(rss_at_all, peak) - rss0) / streams, 2),
        "completed": summary(list(results)),
    }


IDLE_SETTLE = 5.0  # seconds: codexd gives freed memory back after 2 s without requests (checked every 2 s)


async def churn(ctx: Ctx, n: int, concurrency: int) -> dict[str, Any]:
    """``n`` short chat requests, then the idle RSS once codexd had time to give freed memory back."""
    await set_mode(ctx, deltas=8, reasoning=True)
    client = make_client(concurrency)
    res, wall = await run_many(n, concurrency, lambda: stream(client, ctx.targets["chat"]))
    client.close()
    await asyncio.sleep(IDLE_SETTLE)
    return {
        "requests": n,
        "concurrency": concurrency,
        "wall_s": round(wall, 3),
        "requests_per_s": round(n / wall, 1),
        "rss_after_kib": rss_kib(ctx.pid),
        "codexd": summary(res),
    }


async def rest(ctx: Ctx, seconds: float, probe: bool = False) -> dict[str, Any]:
    """The idle RSS once codexd has had no request for ``seconds`` (long enough to close its idle upstream
    connections, which libcurl would not reuse after ``CONNECTION_MAX_AGE``). With ``probe``, then the TTFT of
    two chat requests one after the other: the first one's upstream connection is new, and so is the curl
    client if codexd closed it (a TLS session resumed, the CAs loaded again); the second one's is warm."""
    await asyncio.sleep(seconds)
    out: dict[str, Any] = {"idle_s": seconds, "rss_kib": rss_kib(ctx.pid)}
    if probe:
        await set_mode(ctx, deltas=8)
        client = make_client(1)
        first, second = [await stream(client, ctx.targets["chat"]) for _ in range(2)]
        client.close()
        out["next_requests_ttft_ms"] = [_ms([first.ttft], 0.5), _ms([second.ttft], 0.5)]
    return out
