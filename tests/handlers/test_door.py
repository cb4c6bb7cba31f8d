"""Checks at the door: api key, Host (DNS rebinding), Origin, body size, malformed input."""

from __future__ import annotations

import pytest

from tests.handlers.client import body_json, get, post_json

pytestmark = pytest.mark.gen_test(timeout=20)


@pytest.fixture
def keyed(stack):
    stack.state.settings = stack.state.settings.replace(api_key="local-secret-key")
    return stack


async def test_api_key_required_when_configured(keyed):
    url = f"{keyed.url}/v1/responses"
    missing = await post_json(url, {"input": "hi"})
    assert missing.code == 401 and body_json(missing)["error"]["code"] == "invalid_api_key"
    wrong = await post_json(url, {"input": "hi"}, {"Authorization": "Bearer nope"})
    assert wrong.code == 401
    assert (await post_json(url, {"input": "hi"}, {"Authorization": "Bearer local-secret-key"})).code == 200
    assert (await post_json(url, {"input": "hi"}, {"x-api-key": "local-secret-key"})).code == 200
    assert (await get(f"{keyed.url}/health")).code == 200  # liveness needs no key


async def test_foreign_host_header_is_refused(stack):
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"}, {"Host": "evil.example:8765"})
    assert resp.code == 403
    assert "Host" in body_json(resp)["error"]["message"]
    assert (await get(f"{stack.url}/health", {"Host": "localhost:8765"})).code == 200
    stack.state.settings = stack.state.settings.replace(allowed_hosts=("codexd.lan",))
    assert (await get(f"{stack.url}/health", {"Host": "codexd.lan"})).code == 200


async def test_cross_origin_browser_request_is_refused_unless_configured(stack):
    origin = {"Origin": "https://evil.example"}
    assert (await post_json(f"{stack.url}/v1/responses", {"input": "hi"}, origin)).code == 403
    stack.state.settings = stack.state.settings.replace(allowed_origins=("https://evil.example",))
    assert (await post_json(f"{stack.url}/v1/responses", {"input": "hi"}, origin)).code == 200


async def test_oversized_body_gets_413_in_dialect(stack):
    stack.state.settings = stack.state.settings.replace(max_body_size=1000)
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "x" * 2000})
    assert resp.code == 413
    assert body_json(resp)["error"]["message"].startswith("request body over the limit")
    assert stack.backend.state.posts == []


@pytest.mark.parametrize(
    "raw",
    [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe\x00", b'{"input": 5}', b'{"model": 7}', b'{"stream": "yes"}'],
)
async def test_malformed_bodies_get_400_json(stack, raw):
    resp = await post_json(f"{stack.url}/v1/responses", raw)
    assert resp.code == 400, resp.body
    assert body_json(resp)["error"]["type"] == "invalid_request_error"


async def test_unsupported_content_type_is_415(stack):
    resp = await post_json(f"{stack.url}/v1/responses", b"--x--", {"Content-Type": "multipart/form-data; boundary=x"})
    assert resp.code == 415
    assert "error" in body_json(resp)


async def test_wrong_method_is_405_json(stack):
    resp = await get(f"{stack.url}/health".replace("/health", "/v1/responses"))
    assert resp.code == 405
    assert "error" in body_json(resp)
