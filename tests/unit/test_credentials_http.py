"""Credentials against the fake token endpoint over HTTP, and two processes sharing one auth.json."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from codexd.credentials import Credentials
from codexd.errors import CodexdError, ErrorKind
from tests.fakes.token_endpoint import TOKEN_PATH, TokenEndpointState, make_token_app
from tests.fakes.tokens import auth_document, make_jwt, read_claims, write_auth

REPO = Path(__file__).resolve().parents[2]

# A second codexd process: refreshes through the same endpoint and prints what it ended up with.
OTHER_PROCESS = """
import asyncio, json, sys, urllib.error, urllib.request
from pathlib import Path
from codexd.credentials import Credentials
from tests.fakes.tokens import read_claims

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

async def post(url, body):
    def send():
        request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        try:
            with opener.open(request, timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
    return await asyncio.to_thread(send)

async def main():
    results = []
    auth = await Credentials(Path(sys.argv[2]), sys.argv[1], post, on_refresh=results.append).current()
    print(json.dumps({"jti": read_claims(auth.access_token)["jti"], "exp": auth.expires_at, "results": results}))

asyncio.run(main())
"""


def run(coro: Coroutine[Any, Any, Any], timeout: float = 20) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@asynccontextmanager
async def token_server(state: TokenEndpointState) -> AsyncIterator[str]:
    sock, port = bind_unused_port()
    server = HTTPServer(make_token_app(state))
    server.add_sockets([sock])
    try:
        yield f"http://127.0.0.1:{port}{TOKEN_PATH}"
    finally:
        server.stop()
        await server.close_all_connections()


@asynccontextmanager
async def http_post() -> AsyncIterator[Any]:
    client = AsyncHTTPClient(force_instance=True)

    async def post(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
        answer = await client.fetch(
            url,
            method="POST",
            body=json.dumps(body),
            headers={"Content-Type": "application/json"},
            raise_error=False,
        )
        return answer.code, answer.body

    try:
        yield post
    finally:
        client.close()


async def other_process(url: str, auth_path: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OTHER_PROCESS,
        url,
        str(auth_path),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def outcome(process: asyncio.subprocess.Process) -> dict[str, Any]:
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


def expired_doc() -> dict[str, Any]:
    return auth_document(access_token=make_jwt(exp=time.time() - 60, serial="old"))


def test_refresh_over_http_then_a_reused_token_needs_login(tmp_path: Path) -> None:
    auth_path = write_auth(tmp_path / "auth.json", expired_doc())
    state = TokenEndpointState()

    async def scenario() -> None:
        async with token_server(state) as url, http_post() as post:
            creds = Credentials(auth_path, url, post)
            auth = await creds.current()
            assert auth.access_token == state.issued[0]["access_token"]
            assert json.loads(auth_path.read_text())["tokens"]["refresh_token"] == "rt-1"
            # A stale copy of the old login comes back (e.g. restored from a backup): rt-0 is spent.
            write_auth(auth_path, expired_doc())
            for _ in range(2):
                with pytest.raises(CodexdError) as info:
                    await creds.current()
                assert info.value.kind is ErrorKind.LOGIN_REQUIRED

    run(scenario())
    assert state.redeemed == ["rt-0"]
    assert state.rejected_reuse == ["rt-0"]
    assert state.count == 2


def test_form_bodies_are_accepted_by_the_fake_endpoint() -> None:
    state = TokenEndpointState()

    async def scenario() -> tuple[int, bytes]:
        async with token_server(state) as url:
            client = AsyncHTTPClient(force_instance=True)
            try:
                answer = await client.fetch(
                    url,
                    method="POST",
                    body="client_id=app_EMoamEEZ73f0CkXaXp7hrann&grant_type=refresh_token&refresh_token=rt-0",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    raise_error=False,
                )
            finally:
                client.close()
            return answer.code, answer.body

    status, body = run(scenario())
    assert status == 200
    assert read_claims(json.loads(body)["access_token"])["exp"] > time.time() + 3000


def test_second_process_waits_for_the_first_and_reuses_its_token(tmp_path: Path) -> None:
    auth_path = write_auth(tmp_path / "auth.json", expired_doc())
    state = TokenEndpointState(delay=0.5)

    async def scenario() -> tuple[dict[str, Any], str]:
        async with token_server(state) as url, http_post() as post:
            process = await other_process(url, auth_path)
            while state.in_flight == 0:  # the other process holds the lock and is refreshing
                await asyncio.sleep(0.01)
                assert process.returncode is None
            results: list[str] = []
            auth = await Credentials(auth_path, url, post, on_refresh=results.append).current()
            assert results == ["reused_other"]
            return await outcome(process), auth.access_token

    theirs, ours = run(scenario())
    assert state.count == 1 and state.redeemed == ["rt-0"]
    assert theirs["results"] == ["success"]
    assert read_claims(ours)["jti"] == theirs["jti"] == "1"


def test_processes_racing_redeem_each_refresh_token_once(tmp_path: Path) -> None:
    auth_path = write_auth(tmp_path / "auth.json", expired_doc())
    state = TokenEndpointState(delay=0.2)

    async def scenario() -> list[float]:
        async with token_server(state) as url, http_post() as post:
            processes = [await other_process(url, auth_path) for _ in range(2)]
            auth = await Credentials(auth_path, url, post).current()
            others = [await outcome(p) for p in processes]
            assert auth.expires_at is not None
            return [auth.expires_at] + [o["exp"] for o in others]

    expiries = run(scenario())
    assert state.rejected_reuse == []
    assert len(state.redeemed) == len(set(state.redeemed)) >= 1
    assert all(exp > time.time() + 3000 for exp in expiries)
    written = json.loads(auth_path.read_text())["tokens"]
    assert written["refresh_token"] in state.valid
