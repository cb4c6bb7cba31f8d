"""/health, /ready, /metrics, /v1/models and request ids."""

from __future__ import annotations

import pytest

from tests.handlers.client import body_json, get, post_json
from tests.harness import start_stack

pytestmark = pytest.mark.gen_test(timeout=20)


async def test_health_reports_version_and_uptime(stack):
    resp = await get(f"{stack.url}/health")
    assert resp.code == 200
    body = body_json(resp)
    assert body["status"] == "ok" and body["version"] and body["uptime"] >= 0


async def test_ready_shows_mode_masked_account_and_expiry_without_secrets(stack, codex_home):
    resp = await get(f"{stack.url}/ready")
    assert resp.code == 200
    body = body_json(resp)
    assert body["ready"] is True
    creds = body["credentials"]
    assert creds["mode"] == "chatgpt"
    assert 3000 < creds["expires_in"] <= 3600
    auth = (codex_home / "auth.json").read_text()
    import json

    tokens = json.loads(auth)["tokens"]
    text = resp.body.decode()
    for secret in (tokens["access_token"], tokens["refresh_token"], tokens["id_token"], tokens["account_id"]):
        assert secret not in text


async def test_without_credentials_health_is_up_ready_is_503_and_api_says_login(stack, codex_home):
    (codex_home / "auth.json").unlink()
    assert (await get(f"{stack.url}/health")).code == 200
    ready = await get(f"{stack.url}/ready")
    assert ready.code == 503 and body_json(ready)["ready"] is False
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 401
    assert "codex login" in body_json(resp)["error"]["message"]
    assert stack.backend.state.posts == []


async def test_models_openai_shape_sorted_hidden_dropped_aliases_added(stack):
    stack.state.settings = stack.state.settings.replace(aliases={"my-fast": "gpt-5.4-mini"})
    body = body_json(await get(f"{stack.url}/v1/models"))
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "my-fast"]
    models_call = [r for r in stack.backend.state.requests if r.path.endswith("/models")][-1]
    assert models_call.query == f"client_version={stack.state.settings.client_version}"
    assert models_call.headers["Authorization"].startswith("Bearer ")
    one = body_json(await get(f"{stack.url}/v1/models/gpt-5.4"))
    assert one["id"] == "gpt-5.4"
    assert (await get(f"{stack.url}/v1/models/nope")).code == 404


async def test_the_codex_cli_gets_the_backends_own_catalog(stack):
    """The Codex CLI asks ``/models?client_version=`` and reads only the backend's shape: it gets that, asked
    with its own version, each alias a copy of its target's entry; hidden entries stay for the CLI to judge."""
    stack.state.settings = stack.state.settings.replace(aliases={"my-fast": "gpt-5.4-mini", "gone": "gpt-1"})
    resp = await get(f"{stack.url}/v1/models?client_version=0.171.0")
    assert resp.code == 200
    models = body_json(resp)["models"]
    assert [m["slug"] for m in models] == ["gpt-5.5", "gpt-5.4-mini", "gpt-5.4", "codex-auto-review", "my-fast"]
    assert models[-1] == {**models[1], "slug": "my-fast", "display_name": "my-fast"}
    assert stack.backend.state.requests[-1].query == "client_version=0.171.0"
    stack.backend.state.models_status = 500
    failed = await get(f"{stack.url}/models?client_version=0.171.0")
    assert failed.code == 500 and "error" in body_json(failed)  # the upstream's status; the CLI keeps its list


async def test_no_codex_catalog_with_an_api_key_login(io_loop, apikey_home):
    stack = start_stack(apikey_home)
    try:
        resp = await get(f"{stack.url}/v1/models?client_version=0.171.0")
        assert resp.code == 404 and body_json(resp)["error"]["code"] == "model_catalog_unavailable"
        assert "gpt-5.5" in [m["id"] for m in body_json(await get(f"{stack.url}/v1/models"))["data"]]
    finally:
        stack.stop()


async def test_models_anthropic_shape(stack):
    body = body_json(await get(f"{stack.url}/v1/models", {"anthropic-version": "2023-06-01"}))
    assert body["has_more"] is False and body["data"][0]["type"] == "model"
    assert body["first_id"] == "gpt-5.5"


async def test_models_are_cached_and_refresh_bypasses(stack):
    count = lambda: len([r for r in stack.backend.state.requests if r.path.endswith("/models")])  # noqa: E731
    await get(f"{stack.url}/v1/models")
    await get(f"{stack.url}/v1/models")
    assert count() == 1
    await get(f"{stack.url}/v1/models?refresh=true")
    assert count() == 2


async def test_models_fall_back_to_builtin_list_when_upstream_fails(stack):
    stack.backend.state.models_status = 500
    resp = await get(f"{stack.url}/v1/models")
    assert resp.code == 200
    assert "gpt-5.5" in [m["id"] for m in body_json(resp)["data"]]


async def test_metrics_exposes_requests_latency_and_rate_limits(stack):
    await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    text = (await get(f"{stack.url}/metrics")).body.decode()
    assert 'codexd_requests_total{endpoint="responses",status="200"}' in text
    assert "codexd_request_duration_seconds_bucket" in text
    assert "codexd_time_to_first_byte_seconds_bucket" in text
    assert "codexd_in_flight_requests" in text
    assert 'codexd_rate_limit_used_percent{family="codex",window="secondary"} 31.0' in text
    assert 'codexd_rate_limit_reset_timestamp_seconds{family="codex",window="primary"} 1.9e+09' in text
    assert 'codexd_tokens_total{kind="cached_input",model="gpt-5.5"}' in text


async def test_request_id_is_echoed_or_generated(stack):
    given = await get(f"{stack.url}/health", {"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    corr = await get(f"{stack.url}/health", {"x-correlation-id": "corr-9"})
    assert corr.headers["x-request-id"] == "corr-9"
    fresh = await get(f"{stack.url}/health")
    assert fresh.headers["x-request-id"].startswith("req_")
    err = await post_json(f"{stack.url}/v1/nothing-here", {})
    assert err.code == 404 and err.headers["x-request-id"]
