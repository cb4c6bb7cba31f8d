"""The upstream client under real conditions: keep-alive, disconnects, concurrency, silence, 401, retries,
proxies and TLS with a private CA."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pycurl
import pytest

from codexd.errors import CodexdError
from codexd.settings import Settings
from codexd.upstream import client as client_module
from codexd.upstream import trust
from tests.fakes.backend import FakeBackend, start_backend
from tests.fakes.proxy import start_proxy
from tests.fakes.scripts import Builder, Script
from tests.fakes.socks import start_socks_proxy
from tests.fakes.tls import tls_files
from tests.handlers.client import body_json, get, post_json, stream_sse
from tests.harness import start_stack

pytestmark = pytest.mark.gen_test(timeout=30)


def long_stream(n: int = 200, interval: float = 0.05) -> Script:
    return Script.events(Builder().start().text("x" * (4 * n)).completed(), interval=interval)


async def test_upstream_connections_are_kept_alive(stack):
    for _ in range(100):
        resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
        assert resp.code == 200
    assert len(stack.backend.state.posts) == 100
    assert stack.backend.state.connections <= 2


async def test_connections_are_reused_while_more_streams_run_than_idle_connections_are_kept(stack, monkeypatch):
    """libcurl's cache limit counts busy connections too: a fixed cap under the number of running streams
    closed each connection as its request ended, and every request paid a new TLS handshake."""
    monkeypatch.setattr(client_module, "IDLE_CONNECTIONS", 2)
    stack.state.upstream.close()  # the next request makes a curl client with the patched spare count
    for _ in range(3):
        stack.backend.state.push(long_stream(n=40, interval=0.05))
    streams = [
        asyncio.ensure_future(post_json(f"{stack.url}/v1/responses", {"input": "long", "stream": True}))
        for _ in range(3)
    ]
    await _wait_for(lambda: stack.backend.state.open_streams == 3, 5)
    before = stack.backend.state.connections
    for _ in range(6):
        resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
        assert resp.code == 200
    opened = stack.backend.state.connections - before
    assert stack.backend.state.open_streams == 3, "the long streams were still running"
    assert opened <= 1, f"{opened} new upstream connections for 6 requests one after the other"
    assert all(r.code == 200 for r in await asyncio.gather(*streams))


async def test_a_burst_leaves_only_the_spare_connections_open(stack, monkeypatch):
    """Past the burst, libcurl keeps the spare idle connections (and one more at most), not one per stream."""
    monkeypatch.setattr(client_module, "IDLE_CONNECTIONS", 2)
    stack.state.upstream.close()
    before = stack.backend.state.connections
    for _ in range(6):
        stack.backend.state.push(long_stream(n=10, interval=0.05))
    answers = await asyncio.gather(
        *(post_json(f"{stack.url}/v1/responses", {"input": "burst", "stream": True}) for _ in range(6))
    )
    assert all(a.code == 200 for a in answers)
    assert stack.backend.state.connections - before == 6, "six concurrent streams, six connections"
    await _wait_for(lambda: stack.backend.state.open_connections <= 3, 3)


async def test_requests_past_max_clients_wait_for_a_slot_then_run(backend, codex_home):
    """``upstream.max_clients`` caps the streams in flight upstream; the others queue and start as slots free."""
    stack = start_stack(codex_home, backend, max_clients=2)
    try:
        for _ in range(5):
            backend.state.push(long_stream(n=6, interval=0.05))
        most = [0]

        async def watch() -> None:
            while True:
                most[0] = max(most[0], backend.state.open_streams)
                await asyncio.sleep(0.01)

        watcher = asyncio.ensure_future(watch())
        answers = await asyncio.gather(
            *(post_json(f"{stack.url}/v1/responses", {"input": "queued", "stream": True}) for _ in range(5))
        )
        watcher.cancel()
        assert [a.code for a in answers] == [200] * 5
        assert all(b"response.completed" in a.body for a in answers)
        assert most[0] == 2, f"{most[0]} upstream streams at once with max_clients = 2"
        assert len(backend.state.posts) == 5
    finally:
        stack.stop()


async def _wait_for(predicate, limit: float) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > limit:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


@pytest.mark.parametrize("silent", [False, True])
async def test_client_disconnect_closes_upstream_within_a_second(stack, silent):
    script = long_stream()
    if silent:
        script.then_stall(5, 30.0)
    stack.backend.state.push(script)
    from tornado.httpclient import HTTPRequest
    from tornado.simple_httpclient import SimpleAsyncHTTPClient

    client = SimpleAsyncHTTPClient(force_instance=True)
    got: list[bytes] = []
    request = HTTPRequest(
        f"{stack.url}/v1/responses",
        method="POST",
        body=json.dumps({"input": "x", "stream": True}),
        streaming_callback=got.append,
        request_timeout=60,
    )
    fetch = asyncio.ensure_future(client.fetch(request, raise_error=False))
    await _wait_for(lambda: stack.backend.state.open_streams == 1 and got, 5)
    await asyncio.sleep(0.2)
    # Closing a tornado client does not drop live connections: close the server-side socket of the
    # downstream connection, which is what codexd sees when a client goes away.
    await _close_client_sockets(stack)
    elapsed = await _wait_for(lambda: stack.backend.state.open_streams == 0, 3)
    assert elapsed < 1.0
    assert stack.backend.state.closed_by_client == 1
    await _wait_for(lambda: not stack.state.in_flight, 2)
    await asyncio.gather(fetch, return_exceptions=True)  # the client saw its connection closed
    client.close()


async def _close_client_sockets(stack) -> None:
    """Close the downstream connection of every in-flight request, as a client that went away does."""
    for handler in list(stack.state.in_flight):
        handler.request.connection.stream.close()


async def test_many_concurrent_streams_do_not_queue(stack):
    n = 24
    for _ in range(n):
        stack.backend.state.push(long_stream(40, 0.05))
    from tornado.simple_httpclient import SimpleAsyncHTTPClient

    client = SimpleAsyncHTTPClient(force_instance=True, max_clients=n)
    reads = [stream_sse(f"{stack.url}/v1/responses", {"input": "x", "stream": True}, client=client) for _ in range(n)]
    results = await asyncio.gather(*reads)
    client.close()
    assert all(r.code == 200 for r in results)
    first = sorted(r.times[0] for r in results)
    # With Tornado's default max_clients=10 the 11th stream would wait ~2 s for a free slot.
    assert first[-1] < 1.5


async def test_idle_upstream_ends_the_stream_with_an_error(stack):
    stack.state.settings = stack.state.settings.replace(idle_timeout=0.5)
    stack.state.upstream.settings = stack.state.settings
    stack.backend.state.push(long_stream(50, 0.01).then_stall(10, 5.0))
    t0 = time.monotonic()
    read = await stream_sse(f"{stack.url}/v1/responses", {"input": "x", "stream": True})
    assert time.monotonic() - t0 < 3
    last = read.json()[-1]
    assert last["type"] == "response.failed"
    assert "silent" in last["response"]["error"]["message"]
    await _wait_for(lambda: stack.backend.state.open_streams == 0, 2)


async def test_upstream_401_refreshes_once_and_retries(stack, codex_home):
    doc = json.loads((codex_home / "auth.json").read_text())
    stack.backend.state.revoked.add(doc["tokens"]["access_token"])
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 200, resp.body
    assert stack.backend.token_state.redeemed == ["rt-0"]
    new = json.loads((codex_home / "auth.json").read_text())
    assert new["tokens"]["refresh_token"] == "rt-1"
    assert len(stack.backend.state.posts) == 2


async def test_permanent_refresh_failure_gives_a_login_error_and_stops_calling(stack, codex_home):
    doc = json.loads((codex_home / "auth.json").read_text())
    stack.backend.state.revoked.add(doc["tokens"]["access_token"])
    stack.backend.token_state.valid.clear()
    stack.backend.token_state.fail_always = (401, {"error": {"code": "refresh_token_reused"}})
    for _ in range(3):
        resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
        assert resp.code == 401
        assert "codex login" in body_json(resp)["error"]["message"]
    assert stack.backend.token_state.count == 1


async def test_transient_503_is_retried_once_before_the_first_byte(stack):
    stack.backend.state.push(Script.error(503, {"detail": "busy"}))
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 200
    assert len(stack.backend.state.posts) == 2
    stack.backend.state.push(Script.error(502, "bad gateway"), Script.error(502, "bad gateway"))
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 502
    assert len(stack.backend.state.posts) == 4


async def test_usage_limit_is_not_retried(stack):
    from tests.fakes.scripts import usage_limit_error

    stack.backend.state.push(usage_limit_error())
    assert (await post_json(f"{stack.url}/v1/responses", {"input": "hi"})).code == 429
    assert len(stack.backend.state.posts) == 1


async def test_unreachable_upstream_is_a_502_in_dialect(io_loop, codex_home):
    from tests.fakes.backend import start_backend

    backend = start_backend()
    backend.stop()  # nothing listens on its port any more
    stack = start_stack(codex_home, backend)
    try:
        resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
        assert resp.code == 502
        assert body_json(resp)["error"]["code"] == "upstream_unreachable"
        models = await get(f"{stack.url}/v1/models")  # the built-in list, not a 500
        assert models.code == 200 and "gpt-5.5" in [m["id"] for m in body_json(models)["data"]]
    finally:
        stack.server.stop()
        stack.state.upstream.close()


async def test_requests_go_through_the_configured_proxy(io_loop, backend, codex_home):
    server, state, port = start_proxy()
    stack = start_stack(codex_home, backend, proxy=f"http://127.0.0.1:{port}")
    try:
        read = await stream_sse(f"{stack.url}/v1/responses", {"input": "hi", "stream": True})
        assert read.code == 200 and read.json()[-1]["type"] == "response.completed"
        assert state.urls == [backend.base_url + "/responses"]
    finally:
        stack.server.stop()
        stack.state.upstream.close()
        server.stop()


async def test_an_https_proxy_with_credentials_carries_streams_and_control_calls(io_loop, backend, codex_home, tls):
    """An ``https://`` proxy is spoken to over TLS (its certificate checked against ``ca_bundle``), and the
    user name and password in its URL reach it percent-decoded, for streams and for the model list alike."""
    ca, cert, key = tls
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server, state, port = start_proxy(ssl_options=context)
    proxy = f"https://codexd:p%40ss%3Aword@127.0.0.1:{port}"
    stack = start_stack(codex_home, backend, proxy=proxy, ca_bundle=str(ca))
    try:
        read = await stream_sse(f"{stack.url}/v1/responses", {"input": "hi", "stream": True})
        assert read.code == 200 and read.json()[-1]["type"] == "response.completed"
        await stack.state.upstream.get_json("/models", "client_version=1")
        assert state.urls[0] == backend.base_url + "/responses"
        assert state.urls[1].startswith(backend.base_url + "/models")
        basic = "Basic " + base64.b64encode(b"codexd:p@ss:word").decode()
        assert state.credentials == [basic, basic]
    finally:
        stack.server.stop()
        stack.state.upstream.close()
        server.stop()


async def test_a_socks5h_proxy_carries_streams(io_loop, backend, codex_home):
    """libcurl takes the proxy URL whole, so a ``socks5h://`` proxy is spoken to as SOCKS (the proxy resolves
    the backend's host), not taken for an HTTP proxy on that port."""
    socks = await start_socks_proxy()
    stack = start_stack(codex_home, backend, proxy=f"socks5h://127.0.0.1:{socks.port}")
    try:
        read = await stream_sse(f"{stack.url}/v1/responses", {"input": "hi", "stream": True})
        assert read.code == 200 and read.json()[-1]["type"] == "response.completed"
        backend_port = int(backend.base_url.split(":")[2].split("/")[0])
        assert socks.targets == [("127.0.0.1", backend_port)]
    finally:
        stack.server.stop()
        stack.state.upstream.close()
        await socks.aclose()


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for 127.0.0.1 signed by it."""
    return tls_files(tmp_path)


async def test_https_upstream_with_private_ca_bundle(io_loop, codex_home, tls):
    ca, cert, key = tls
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    backend = start_backend(ssl_options=context)
    https_base = backend.base_url.replace("http://", "https://")
    trusted = start_stack(codex_home, backend, chatgpt_base_url=https_base, ca_bundle=str(ca))
    untrusted = start_stack(codex_home, backend, chatgpt_base_url=https_base)
    try:
        for _ in range(5):
            ok = await post_json(f"{trusted.url}/v1/responses", {"input": "hi"})
            assert ok.code == 200, ok.body
        assert backend.state.connections == 1  # one TLS handshake, reused
        bad = await post_json(f"{untrusted.url}/v1/responses", {"input": "hi"})
        assert bad.code == 502
    finally:
        for s in (trusted, untrusted):
            s.server.stop()
            s.state.upstream.close()
        backend.stop()


def hashed_dir(folder: Path, *pems: Path) -> Path:
    """A directory of CA files with the subject-hash names OpenSSL looks CAs up by (``openssl rehash``)."""
    folder.mkdir()
    for n, pem in enumerate(pems):
        shutil.copy(pem, folder / f"ca{n}.pem")
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    return folder


def another_ca(folder: Path, name: str = "codexd bench CA") -> Path:
    """A private CA that did not sign the backend's certificate; by default of the same name as the one that
    did (so also the same hash)."""
    key, ca = folder / "other.key", folder / "other.pem"
    new_ca = ("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}")
    subprocess.run([*new_ca, "-keyout", str(key), "-out", str(ca)], check=True, capture_output=True)
    return ca


@pytest.fixture
def tls_backend(tls: tuple[Path, Path, Path]) -> Iterator[tuple[FakeBackend, str]]:
    """A fake backend over TLS with a certificate from the private CA, and its https:// base URL."""
    _, cert, key = tls
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    backend = start_backend(ssl_options=context)
    yield backend, backend.base_url.replace("http://", "https://")
    backend.stop()


@pytest.fixture
def system_ca_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Make codexd take a directory for the system's hashed CA directory."""

    def use(folder: Path) -> None:
        monkeypatch.setattr(trust, "SYSTEM_CA_DIR", str(folder))
        trust.system_ca_dir.cache_clear()

    yield use
    trust.system_ca_dir.cache_clear()


async def _answers(codex_home: Path, tls_backend: tuple[FakeBackend, str], **overrides: Any) -> tuple[int, int]:
    """The status of a stream request and of a control call (the model list) through a codexd in front of the
    TLS backend, with ``overrides`` to its settings."""
    backend, https_base = tls_backend
    stack = start_stack(codex_home, backend, chatgpt_base_url=https_base, **overrides)
    try:
        stream = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
        try:
            await stack.state.upstream.get_json("/models", "client_version=1")
            control = 200
        except CodexdError as exc:
            control = exc.status
        return stream.code, control
    finally:
        stack.server.stop()
        stack.state.upstream.close()


async def test_a_hashed_ca_directory_is_trusted_for_streams_and_control_calls(
    io_loop, codex_home, tls, tls_backend, tmp_path
):
    """``ca_dir`` (or SSL_CERT_DIR) names a directory of CAs by hash, as ``/etc/ssl/certs`` is; one without
    the backend's CA fails as an untrusted certificate, not by falling back to another store."""
    trusted = hashed_dir(tmp_path / "a", tls[0])
    untrusted = hashed_dir(tmp_path / "b", another_ca(tmp_path))
    assert await _answers(codex_home, tls_backend, ca_dir=str(trusted)) == (200, 200)
    assert await _answers(codex_home, tls_backend, ca_dir=str(untrusted)) == (502, 502)


async def test_without_a_configured_ca_the_systems_hashed_directory_is_trusted(
    io_loop, codex_home, tls, tls_backend, tmp_path, system_ca_dir
):
    """With neither ``ca_bundle`` nor ``ca_dir``, codexd reads the system's CA directory when it holds CAs by
    hash (one CA read when needed, not a store built from the whole bundle); the private CA is in no system
    store, so only that directory can make this request succeed. A directory without hash names is not taken
    for one: libcurl's own bundle is used, which does not trust the private CA."""
    system_ca_dir(hashed_dir(tmp_path / "hashed", tls[0]))
    assert await _answers(codex_home, tls_backend) == (200, 200)
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(tls[0], plain / "private.pem")
    system_ca_dir(plain)
    assert await _answers(codex_home, tls_backend) == (502, 502)


async def test_a_configured_ca_bundle_is_used_beside_a_ca_directory(
    io_loop, codex_home, tls, tls_backend, tmp_path, system_ca_dir
):
    """``ca_bundle`` alone replaces the system's directory; with ``ca_dir`` too, a CA in either is trusted."""
    other_ca = str(another_ca(tmp_path, "another CA"))
    system_ca_dir(hashed_dir(tmp_path / "system", tls[0]))
    assert await _answers(codex_home, tls_backend, ca_bundle=other_ca) == (502, 502)
    directory = str(hashed_dir(tmp_path / "dir", tls[0]))
    assert await _answers(codex_home, tls_backend, ca_bundle=other_ca, ca_dir=directory) == (200, 200)


async def test_request_bodies_of_every_size_reach_a_tls_upstream_whole(io_loop, codex_home, tls):
    """The upload buffer is sized to each request (one buffer for 80 KB, several past the 1 MiB cap): what
    the backend receives is what was sent, at every size, over TLS."""
    ca, cert, key = tls
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    backend = start_backend(ssl_options=context)
    stack = start_stack(
        codex_home, backend, chatgpt_base_url=backend.base_url.replace("http://", "https://"), ca_bundle=str(ca)
    )
    try:
        for size in (10, 80_000, 3_000_000, 100):
            text = "".join(chr(0x61 + i % 26) for i in range(size))
            resp = await post_json(f"{stack.url}/v1/responses", {"input": text})
            assert resp.code == 200, resp.body
            sent = backend.state.posts[-1].body["input"]
            assert sent[0]["content"][0]["text"] == text
        assert backend.state.connections == 1
    finally:
        stack.server.stop()
        stack.state.upstream.close()
        backend.stop()


async def test_the_backend_receives_the_request_codexd_composed(stack):
    """Stream requests set their curl options themselves (not through Tornado's per-request option code): the
    backend still gets a POST with codexd's headers, the exact body and its length, libcurl's own ``Expect``
    and ``Pragma`` headers left out (``Expect: 100-continue`` would hold a body over 1 MiB back), and an offer
    to compress the answer. The large body is random, so it stays over 1 MiB compressed."""
    for text in ("y" * 10, base64.b64encode(os.urandom(1_500_000)).decode()):
        resp = await post_json(f"{stack.url}/v1/responses", {"input": text}, {"session_id": "sess-9"})
        assert resp.code == 200, resp.body
        seen = stack.backend.state.posts[-1]
        headers = {k.lower(): v for k, v in seen.headers.items()}
        assert seen.method == "POST" and seen.path.endswith("/responses")
        assert seen.body["input"][0]["content"][0]["text"] == text
        assert int(headers["content-length"]) == len(seen.raw)
        assert len(text) < 1024 or (headers["content-encoding"] == "zstd" and len(seen.raw) > 1 << 20)
        assert headers["content-type"] == "application/json"
        assert headers["accept"] == "text/event-stream"
        assert headers["user-agent"].startswith("codexd/")
        assert headers["authorization"].startswith("Bearer ") and headers["chatgpt-account-id"]
        assert headers["session-id"] == "sess-9"
        assert "expect" not in headers and "pragma" not in headers
        assert set(headers["accept-encoding"].replace(" ", "").split(",")) == {"gzip", "deflate"}


async def test_a_compressed_error_answer_reaches_the_client_decoded(stack):
    error = {"error": {"type": "invalid_request_error", "message": "that model is not offered here"}}
    stack.backend.state.push(
        Script(
            status=400,
            body=gzip.compress(json.dumps(error).encode()),
            headers={"Content-Encoding": "gzip"},
            content_type="application/json",
        )
    )
    resp = await post_json(f"{stack.url}/v1/responses", {"input": "hi"})
    assert resp.code == 400
    assert "that model is not offered here" in body_json(resp)["error"]["message"]


async def test_stream_requests_take_up_settings_that_changed(stack, monkeypatch):
    """The stream options are worked out once per settings object; a reload (new settings) must reach the
    next request: here the connect timeout, so that a backend that does not accept connections fails fast."""
    upstream = stack.state.upstream
    used: list[dict[int, object]] = []
    build = client_module.stream_options

    def counted(settings: Settings) -> client_module.CurlOptions:
        options = build(settings)
        used.append(dict(options))
        return options

    monkeypatch.setattr(client_module, "stream_options", counted)
    assert (await post_json(f"{stack.url}/v1/responses", {"input": "hi"})).code == 200
    assert (await post_json(f"{stack.url}/v1/responses", {"input": "hi"})).code == 200
    upstream.settings = dataclasses.replace(upstream.settings, connect_timeout=7.5)
    assert (await post_json(f"{stack.url}/v1/responses", {"input": "hi"})).code == 200
    assert [options[pycurl.CONNECTTIMEOUT_MS] for options in used][-1] == 7500
    assert len(used) == 2  # once for the first settings, once for the new: not once per request
