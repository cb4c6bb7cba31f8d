"""``x-codexd-overhead-ms``: every response carries it, and it counts codexd's own time only, never the time
the upstream took (for its headers, for a whole answer, for an error, for the model list)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fakes.scripts import Builder, Script
from tests.handlers.client import get, post_json

pytestmark = pytest.mark.gen_test(timeout=20)

UPSTREAM_TIME = 0.6  # seconds the upstream takes in the slow cases
OWN_LIMIT_MS = 250  # codexd's own time for a small request is a few ms; the upstream's time would exceed this

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"input": "hi"}
ENDPOINTS = {
    "chat": ("/v1/chat/completions", CHAT),
    "messages": ("/v1/messages", MESSAGES),
    "responses": ("/v1/responses", RESPONSES),
}


def overhead(resp: Any) -> float:
    """The header's value, checked to be a plain non-negative number of milliseconds."""
    value = float(resp.headers["x-codexd-overhead-ms"])
    assert 0 <= value < 10_000, value
    return value


def slow_answer(header_delay: float = 0.0, interval: float = 0.0) -> Script:
    pieces = ["one ", "two ", "three ", "four ", "five"]
    return Script.events(
        Builder().start().text("".join(pieces), pieces=pieces).completed(), header_delay=header_delay, interval=interval
    )


LOCAL = {
    "health": ("GET", "/health", None, 200),
    "ready": ("GET", "/ready", None, 200),
    "metrics": ("GET", "/metrics", None, 200),
    "models": ("GET", "/v1/models", None, 200),
    "unknown path": ("GET", "/v1/nope", None, 404),
    "chat without messages": ("POST", "/v1/chat/completions", {"model": "gpt-5.5"}, 400),
    "messages without messages": ("POST", "/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 1}, 400),
    "count_tokens": ("POST", "/v1/messages/count_tokens", MESSAGES, 200),
    "body not JSON": ("POST", "/v1/responses", b"{nope", 400),
}


@pytest.mark.parametrize("name", sorted(LOCAL))
async def test_answers_made_by_codexd_alone_carry_the_overhead(stack, name):
    method, path, body, status = LOCAL[name]
    url = f"{stack.url}{path}"
    resp = await (get(url) if method == "GET" else post_json(url, body))
    assert resp.code == status
    overhead(resp)


async def test_a_request_refused_at_the_door_carries_the_overhead(stack):
    stack.state.settings = stack.state.settings.replace(api_key="local-key")
    resp = await post_json(f"{stack.url}/v1/chat/completions", CHAT, {"Authorization": "Bearer wrong"})
    assert resp.code == 401
    overhead(resp)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_a_whole_answer_leaves_out_the_upstreams_time(stack, endpoint):
    """Not streamed: the answer goes out once the upstream's last event is in, so the wait for all of them is
    the upstream's, not codexd's."""
    path, body = ENDPOINTS[endpoint]
    stack.backend.state.push(slow_answer(header_delay=UPSTREAM_TIME / 2, interval=UPSTREAM_TIME / 10))
    t0 = time.monotonic()
    resp = await post_json(f"{stack.url}{path}", body)
    assert resp.code == 200
    assert time.monotonic() - t0 >= UPSTREAM_TIME
    assert overhead(resp) < OWN_LIMIT_MS


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_a_stream_leaves_out_the_wait_for_the_upstreams_headers(stack, endpoint):
    path, body = ENDPOINTS[endpoint]
    stack.backend.state.push(slow_answer(header_delay=UPSTREAM_TIME))
    t0 = time.monotonic()
    resp = await post_json(f"{stack.url}{path}", {**body, "stream": True})
    assert resp.code == 200 and b"three" in resp.body
    assert time.monotonic() - t0 >= UPSTREAM_TIME
    assert overhead(resp) < OWN_LIMIT_MS


async def test_an_upstream_error_leaves_out_the_upstreams_time(stack):
    script = Script.error(400, {"detail": "Unsupported parameter: foo"})
    script.header_delay = UPSTREAM_TIME
    stack.backend.state.push(script)
    resp = await post_json(f"{stack.url}/v1/chat/completions", CHAT)
    assert resp.code == 400
    assert overhead(resp) < OWN_LIMIT_MS


async def test_the_model_list_leaves_out_the_upstreams_time(stack):
    stack.backend.state.models_delay = UPSTREAM_TIME
    t0 = time.monotonic()
    resp = await get(f"{stack.url}/v1/models?refresh=true")
    assert resp.code == 200
    assert time.monotonic() - t0 >= UPSTREAM_TIME
    assert overhead(resp) < OWN_LIMIT_MS


def _overhead_metric(text: str, endpoint: str) -> tuple[float, float]:
    """(count, sum) of ``codexd_overhead_seconds`` for ``endpoint`` in a /metrics page."""
    values = {}
    for line in text.splitlines():
        for part in ("count", "sum"):
            if line.startswith(f'codexd_overhead_seconds_{part}{{endpoint="{endpoint}"}} '):
                values[part] = float(line.split()[-1])
    return values.get("count", 0.0), values.get("sum", 0.0)


async def test_metrics_sum_up_what_the_header_shows(stack):
    """The same figure goes to /metrics (the registry is the process's: only the difference counts)."""
    before = _overhead_metric((await get(f"{stack.url}/metrics")).body.decode(), "chat_completions")
    stack.backend.state.push(slow_answer(header_delay=UPSTREAM_TIME))
    resp = await post_json(f"{stack.url}/v1/chat/completions", {**CHAT, "stream": True})
    shown = overhead(resp) / 1000
    after = _overhead_metric((await get(f"{stack.url}/metrics")).body.decode(), "chat_completions")
    assert after[0] - before[0] == 1
    assert after[1] - before[1] == pytest.approx(shown, abs=1e-5)
