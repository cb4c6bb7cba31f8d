"""What tests/handlers/test_door.py leaves out: more DNS-rebinding Host spellings, more foreign Origins on
every endpoint (no CORS header ever), and the api key compared in constant time."""

from __future__ import annotations

import hmac
import json
from typing import Any

import pytest

from tests.handlers.client import get, post_json
from tests.reliability.wire import CHAT, COUNT_TOKENS, MESSAGES, RESPONSES

pytestmark = pytest.mark.gen_test(timeout=20)

POSTS = [RESPONSES, CHAT, MESSAGES, COUNT_TOKENS]


def hosts_allowed(port: int) -> list[str]:
    return [f"[::1]:{port}", "[::1]", f"LOCALHOST:{port}", "LocalHost", f"127.0.0.1:{port}", "127.4.5.6", "[0:0::1]"]


HOSTS_REFUSED = [
    "127.0.0.1.evil.com",
    "127.0.0.1.evil.com:8765",
    "localhost.evil.com",
    "evil.com",
    "EVIL.COM:8765",
    "0.0.0.0",
    "169.254.169.254",
    "192.168.1.10:8765",
    "[::2]:8765",
    "localhost:8765.evil.com",
    "127.0.0.1:8765:80",
    "127.0.0.1@evil.com",
]


@pytest.mark.parametrize("endpoint", POSTS, ids=lambda e: e.name)
async def test_loopback_host_spellings_are_served(stack, endpoint):
    for host in hosts_allowed(stack.port):
        resp = await post_json(stack.url + endpoint.path, endpoint.body(False), {"Host": host})
        assert resp.code == 200, (host, resp.body[:200])


@pytest.mark.parametrize("endpoint", POSTS, ids=lambda e: e.name)
@pytest.mark.parametrize("host", HOSTS_REFUSED)
async def test_foreign_host_spellings_are_refused(stack, endpoint, host):
    resp = await post_json(stack.url + endpoint.path, endpoint.body(False), {"Host": host})
    assert 400 <= resp.code < 500 and resp.code != 404, (resp.code, resp.body[:200])
    if resp.code == 403:
        body = json.loads(resp.body)
        assert "Host" in (body["error"]["message"])
    assert stack.backend.state.posts == []  # nothing reached the upstream


@pytest.mark.parametrize("origin", ["null", "http://localhost:3000", "http://127.0.0.1:1", "file://", "https://x.y"])
async def test_foreign_origins_are_refused_everywhere_without_cors_headers(stack, origin):
    headers = {"Origin": origin}
    for endpoint in POSTS:
        resp = await post_json(stack.url + endpoint.path, endpoint.body(False), headers)
        assert resp.code == 403, (endpoint.name, resp.code)
        assert "Access-Control-Allow-Origin" not in resp.headers
    for path in ("/v1/models", "/health", "/metrics"):
        resp = await get(stack.url + path, headers)
        assert resp.code == 403 and "Access-Control-Allow-Origin" not in resp.headers
    preflight = await get(
        stack.url + "/v1/chat/completions", {**headers, "Access-Control-Request-Method": "POST"}, method="OPTIONS"
    )
    assert preflight.code >= 400 and "Access-Control-Allow-Origin" not in preflight.headers
    assert stack.backend.state.posts == []


async def test_api_key_is_compared_in_constant_time(stack, monkeypatch):
    key = "local-secret-key-0123456789"
    stack.state.settings = stack.state.settings.replace(api_key=key)
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    cases = [
        ({"Authorization": f"Bearer {key}"}, 200),
        ({"x-api-key": key}, 200),
        ({"authorization": f"bearer {key}"}, 200),
        ({"Authorization": f"Bearer {key[:-1]}"}, 401),
        ({"x-api-key": key + "0"}, 401),
        ({}, 401),
    ]
    for headers, status in cases:
        resp = await post_json(stack.url + "/v1/responses", {"input": "hi"}, headers)
        assert resp.code == status, headers
    given = [a for a, _ in compared]
    assert given == [key.encode(), key.encode(), key.encode(), key[:-1].encode(), (key + "0").encode(), b""]
    assert all(b == key.encode() for _, b in compared)
