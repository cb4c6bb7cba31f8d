"""The fake Codex backend as its own process, over HTTPS, for the benchmark.

``python -m bench.fake --cert C --key K [--http2]`` prints its port on stdout, then serves until killed
(HTTP/1.1 by default, like the Tornado fake; HTTP/2 with ``--http2``, as chatgpt.com offers it). The
answer script is global and set by ``POST /bench/mode {"deltas": n, "interval": s, "first_delay": s,
"reasoning": bool, "tool": bool}`` (phases run one after another); with ``"echo": {"instructions": ...,
"tools": [...]}`` its response objects carry them, as the real backend echoes a request's. Events are
pre-encoded once per mode, the request log is not kept and pauses are plain sleeps, so the fake spends as
little CPU as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from pathlib import Path
from typing import Any

from tornado import web

from tests.fakes import backend
from tests.fakes.h2backend import start_h2_backend
from tests.fakes.scripts import Builder, Script, Step, wire

ECHO_PAUSE = 0.01  # seconds, in echo mode, after the response's start and before its end


TOOL_NAME = "write_file"  # the function the tool-call answers call


def tool_arguments(deltas: int) -> str:
    """The JSON arguments of a tool-call answer: a file's path and content, with escaped line breaks as code
    has, ``4 * deltas`` characters long (at least the path), so that the fake's 4-character pieces make
    ``deltas`` argument deltas."""
    head, tail, line = '{"path":"src/app.py","content":"', '"}', "x = 1;\\n"
    room = max(0, 4 * deltas - len(head) - len(tail))
    return head + line * (room // len(line)) + " " * (room % len(line)) + tail


def build_script(
    deltas: int,
    interval: float,
    reasoning: bool,
    echo: dict[str, Any] | None = None,
    first_delay: float = 0.0,
    tool: bool = False,
) -> Script:
    """One text answer of ``deltas`` output_text.delta events (with ``tool``, one call of ``TOOL_NAME`` whose
    arguments come in ``deltas`` function_call_arguments.delta events instead), every event ``interval`` s
    apart, the first one ``first_delay`` s after the response headers (or ``interval``, whichever is longer).

    With ``echo`` (``instructions`` and ``tools``) the response objects carry them, as the backend's echo the
    request's, and the answer pauses ``ECHO_PAUSE`` after the two start events and before the terminal one,
    as the real backend does while the model reads the prompt and while it writes: those large events do not
    arrive in the same read as the first delta."""
    builder = (Builder(instructions=echo["instructions"], tools=echo["tools"]) if echo else Builder()).start()
    if reasoning:
        builder.reasoning(encrypted=None)
    if tool:
        events = builder.tool_calls([(TOOL_NAME, tool_arguments(deltas))]).completed()
    else:
        pieces = [f"tok{i} " for i in range(deltas)]
        events = builder.text("".join(pieces), pieces=pieces).completed()
    steps = [Step(raw=wire(e)) for e in events]
    if echo:
        steps[2].delay = steps[-1].delay = ECHO_PAUSE
    steps[0].delay = max(first_delay, interval)
    return Script(steps=steps, interval=interval)


BY_MODEL: dict[str, Script] = {}  # model name -> script, for background streams


class BenchResponses(backend.ResponsesHandler):
    """The fake's Responses handler without the request log and the 20 ms close polling."""

    def record(self) -> Any:
        self.body = backend.request_json(self.request.headers, self.request.body)
        return self.body

    async def play(self, script: Script) -> None:
        model = self.body.get("model") if isinstance(self.body, dict) else None
        await super().play(BY_MODEL.get(model, script) if isinstance(model, str) else script)

    async def _sleep_watching(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def set_mode(state: backend.BackendState, raw: bytes) -> dict[str, int]:
    """Replace the script every request gets (or, with ``model``, the script for requests naming that model:
    background load beside the measured requests); the event count."""
    spec = json.loads(raw)
    script = build_script(
        int(spec["deltas"]),
        float(spec.get("interval", 0.0)),
        bool(spec.get("reasoning")),
        spec.get("echo"),
        float(spec.get("first_delay", 0.0)),
        bool(spec.get("tool")),
    )
    if spec.get("model"):
        BY_MODEL[spec["model"]] = script
    else:
        state.default = script
    return {"events": len(script.steps)}


class ModeHandler(web.RequestHandler):
    """``POST /bench/mode``: see ``set_mode``."""

    def initialize(self, state: backend.BackendState) -> None:
        self.state = state

    def post(self) -> None:
        self.finish(set_mode(self.state, self.request.body))


async def serve(cert: str, key: str) -> None:
    """Start the HTTP/1.1 fake on a free loopback port and print it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    backend.ResponsesHandler = BenchResponses  # type: ignore[misc]  # start_backend routes by this name
    fake = backend.start_backend(ssl_options=context)
    fake.state.default = build_script(8, 0.0, True)
    app = fake.server.request_callback
    assert isinstance(app, web.Application)
    app.wildcard_router.add_rules([(r"/bench/mode", ModeHandler, {"state": fake.state})])
    print(fake.port, flush=True)
    await asyncio.Event().wait()


async def serve_h2(cert: str, key: str) -> None:
    """Start the HTTP/2 fake on a free loopback port and print it."""
    fake = await start_h2_backend(Path(cert), Path(key))
    fake.record = False
    fake.state.default = build_script(8, 0.0, True)
    fake.state.chooser = lambda body: BY_MODEL.get(str(body.get("model"))) if isinstance(body, dict) else None
    fake.routes["/bench/mode"] = lambda raw: (200, set_mode(fake.state, raw))
    print(fake.port, flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """Parse the two PEM paths and serve forever."""
    parser = argparse.ArgumentParser(prog="bench.fake")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--http2", action="store_true", help="serve HTTP/2 (ALPN h2) instead of HTTP/1.1")
    args = parser.parse_args()
    try:
        asyncio.run((serve_h2 if args.http2 else serve)(args.cert, args.key))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
