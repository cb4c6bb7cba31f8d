"""The load generator: streamed POSTs through tornado's curl client (keep-alive on both paths, so the
direct and the codexd measurements pay the same connection costs), timing the first content delta."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import HTTPClientError, HTTPRequest

CHAT_MARKER = b'"delta":{"content":"'  # a Chat Completions content delta in codexd's answer
MESSAGES_MARKER = b'"text_delta"'  # a Messages text delta in codexd's answer


@dataclass(frozen=True)
class Target:
    """One endpoint to stream from: where, what body, and the bytes that mark a content delta."""

    name: str
    url: str
    body: bytes
    marker: bytes
    headers: dict[str, str] = field(default_factory=dict)
    ca_certs: str | None = None
    turns: Iterator[bytes] | None = None  # bodies sent one a request instead of ``body`` (a conversation's turns)

    def next_body(self) -> bytes:
        """The body of the next request."""
        return self.body if self.turns is None else next(self.turns)


@dataclass
class Result:
    """One streamed request as the client saw it."""

    status: int = 0
    ttft: float | None = None  # seconds from send to the first content delta
    t_second: float | None = None  # seconds to the second SSE frame
    frames: int = 0  # SSE frames (blank-line separated)
    deltas: int = 0  # content deltas (marker count)
    overhead_ms: float | None = None  # codexd's x-codexd-overhead-ms header
    total: float = 0.0
    error: str | None = None


def make_client(max_clients: int) -> CurlAsyncHTTPClient:
    """A private curl client with ``max_clients`` handles."""
    return CurlAsyncHTTPClient(force_instance=True, max_clients=max_clients, max_body_size=1 << 40)


async def stream(
    client: CurlAsyncHTTPClient,
    target: Target,
    request_timeout: float = 60.0,
    on_frames: Callable[[Result], None] | None = None,
) -> Result:
    """POST ``target`` and read its SSE answer to the end, counting frames and deltas incrementally."""
    res = Result()
    marker, tails = target.marker, [b"", b""]
    t0 = time.perf_counter()

    def on_chunk(chunk: bytes) -> None:
        buf = tails[0] + chunk
        found = buf.count(marker)
        if found and res.ttft is None:
            res.ttft = time.perf_counter() - t0
        res.deltas += found
        tails[0] = buf[-(len(marker) - 1) :]
        before = res.frames
        res.frames += (tails[1] + chunk).count(b"\n\n")
        tails[1] = chunk[-1:]
        if before < 2 <= res.frames:
            res.t_second = time.perf_counter() - t0
        if on_frames is not None and res.frames != before:
            on_frames(res)

    def on_header(line: str) -> None:
        if line.lower().startswith("x-codexd-overhead-ms:"):
            res.overhead_ms = float(line.split(":", 1)[1])

    request = HTTPRequest(
        target.url,
        method="POST",
        body=target.next_body(),
        headers={"Content-Type": "application/json", "Accept": "text/event-stream", **target.headers},
        streaming_callback=on_chunk,
        header_callback=on_header,
        request_timeout=request_timeout,
        connect_timeout=10,
        ca_certs=target.ca_certs,
        validate_cert=True,
    )
    try:
        response = await client.fetch(request, raise_error=False)
        res.status = response.code
        if response.code != 200:
            res.error = f"HTTP {response.code}"
    except (HTTPClientError, OSError) as exc:
        res.error = str(exc)
    res.total = time.perf_counter() - t0
    return res


async def run_many(n: int, concurrency: int, job: Callable[[], Awaitable[Result]]) -> tuple[list[Result], float]:
    """Run ``job`` ``n`` times with ``concurrency`` in flight; the results and the wall time."""
    results: list[Result] = []
    remaining = [n]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            results.append(await job())

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    return results, time.perf_counter() - t0


def bodies() -> dict[str, bytes]:
    """Request bodies per dialect; ``direct`` is a body the backend itself accepts."""
    user = [{"role": "user", "content": "Say hello."}]
    return {
        "chat": json.dumps({"model": "gpt-5.5", "stream": True, "messages": user}).encode(),
        "responses": json.dumps({"model": "gpt-5.5", "stream": True, "input": "Say hello."}).encode(),
        "messages": json.dumps(
            {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True, "messages": user}
        ).encode(),
        "direct": json.dumps(
            {
                "model": "gpt-5.5",
                "stream": True,
                "store": False,
                "instructions": "Be brief.",
                "input": [
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}
                ],
            }
        ).encode(),
    }


def claude_code_body(turns: int = 12, seed: int = 1) -> dict[str, Any]:
    """A Messages request the size of Claude Code's in a working session (about 80 KB): a long system prompt,
    18 tools with JSON schemas, and ``turns`` tool calls with their results. Deterministic."""
    rnd = random.Random(seed)
    words = ["the", "file", "function", "returns", "value", "error", "test", "module", "import", "class"]
    words += ["build", "run", "check", "update", "path"]

    def text(n: int) -> str:
        return " ".join(rnd.choice(words) for _ in range(n))

    def schema() -> dict[str, Any]:
        props: dict[str, Any] = {
            f"p{j}": {"type": rnd.choice(["string", "integer", "boolean"]), "description": text(25)} for j in range(5)
        }
        props["options"] = {
            "type": "object",
            "properties": {"a": {"type": "array", "items": {"type": "string"}}, "b": {"type": "number", "minimum": 0}},
        }
        return {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": props,
            "required": ["p0"],
            "additionalProperties": False,
        }

    tools = [{"name": f"Tool{i}", "description": text(150), "input_schema": schema()} for i in range(18)]
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": text(60)}]}]
    for t in range(turns):
        call_id = f"toolu_{t:024d}"
        call = {"type": "tool_use", "id": call_id, "name": f"Tool{t % 18}", "input": {"p0": text(8), "p1": t}}
        result = {"type": "tool_result", "tool_use_id": call_id, "content": [{"type": "text", "text": text(300)}]}
        messages.append({"role": "assistant", "content": [{"type": "text", "text": text(30)}, call]})
        messages.append({"role": "user", "content": [result]})
    system = [{"type": "text", "text": "You are Claude Code. " + text(2500), "cache_control": {"type": "ephemeral"}}]
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "system": system,
        "tools": tools,
        "messages": messages,
        "metadata": {"user_id": "user_bench_account_bench_session_0001"},
    }


def codex_cli_body(calls: int = 250, seed: int = 1) -> dict[str, Any]:
    """A Codex CLI request to ``/v1/responses`` late in a session (about 780 KB with 250 ``calls``), shaped as
    the CLI sends it: its prompt as developer messages (no ``instructions``), function tools and a custom one,
    and for each turn a reasoning item with its encrypted content, an ``exec_command`` call and its output.
    Deterministic."""
    rnd = random.Random(seed)
    words = ["the", "file", "function", "returns", "value", "error", "test", "module", "import", "class"]

    def text(n: int) -> str:
        return " ".join(rnd.choice(words) for _ in range(n))

    def said(role: str, words: int) -> dict[str, Any]:
        kind = "output_text" if role == "assistant" else "input_text"
        return {"type": "message", "role": role, "content": [{"type": kind, "text": text(words)}]}

    def schema() -> dict[str, Any]:
        props = {f"p{j}": {"type": "string", "description": text(20)} for j in range(6)}
        return {"type": "object", "properties": props, "required": ["p0"], "additionalProperties": False}

    tools: list[dict[str, Any]] = [
        {"type": "function", "name": f"tool_{i}", "description": text(120), "strict": False, "parameters": schema()}
        for i in range(12)
    ]
    tools.append({"type": "custom", "name": "apply_patch", "description": text(200), "format": {"type": "text"}})
    items = [said("developer", 1500), said("developer", 300), said("user", 200), said("user", 20)]
    for t in range(calls):
        encrypted = "".join(
            rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(800)
        )
        items.append({"type": "reasoning", "summary": [], "content": None, "encrypted_content": encrypted})
        call = {"cmd": text(10), "workdir": "/home/user/project"}
        items.append(
            {
                "type": "function_call",
                "name": "exec_command",
                "arguments": json.dumps(call),
                "call_id": f"call_{t:024d}",
            }
        )
        items.append({"type": "function_call_output", "call_id": f"call_{t:024d}", "output": text(300)})
    items += [said("assistant", 40), said("user", 20)]
    return {
        "model": "gpt-5.5",
        "stream": True,
        "input": items,
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "01a2530e-1fd2-7872-8ac2-eb47183b0650",
        "text": {"verbosity": "medium"},
    }


def chat_form(body: dict[str, Any]) -> dict[str, Any]:
    """``claude_code_body``'s conversation as a Chat Completions request: the system prompt as a system message,
    each tool call as an assistant's ``tool_calls`` entry and each result as a ``tool`` message."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": body["system"][0]["text"]}]
    for message in body["messages"]:
        blocks = message["content"]
        text = "".join(block["text"] for block in blocks if block["type"] == "text")
        if message["role"] == "assistant":
            calls = [
                {
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": b["name"], "arguments": json.dumps(b["input"])},
                }
                for b in blocks
                if b["type"] == "tool_use"
            ]
            messages.append({"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})})
            continue
        for result in (b for b in blocks if b["type"] == "tool_result"):
            content = "".join(part["text"] for part in result["content"])
            messages.append({"role": "tool", "tool_call_id": result["tool_use_id"], "content": content})
        if text:
            messages.append({"role": "user", "content": text})
    tools = [
        {
            "type": "function",
            "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]},
        }
        for t in body["tools"]
    ]
    return {"model": "gpt-5.5", "stream": True, "messages": messages, "tools": tools}


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(results: list[Result]) -> dict[str, Any]:
    """Counts of successes and errors, for the JSON."""
    errors = [r.error for r in results if r.error]
    return {
        "requests": len(results),
        "ok": len(results) - len(errors),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }
