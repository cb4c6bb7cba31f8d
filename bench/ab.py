"""``python -m bench.ab OLD [NEW]``: two versions of codexd side by side, one fake backend, requests alternating.

A full run of ``python -m bench`` moves by tenths of a millisecond from one hour to the next on a shared VM,
more than most single changes are worth. This runs two codexd processes at once, from two checkouts (``OLD``,
say a ``git worktree`` of the commit before a change, and ``NEW``, this checkout by default), against the same
fake, and measures one row at a time for each version in turn, ``--rounds`` times, the order swapped every
round, so the machine's drift hits both alike. Per round and version: TTFT overhead p50 (first token through
codexd minus the fake reached directly, requests alternating), codexd's own ``x-codexd-overhead-ms`` p50, and
codexd's CPU per request. It prints the median and range over the rounds and writes JSON.

Rows: ``chat`` and ``messages`` (one-line requests), ``80 KB`` (the Claude Code-sized Messages request, the same
every time), ``turns`` (two turns of that conversation in alternation), ``session`` (the same with 250 tool
calls, 640 KB: a long session's next turn), ``chat session`` (that conversation as a Chat Completions request)
``agents`` (the session's turns with those of three sub-agents in between, each agent's in turn; each
sub-agent has tools of its own, and ``--sub-agents`` sets how many), and ``cli session`` (a Codex CLI session's
two turns late on, 780 KB, to ``/v1/responses``, zstd-compressed as the CLI sends them).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench import phases
from bench.client import CHAT_MARKER, MESSAGES_MARKER, Target, bodies, chat_form, codex_cli_body
from bench.procs import (
    REPO,
    Codexd,
    cpu_seconds,
    pin_cpus,
    precompile,
    raise_fd_limit,
    start_codexd,
    start_fake,
    write_config,
)
from bench.run import (
    AGENTS,
    LARGE,
    LARGE_ROWS,
    SESSION,
    SESSION_CALLS,
    SUB_AGENT_CALLS,
    SUB_AGENTS,
    TURNS,
    conversation_turns,
    direct_target,
    echo_of,
    large_targets,
    turn_targets,
)
from tests.fakes.tls import tls_files

ROWS = ("chat", "messages", "80 KB", "turns", "session", "chat session", "agents", "cli session")


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    p.add_argument("old", type=Path, help="a checkout of the version to compare against (holding codexd/)")
    p.add_argument("new", type=Path, nargs="?", default=REPO, help="the version to measure (default: this checkout)")
    p.add_argument("--rows", default="chat,messages", help=f"comma-separated, of: {', '.join(ROWS)}")
    p.add_argument("--rounds", type=int, default=6, help="rounds per row (default 6)")
    p.add_argument("--requests", type=int, default=200, help="requests per round and version (default 200)")
    p.add_argument("--http2", action="store_true", help="the fake backend speaks HTTP/2, as chatgpt.com does")
    p.add_argument("--pin", action="store_true", help="both codexd processes on one CPU, the fake and this on the rest")
    p.add_argument(
        "--sub-agents",
        type=int,
        default=SUB_AGENTS,
        choices=range(1, len(SUB_AGENT_CALLS) + 1),
        metavar="N",
        help=f"sub-agents in the agents row, each with its own tools (default {SUB_AGENTS})",
    )
    p.add_argument("--json", type=Path, default=Path("/tmp/codexd-ab.json"), help="where to write results")
    args = p.parse_args(argv)
    args.rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {unknown}; rows are {', '.join(ROWS)}")
    for tree in (args.old, args.new):
        if not (tree / "codexd" / "__init__.py").is_file():
            p.error(f"{tree} holds no codexd/ package")
    return args


def row_targets(
    row: str, url: str, direct: Target, sub_agents: int = SUB_AGENTS
) -> tuple[Target, Target, dict[str, Any] | None]:
    """The target through codexd at ``url``, its direct counterpart, and what the fake echoes for them."""
    if row in ("chat", "messages"):
        path = "chat/completions" if row == "chat" else "messages"
        marker = CHAT_MARKER if row == "chat" else MESSAGES_MARKER
        return Target(row, f"{url}/v1/{path}", bodies()[row], marker), direct, None
    if row == "cli session":
        return cli_session_targets(url, direct)
    if row == "chat session":
        turns = [chat_form(turn) for turn in conversation_turns(SESSION_CALLS)]
        targets = turn_targets("via", "to", f"{url}/v1/chat/completions", direct, turns, chat=True)
        via, to = targets["via"], targets["to"]
    else:
        name = {"80 KB": LARGE, "turns": TURNS, "session": SESSION, "agents": AGENTS}[row]
        targets = large_targets(url, direct, sub_agents)
        via, to = targets[name], targets[LARGE_ROWS[name]]
    return via, to, echo_of(to)


def cli_session_targets(url: str, direct: Target) -> tuple[Target, Target, dict[str, Any]]:
    """Two turns of a late Codex CLI session (``codex_cli_body``; the second one call longer) to ``/v1/responses``,
    zstd-compressed as the CLI sends them, in alternation; and directly, the bodies codexd makes of them,
    compressed as codexd sends them."""
    from codexd.content_coding import compress
    from codexd.jsonbody import dumps_body
    from codexd.models import ModelMap
    from codexd.settings import Settings
    from codexd.translate.responses_body import normalise

    longer = codex_cli_body(SESSION_CALLS)
    turns = [{**longer, "input": longer["input"][:-5] + longer["input"][-2:]}, longer]
    defaults = Settings()
    models = ModelMap(defaults.default_model, defaults.small_model, defaults.aliases)
    upstream = [dumps_body(normalise(t, models=models, instructions=defaults.instructions).upstream) for t in turns]
    zstd = {"Content-Encoding": "zstd"}
    via_bodies = [compress(json.dumps(turn).encode()) for turn in turns]
    to_bodies = [compress(body) for body in upstream]
    via = Target(
        "cli session", f"{url}/v1/responses", via_bodies[0], direct.marker, zstd, turns=itertools.cycle(via_bodies)
    )
    to = Target(
        "direct cli session",
        direct.url,
        to_bodies[0],
        direct.marker,
        {**direct.headers, **zstd},
        direct.ca_certs,
        itertools.cycle(to_bodies),
    )
    echo = json.loads(upstream[0])
    return via, to, {"instructions": echo["instructions"], "tools": echo["tools"]}


async def measure_row(
    row: str,
    versions: dict[str, Codexd],
    direct: Target,
    ctx: phases.Ctx,
    rounds: int,
    n: int,
    sub_agents: int = SUB_AGENTS,
) -> dict[str, Any]:
    """``rounds`` rounds of ``n`` requests per version, the order swapped each round; per version the rounds'
    TTFT overhead p50, own-time p50 and CPU ms per request."""
    found: dict[str, dict[str, list[float]]] = {name: {"overhead": [], "own": [], "cpu": []} for name in versions}
    targets = {name: row_targets(row, codexd.url, direct, sub_agents) for name, codexd in versions.items()}
    errors = 0
    for r in range(rounds):
        order = list(versions) if r % 2 == 0 else list(reversed(versions))
        for name in order:
            codexd = versions[name]
            via, to, echo = targets[name]
            ctx.targets = {row: via, to.name: to}
            cpu0 = cpu_seconds(codexd.proc.pid)
            result = await phases.ttft(ctx, row, n, 1, direct_name=to.name, echo=echo)
            cpu = cpu_seconds(codexd.proc.pid) - cpu0
            errors += result["codexd"]["errors"] + result["direct"]["errors"]
            found[name]["overhead"].append(result["overhead_p50_ms"])
            found[name]["own"].append(result["header_overhead_p50_ms"])
            found[name]["cpu"].append(round(cpu * 1000 / (n + 2), 3))  # ttft warms up with two requests
    return {"row": row, "rounds": rounds, "requests": n, "errors": errors, "versions": found}


def print_rows(results: list[dict[str, Any]]) -> None:
    """One line per row and version: median [min-max] over the rounds."""

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"

    print(f"{'row':<14} {'version':<8} {'TTFT overhead p50 ms':<24} {'own p50 ms':<22} {'CPU ms/request':<22}")
    for result in results:
        for name, found in result["versions"].items():
            own, cpu = cell(found["own"]), cell(found["cpu"])
            print(f"{result['row']:<14} {name:<8} {cell(found['overhead']):<24} {own:<22} {cpu:<22}")
        if result["errors"]:
            print(f"{result['row']:<14} {result['errors']} requests failed")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; 1 when a request failed."""
    args = parse(argv)
    raise_fd_limit()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    with tempfile.TemporaryDirectory(prefix="codexd-ab-") as tmp:
        folder = Path(tmp)
        ca, cert, key = tls_files(folder)
        for tree in trees.values():
            precompile(tree)
        fake, fake_port = start_fake(cert, key, args.http2)
        config, home, token = write_config(folder, fake_port, ca, max_clients=64)
        versions: dict[str, Codexd] = {}
        try:
            for name, tree in trees.items():
                versions[name] = start_codexd(config, home, token, ca, tree=tree)
            fake_url = f"https://127.0.0.1:{fake_port}"
            direct = direct_target(fake_url, token, ca)
            out: dict[str, Any] = {
                "trees": {k: str(v) for k, v in trees.items()},
                "http2": args.http2,
                "sub_agents": args.sub_agents,
            }
            if args.pin:
                out["pinned"] = pin_cpus([c.proc.pid for c in versions.values()], [fake.pid, os.getpid()])
            ctx = phases.Ctx({}, fake_url, str(ca), 0)
            loop = asyncio.new_event_loop()
            out["rows"] = [
                loop.run_until_complete(
                    measure_row(row, versions, direct, ctx, args.rounds, args.requests, args.sub_agents)
                )
                for row in args.rows
            ]
            loop.close()
        finally:
            for codexd in versions.values():
                codexd.stop()
            fake.terminate()
            fake.wait(10)
    print(f"old: {trees['old']}\nnew: {trees['new']}")
    if "agents" in args.rows:
        print(f"agents: the 640 KB session and {args.sub_agents} sub-agents")
    print_rows(out["rows"])
    args.json.write_text(json.dumps(out, indent=2))
    print(f"\nJSON written to {args.json}")
    return 1 if any(result["errors"] for result in out["rows"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
