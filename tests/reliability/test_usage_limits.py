"""Usage limits (429): ``Retry-After`` from the upstream's reset time, in every dialect, and the rate-limit
windows shown by ``/metrics`` and ``/ready``."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.fakes.scripts import RATE_LIMIT_HEADERS, Builder, Script, usage_limit_error
from tests.handlers.client import get
from tests.reliability.wire import STREAMING, assert_error_body, assert_in_band_failure, fetch

pytestmark = pytest.mark.gen_test(timeout=20)


def limit(error: dict[str, object], headers: dict[str, str] | None = None) -> Script:
    body = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached", **error}}
    return Script.error(429, body, {**RATE_LIMIT_HEADERS, "x-codex-primary-used-percent": "100", **(headers or {})})


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_usage_limit_is_a_429_with_retry_after_in_every_dialect(stack, error_trap, endpoint, stream):
    stack.backend.state.push(usage_limit_error(resets_in=13872))
    got = await fetch(stack.url + endpoint.path, endpoint.body(stream))
    assert got.code == 429
    assert got.headers["Retry-After"] == "13872"
    error = assert_error_body(endpoint.dialect, got.json())
    assert "resets in 3 h 51 min" in error["message"]
    if endpoint.dialect == "anthropic":
        assert error["type"] == "rate_limit_error"
    else:
        assert error["code"] == "usage_limit_reached"


@pytest.mark.parametrize(
    ("error", "headers", "expected"),
    [
        ({"resets_in_seconds": 90, "resets_at": 1}, {}, 90),  # resets_in_seconds wins
        ({"resets_at": "NOW+600"}, {}, 600),  # only resets_at: counted from now
        ({"resets_at": "NOW-50"}, {}, 0),  # already past: retry now
        ({}, {"Retry-After": "42"}, 42),  # neither: the upstream's own header
    ],
    ids=["resets_in_seconds", "resets_at_only", "resets_at_past", "header_only"],
)
async def test_retry_after_comes_from_the_reset_time(stack, error_trap, error, headers, expected):
    now, error = time.time(), dict(error)
    for key, value in list(error.items()):
        if isinstance(value, str):
            error[key] = int(now) + int(value[3:])
    stack.backend.state.push(limit(error, headers))
    got = await fetch(stack.url + "/v1/chat/completions", STREAMING[1].body(True))
    assert got.code == 429
    assert expected - 2 <= int(got.headers["Retry-After"]) <= expected


async def test_no_reset_time_at_all_means_no_retry_after(stack, error_trap):
    stack.backend.state.push(limit({}))
    got = await fetch(stack.url + "/v1/messages", STREAMING[2].body(False))
    assert got.code == 429
    assert "Retry-After" not in got.headers


@pytest.mark.parametrize("endpoint", STREAMING, ids=lambda e: e.name)
async def test_usage_limit_inside_a_started_stream_is_in_band(stack, error_trap, endpoint):
    events = Builder().start().failed(code="usage_limit_reached", message="The usage limit has been reached")
    stack.backend.state.push(Script.events(events), Script.events(events))
    error = assert_in_band_failure(endpoint, await fetch(stack.url + endpoint.path, endpoint.body(True)), False)
    assert error.get("type") == "rate_limit_error" or error.get("code") == "usage_limit_reached", error
    plain = await fetch(stack.url + endpoint.path, endpoint.body(False))
    assert plain.code == 429
    assert_error_body(endpoint.dialect, plain.json())


def gauge(metrics: str, name: str, window: str) -> float:
    match = re.search(rf'^{name}{{family="codex",window="{window}"}} (\S+)$', metrics, re.M)
    assert match, f"{name} for {window} is missing"
    return float(match.group(1))


async def test_rate_limit_windows_show_in_metrics_and_ready(stack, error_trap):
    stack.backend.state.push(usage_limit_error())
    assert (await fetch(stack.url + "/v1/responses", {"input": "hi"})).code == 429
    metrics = (await get(stack.url + "/metrics")).body.decode()
    assert gauge(metrics, "codexd_rate_limit_used_percent", "primary") == 100
    assert gauge(metrics, "codexd_rate_limit_used_percent", "secondary") == 31
    assert gauge(metrics, "codexd_rate_limit_window_minutes", "primary") == 299
    assert gauge(metrics, "codexd_rate_limit_window_minutes", "secondary") == 10079
    assert gauge(metrics, "codexd_rate_limit_reset_timestamp_seconds", "primary") == 1900000000
    assert gauge(metrics, "codexd_rate_limit_reset_timestamp_seconds", "secondary") == 1900100000
    ready = json.loads((await get(stack.url + "/ready")).body)
    primary = next(w for w in ready["rate_limits"] if w["window"] == "primary")
    assert primary == {
        "family": "codex",
        "window": "primary",
        "used_percent": 100.0,
        "window_minutes": 299,
        "resets_at": 1900000000,
    }


async def test_reset_time_from_reset_after_seconds_when_reset_at_is_absent(stack, error_trap):
    headers = {"x-codex-primary-reset-at": "", "x-codex-primary-reset-after-seconds": "1200"}
    stack.backend.state.push(limit({"resets_in_seconds": 1200}, headers))
    before = time.time()
    assert (await fetch(stack.url + "/v1/responses", {"input": "hi"})).code == 429
    ready = json.loads((await get(stack.url + "/ready")).body)
    primary = next(w for w in ready["rate_limits"] if w["window"] == "primary")
    assert before + 1200 - 1 <= primary["resets_at"] <= time.time() + 1200
    metrics = (await get(stack.url + "/metrics")).body.decode()
    assert gauge(metrics, "codexd_rate_limit_reset_timestamp_seconds", "primary") == pytest.approx(primary["resets_at"])
