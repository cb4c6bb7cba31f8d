"""The backend's answer headers on codexd's answers: rate limits and the rest on every endpoint, success or
error; the catalog's ETag matched by each answer's ``x-models-etag``; a usage limit that clients give up on."""

from __future__ import annotations

import pytest

from tests.fakes.backend import models_etag
from tests.fakes.scripts import RATE_LIMIT_HEADERS, Builder, Script, usage_limit_error
from tests.handlers.client import body_json, get, post_json, stream_sse

pytestmark = pytest.mark.gen_test(timeout=20)

EXTRA = {
    "x-bengalfox-primary-used-percent": "12.5",  # a further limit family, announced by its used-percent
    "x-bengalfox-primary-window-minutes": "60",
    "x-bengalfox-limit-name": "GPT-5.5 Pro",
    "x-codex-credits-balance": "0",
    "openai-model": "gpt-5.5-rerouted",
    "x-reasoning-included": "true",
    "x-internal-route": "pod-7",  # not the backend's to give away
    "set-cookie": "__cf_bm=abc; path=/",
}
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
ENDPOINTS = [
    ("/v1/responses", {"input": "hi", "stream": True}),
    ("/v1/responses", {"input": "hi"}),
    ("/v1/chat/completions", {**CHAT, "stream": True}),
    ("/v1/chat/completions", CHAT),
    ("/v1/messages", {**MESSAGES, "stream": True}),
    ("/v1/messages", MESSAGES),
]


WAYS = [f"{path} {'streamed' if body.get('stream') else 'whole'}" for path, body in ENDPOINTS]


@pytest.mark.parametrize(("path", "body"), ENDPOINTS, ids=WAYS)
async def test_every_answer_carries_the_backends_rate_limits(stack, path, body):
    stack.backend.state.push(Script.events(Builder().start().text("hi").completed(), headers=EXTRA))
    resp = await post_json(f"{stack.url}{path}", body)
    assert resp.code == 200, resp.body
    for name, value in {**RATE_LIMIT_HEADERS, **EXTRA}.items():
        if name in ("x-internal-route", "set-cookie"):
            assert name not in resp.headers
        else:
            assert resp.headers[name] == value, name


async def test_an_error_answer_carries_them_too_and_a_far_reset_says_do_not_retry(stack):
    stack.backend.state.push(usage_limit_error(resets_in=13872))
    resp = await post_json(f"{stack.url}/v1/chat/completions", CHAT)
    assert resp.code == 429
    assert resp.headers["x-codex-primary-used-percent"] == "100"
    assert resp.headers["x-codex-active-limit"] == "codex"
    assert resp.headers["Retry-After"] == "13872"
    # The Anthropic SDK would otherwise sleep the 3 h 51 min out and ask again.
    assert resp.headers["x-should-retry"] == "false"
    error = body_json(resp)["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "usage_limit_reached")
    assert (error["plan_type"], error["resets_at"], error["resets_in_seconds"]) == ("plus", 1777936568, 13872)


async def test_a_reset_within_a_minute_is_worth_the_wait(stack):
    stack.backend.state.push(usage_limit_error(resets_in=45))
    resp = await post_json(f"{stack.url}/v1/messages", MESSAGES, {"anthropic-version": "2023-06-01"})
    assert resp.code == 429
    assert resp.headers["Retry-After"] == "45"
    assert "x-should-retry" not in resp.headers
    assert body_json(resp)["error"]["type"] == "rate_limit_error"


async def test_responses_keeps_the_backends_error_type_and_status(stack):
    """The Codex CLI gives up at once on ``usage_limit_reached`` and shows when the limit resets; on any other
    type it retries, sleeping out the Retry-After (measured: "retrying in 13871.99s")."""
    stack.backend.state.push(usage_limit_error(resets_in=13872))
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 429
    error = body_json(resp)["error"]
    assert (error["type"], error["plan_type"], error["resets_at"]) == ("usage_limit_reached", "plus", 1777936568)
    assert resp.headers["x-should-retry"] == "false"
    body = {"error": {"type": "usage_not_included", "message": "Upgrade to use Codex"}}
    stack.backend.state.push(Script.error(429, body))
    refused = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert refused.code == 429 and body_json(refused)["error"]["type"] == "usage_not_included"
    stack.backend.state.push(Script.error(429, body))
    chat = await post_json(f"{stack.url}/v1/chat/completions", CHAT)
    assert chat.code == 403 and body_json(chat)["error"]["code"] == "usage_not_included"  # no retrying client
    stack.backend.state.push(Script.error(400, {"detail": "Instructions are not valid"}))
    detail = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert detail.code == 400 and body_json(detail)["error"]["type"] == "invalid_request_error"


async def test_the_catalog_etag_and_each_answers_x_models_etag_agree(stack):
    """The Codex CLI keeps the catalog's ETag and fetches the catalog again whenever an answer's ``x-models-etag``
    differs: the two must match while the catalog stands, and both change with the aliases."""
    backend_etag = models_etag(stack.backend.state.models)

    async def tags() -> tuple[str, str]:
        catalog = await get(f"{stack.url}/v1/models?client_version=0.171.0")
        answer = await stream_sse(f"{stack.url}/v1/responses", {"input": "hi", "stream": True})
        assert catalog.code == 200 and answer.code == 200
        return catalog.headers["Etag"], answer.headers["x-models-etag"]

    assert await tags() == (backend_etag, backend_etag)
    stack.state.settings = stack.state.settings.replace(aliases={"my-fast": "gpt-5.4-mini"})
    catalog, answer = await tags()
    assert catalog == answer != backend_etag
    assert catalog.startswith('"') and catalog.endswith('"')
    stack.state.settings = stack.state.settings.replace(aliases={"my-fast": "gpt-5.4"})
    assert (await tags())[0] != catalog
    stack.backend.state.models = {"models": stack.backend.state.models["models"][:1]}
    new_catalog, new_answer = await tags()
    assert new_catalog == new_answer and new_catalog not in (catalog, backend_etag)
    # The CLI may ask again with the tag it holds: nothing changed, so nothing is sent.
    again = await get(f"{stack.url}/v1/models?client_version=0.171.0", {"If-None-Match": new_catalog})
    assert again.code == 304 and not again.body
