"""``python -m bench``: start the fake backend (HTTPS, private CA) and codexd as subprocesses, measure
codexd against the fake reached directly in the same run, print a table with the issue's targets and
write JSON (``--json``, default /tmp/codexd-bench.json).

Phases: start-up and ``--version`` time, idle RSS; TTFT overhead (sequential and 32 concurrent; the same
answer through two stand-in proxies that do no work, ``bench.floors``); many requests 32 at a time,
then idle RSS; streaming throughput and CPU per 10k translated events (32 and 256 clients), then idle RSS;
N open slow streams (progress and RSS per stream); (full runs) idle RSS two minutes after the last request;
last, TTFT overhead with a Claude Code-sized Messages request, ``claude_code_body``, with two turns of a
conversation in alternation, 80 KB and 640 KB, and with that session's and three sub-agents' turns in turn,
then idle RSS with their conversations kept.
``--pin`` gives codexd a CPU of its own, away from the fake and the load generator.
``--profile OUT`` instead runs codexd under cProfile for the throughput phase only and prints its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import floors, phases
from bench.client import CHAT_MARKER, MESSAGES_MARKER, Target, bodies, claude_code_body, make_client
from bench.procs import (
    DIRECT_HEADERS,
    allocator_of,
    command_time,
    pin_cpus,
    precompile,
    raise_fd_limit,
    rss_kib,
    start_codexd,
    start_fake,
    start_printing_port,
    system_trust,
    write_config,
)
from bench.report import print_report, profile_top, targets
from codexd.server.lifecycle import IDLE_TRIM_AFTER
from codexd.upstream.client import CONNECTION_MAX_AGE
from tests.fakes.tls import tls_files


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shrinks every count."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small counts (< 60 s)")
    p.add_argument("--requests", type=int, help="TTFT requests per variant (default 200; quick 40)")
    p.add_argument("--streams", type=int, help="open slow streams (default 1000; quick 50)")
    p.add_argument("--churn", type=int, help="requests before the second idle RSS (default 10000; quick 300)")
    p.add_argument("--deltas", type=int, help="deltas per stream in the throughput phase (default 200; quick 50)")
    p.add_argument("--background", type=int, help="paced streams open during TTFT (default 32; quick 4)")
    p.add_argument(
        "--first-delay",
        type=float,
        default=0.0,
        help="seconds the fake waits after the headers before the first event of a TTFT answer (default 0)",
    )
    p.add_argument("--http2", action="store_true", help="the fake backend speaks HTTP/2, as chatgpt.com does")
    p.add_argument(
        "--system-cas",
        choices=("file", "dir"),
        help="codexd trusts the fake's CA among a copy of the system's CAs, as one bundle (file) or a directory "
        "named by hash (dir, codexd's default where /etc/ssl/certs is one); default: the fake's CA alone",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="codexd and the stand-in proxies on a CPU of their own, the fake and the load generator on the others",
    )
    p.add_argument("--json", type=Path, default=Path("/tmp/codexd-bench.json"), help="where to write results")
    p.add_argument("--profile", type=Path, help="run codexd under cProfile (throughput phase only), dump here")
    args = p.parse_args(argv)
    q = args.quick
    args.requests = args.requests or (40 if q else 200)
    args.streams = args.streams or (50 if q else 1000)
    args.churn = args.churn if args.churn is not None else (300 if q else 10_000)
    args.background = args.background or (4 if q else 32)
    args.deltas = args.deltas or (50 if q else 200)
    return args


async def probe_messages(url: str) -> bool:
    """Whether codexd serves /v1/messages yet (404 means the route is not wired)."""
    client = make_client(1)
    answer = await client.fetch(
        f"{url}/v1/messages",
        method="POST",
        body=bodies()["messages"],
        headers={"Content-Type": "application/json"},
        raise_error=False,
    )
    client.close()
    return answer.code == 200


async def measure(args: argparse.Namespace, ctx: phases.Ctx, out: dict[str, Any]) -> None:
    """Every phase in turn, filling ``out``."""
    names = ["chat"] + (["messages"] if "messages" in ctx.targets else [])
    rounds = 1 if args.quick else 4
    if args.profile:
        out["throughput"] = [await phases.throughput(ctx, "chat", 32, rounds, args.deltas)]
        return
    out["rss_timeline"] = [("start", rss_kib(ctx.pid))]
    out["ttft"] = []
    for name in [*names, "responses"]:
        out["ttft"].append(await phases.ttft(ctx, name, args.requests, 1))
        out["ttft"].append(await phases.ttft(ctx, name, args.requests, 1, background=args.background))
        out["ttft"].append(await phases.ttft(ctx, name, args.requests, min(32, args.requests)))
    out["floors"] = await phases.floors(ctx, args.requests)
    out["rss_timeline"].append(("ttft", rss_kib(ctx.pid)))
    # Requests 32 at a time before any larger burst: this RSS shows what requests leave behind, not the
    # high-water mark of the bursts that follow (which get their own rows).
    out["churn"] = await phases.churn(ctx, args.churn, 32)
    out["rss_timeline"].append(("churn", rss_kib(ctx.pid)))
    out["throughput"] = []
    for name in names:
        for clients in (4, 32) if args.quick else (32, 256):
            out["throughput"].append(
                await phases.throughput(
                    ctx, name, clients, rounds if clients <= 32 else 1, args.deltas, repeats=TARGET_REPEATS
                )
            )
    for name in names:  # an answer that is one tool call (a file written): argument deltas instead of text
        out["throughput"].append(
            await phases.throughput(ctx, name, 32, rounds, args.deltas, tool=True, repeats=TARGET_REPEATS)
        )
    for name in names:  # as a model's tokens come: each event its own upstream read, and its own write
        out["throughput"].append(await phases.throughput(ctx, name, 32, 1 if args.quick else 2, args.deltas, PACED))
    out["rss_timeline"].append(("throughput", rss_kib(ctx.pid)))
    out["after_bursts"] = await phases.rest(ctx, phases.IDLE_SETTLE)
    out["rss_timeline"].append(("throughput, idle", out["after_bursts"]["rss_kib"]))
    slow_deltas = 4 if args.quick else 8
    out["concurrency"] = await phases.concurrency(ctx, args.streams, slow_deltas, 0.5, 20.0 if args.quick else 30.0)
    await asyncio.sleep(1.0)
    out["rss_timeline"].append(("concurrency", rss_kib(ctx.pid)))
    if not args.quick:
        out["rest"] = await phases.rest(ctx, CONNECTION_MAX_AGE + 2 * IDLE_TRIM_AFTER + 1.0, probe=True)
        out["rss_timeline"].append(("rest", out["rest"]["rss_kib"]))
    # The Claude Code-sized rows come last: codexd keeps the conversations they send for the next turn (by design,
    # until 118 s without requests), which would count in every idle reading after them. What that costs is
    # read here instead.
    before = rss_kib(ctx.pid)
    for name, direct_name in LARGE_ROWS.items():
        if name in ctx.targets:
            echo = echo_of(ctx.targets[direct_name])
            out["ttft"].append(await phases.ttft(ctx, name, args.requests, 1, direct_name=direct_name, echo=echo))
    if any(name in ctx.targets for name in LARGE_ROWS):
        await asyncio.sleep(phases.IDLE_SETTLE)  # the idle trim has run (it checks every 2 s)
        out["conversations_kept"] = {"rss_before_kib": before, "rss_after_kib": rss_kib(ctx.pid)}
        out["rss_timeline"].append(("Claude Code-sized rows, idle", out["conversations_kept"]["rss_after_kib"]))


PACED = 0.002  # seconds between the fake's events in the paced throughput rows
TARGET_REPEATS = 3  # runs of each throughput row the events target is checked on; the row is the median run
LARGE = "messages 80 KB"  # a Claude Code-sized request (``claude_code_body``), the same every time
LARGE_DIRECT = "direct 80 KB"
TURNS = "messages 80 KB, turns"  # two turns of such a conversation in alternation (``conversation_turns``)
TURNS_DIRECT = "direct 80 KB, turns"
SESSION = "messages 640 KB, turns"  # the same, late in a long session: 250 tool calls
SESSION_DIRECT = "direct 640 KB, turns"
SESSION_CALLS = 250
# The same main conversation with three sub-agents of Claude Code's working at once (their own prompts, tools
# and conversations, 200-290 KB), each sending its next turn in turn.
AGENTS = "messages 640 KB + 3 sub-agents, turns"
AGENTS_DIRECT = "direct 640 KB + 3 sub-agents, turns"
SUB_AGENT_CALLS = (60, 80, 100, 70, 90, 50, 110)  # tool calls in each sub-agent's conversation
SUB_AGENTS = 3  # of them in the row (``python -m bench.ab --sub-agents`` takes more)
LARGE_ROWS = {LARGE: LARGE_DIRECT, TURNS: TURNS_DIRECT, SESSION: SESSION_DIRECT, AGENTS: AGENTS_DIRECT}


def large_targets(codexd_url: str, direct: Target, sub_agents: int = SUB_AGENTS) -> dict[str, Target]:
    """The Claude Code-sized Messages request through codexd, and the body codexd makes of it sent directly;
    the same for two turns of a conversation sent in alternation, early (80 KB) and late (640 KB) in a session,
    and for that late session's turns with those of ``sub_agents`` sub-agents in between."""
    body = claude_code_body()
    return {
        LARGE: Target(LARGE, f"{codexd_url}/v1/messages", json.dumps(body).encode(), MESSAGES_MARKER),
        LARGE_DIRECT: direct_of(LARGE_DIRECT, direct, [body]),
        **turn_targets(TURNS, TURNS_DIRECT, f"{codexd_url}/v1/messages", direct, conversation_turns()),
        **turn_targets(SESSION, SESSION_DIRECT, f"{codexd_url}/v1/messages", direct, conversation_turns(SESSION_CALLS)),
        **turn_targets(AGENTS, AGENTS_DIRECT, f"{codexd_url}/v1/messages", direct, agents_turns(sub_agents)),
    }


def turn_targets(
    name: str, direct_name: str, url: str, direct: Target, turns: list[dict[str, Any]], chat: bool = False
) -> dict[str, Target]:
    """``turns`` (Messages requests, or Chat Completions ones when ``chat``) sent to ``url`` one a request in
    turn, and the bodies codexd makes of them sent directly in the same order."""
    texts = [json.dumps(turn).encode() for turn in turns]
    marker = CHAT_MARKER if chat else MESSAGES_MARKER
    return {
        name: Target(name, url, texts[0], marker, turns=itertools.cycle(texts)),
        direct_name: direct_of(direct_name, direct, turns, chat),
    }


def echo_of(direct: Target) -> dict[str, Any]:
    """The instructions and tools the backend echoes in its response objects for ``direct``'s body."""
    upstream = json.loads(direct.body)
    return {"instructions": upstream["instructions"], "tools": upstream["tools"]}


def conversation_turns(calls: int = 13, seed: int = 1) -> list[dict[str, Any]]:
    """Two turns of a Claude Code conversation, about 80 KB with 13 ``calls`` (640 KB with 250): the second has
    one more tool call and its result, and Claude Code's cache mark moves to its last message. Sent in
    alternation, each request finds the other's messages remembered but one to three (a real session's next turn
    brings two or three new ones). Another ``seed``, another agent: its own prompt, tools and conversation."""
    longer = claude_code_body(turns=calls, seed=seed)
    shorter = {**longer, "messages": longer["messages"][:-2]}
    turns = json.loads(json.dumps([shorter, longer]))  # copies: each gets its own mark
    for turn in turns:
        turn["messages"][-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    return turns


def agents_turns(sub_agents: int = SUB_AGENTS) -> list[dict[str, Any]]:
    """The 640 KB session's two turns and those of ``sub_agents`` sub-agents (``SUB_AGENT_CALLS``), each with
    its own prompt and tools: each agent's first turn in turn, then each one's second."""
    calls = SUB_AGENT_CALLS[:sub_agents]
    agents = [conversation_turns(SESSION_CALLS), *(conversation_turns(c, 2 + n) for n, c in enumerate(calls))]
    return [turns[k] for k in range(2) for turns in agents]


def direct_target(fake_url: str, token: str, ca: Path) -> Target:
    """The one-line request sent straight to the fake backend at ``fake_url``, as codexd would send it."""
    return Target(
        "direct",
        f"{fake_url}/backend-api/codex/responses",
        bodies()["direct"],
        b"event: response.output_text.delta",
        {"Authorization": f"Bearer {token}", **DIRECT_HEADERS},
        str(ca),
    )


def direct_of(name: str, direct: Target, bodies: list[dict[str, Any]], chat: bool = False) -> Target:
    """The upstream body codexd makes of each of ``bodies`` (Messages requests, or Chat Completions ones when
    ``chat``), sent straight to the fake, one a request in turn."""
    from codexd.models import ModelMap
    from codexd.settings import Settings
    from codexd.translate import chat_request, messages_request

    defaults = Settings()
    models = ModelMap(defaults.default_model, defaults.small_model, defaults.aliases)
    common: dict[str, Any] = {
        "models": models,
        "instructions": defaults.instructions,
        "default_effort": defaults.reasoning_effort,
    }

    def upstream_of(body: dict[str, Any]) -> dict[str, Any]:
        if chat:
            return chat_request.to_responses(body, **common).upstream
        return messages_request.to_responses(body, session_id=None, **common).body

    upstream = [json.dumps(upstream_of(json.loads(json.dumps(body)))).encode() for body in bodies]
    turns = itertools.cycle(upstream) if len(upstream) > 1 else None
    return Target(name, direct.url, upstream[0], direct.marker, direct.headers, direct.ca_certs, turns)


def start_floors(direct: Target, fake_port: int, started: list[Any]) -> dict[str, tuple[Target, int]]:
    """The stand-in proxies of ``bench.floors`` in front of the fake, as targets for the direct body (each
    process goes into ``started``)."""
    relay, relay_port = start_printing_port(["bench.floors", "relay", "--upstream-port", str(fake_port)])
    started.append(relay)
    assert direct.ca_certs is not None
    bare, bare_port = start_printing_port(
        ["bench.floors", "passthrough", "--upstream", direct.url, "--ca", direct.ca_certs],
        {floors.HEADERS_ENV: json.dumps(direct.headers)},
    )
    started.append(bare)
    path = direct.url.split("/", 3)[3]
    return {
        "byte relay": (
            Target(
                "relay",
                f"https://127.0.0.1:{relay_port}/{path}",
                direct.body,
                direct.marker,
                direct.headers,
                direct.ca_certs,
            ),
            relay.pid,
        ),
        "Tornado + curl pass-through": (
            Target("pass-through", f"http://127.0.0.1:{bare_port}/", direct.body, direct.marker),
            bare.pid,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every phase ran (targets missed do not fail the run)."""
    args = parse(argv)
    fd_limit = raise_fd_limit()
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="codexd-bench-") as tmp:
        folder = Path(tmp)
        ca, cert, key = tls_files(folder)
        precompile()
        fake, fake_port = start_fake(cert, key, args.http2)
        trust = system_trust(folder, ca, args.system_cas) if args.system_cas else ca
        config, home, token = write_config(folder, fake_port, trust, max_clients=max(256, args.streams + 64))
        codexd = None
        helpers = [fake]
        try:
            startups = []
            for _ in range(1 if args.quick or args.profile else 3):
                if codexd is not None:
                    codexd.stop()
                codexd = start_codexd(config, home, token, trust, args.profile)
                startups.append(codexd.startup_s)
            assert codexd is not None
            time.sleep(0.5)
            out: dict[str, Any] = {
                "machine": machine(),
                "fd_limit": fd_limit,
                "upstream_http2": args.http2,
                "first_delay_s": args.first_delay,
                "quick": args.quick,
                "system_cas": args.system_cas,
                "startup": {
                    "health_s": round(sorted(startups)[len(startups) // 2], 4),
                    "all_s": [round(s, 4) for s in startups],
                    "version_s": round(command_time("--version")[0], 4),
                    **status_time(),
                    "idle_rss_kib": rss_kib(codexd.proc.pid),
                    "allocator": allocator_of(codexd.proc.pid),
                },
            }
            fake_url = f"https://127.0.0.1:{fake_port}"
            direct = direct_target(fake_url, token, ca)
            tgts = {
                "direct": direct,
                "chat": Target("chat", f"{codexd.url}/v1/chat/completions", bodies()["chat"], CHAT_MARKER),
                "responses": Target(
                    "responses",
                    f"{codexd.url}/v1/responses",
                    bodies()["responses"],
                    b"event: response.output_text.delta",
                ),
            }
            loop = asyncio.new_event_loop()
            if loop.run_until_complete(probe_messages(codexd.url)):
                tgts["messages"] = Target(
                    "messages", f"{codexd.url}/v1/messages", bodies()["messages"], MESSAGES_MARKER
                )
            out["messages_available"] = "messages" in tgts
            if "messages" in tgts:
                tgts.update(large_targets(codexd.url, direct))
            ctx = phases.Ctx(
                tgts, fake_url, str(ca), codexd.proc.pid, start_floors(direct, fake_port, helpers), args.first_delay
            )
            if args.pin:
                out["pinned"] = pin_cpus(
                    [codexd.proc.pid, *(pid for _, pid in ctx.floors.values())], [fake.pid, os.getpid()]
                )
            loop.run_until_complete(measure(args, ctx, out))
            loop.close()
        finally:
            if codexd is not None:
                codexd.stop()
            for helper in helpers:
                helper.terminate()
                helper.wait(10)
        out["elapsed_s"] = round(time.time() - t_start, 1)
        if args.profile:
            out["profile"] = profile_top(args.profile)
        out["targets"] = targets(out)
    print_report(out)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"\nJSON written to {args.json}")
    return 0


def status_time() -> dict[str, Any]:
    """``codexd status``'s wall time and exit status: 0 or 3 when a service manager answered (running or not),
    1 when none is reachable (no systemd user manager, as in a container), which makes the time shorter than
    on a desktop by one manager round trip."""
    seconds, code = command_time("status")
    return {"status_s": round(seconds, 4), "status_exit": code}


def machine() -> dict[str, Any]:
    """nproc, the CPU model, the Python version and pycurl's libcurl (its build changes codexd's RSS)."""
    import pycurl

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "pycurl": pycurl.version,
        "load_avg_at_start": os.getloadavg(),
    }
