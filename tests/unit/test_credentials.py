"""Credentials: reading auth.json, deciding when to refresh, refreshing once, remembering dead logins."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from codexd.credentials import Auth, Credentials
from codexd.errors import CodexdError, ErrorKind
from tests.fakes.token_endpoint import DirectPost, TokenEndpointState
from tests.fakes.tokens import ACCOUNT_ID, auth_document, make_jwt, read_claims, write_auth

URL = "https://auth.example.test/oauth/token"
NOW = 1_800_000_000.0


def run(coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def auth_path(tmp_path: Path) -> Path:
    return tmp_path / "codex" / "auth.json"


@pytest.fixture
def endpoint() -> TokenEndpointState:
    return TokenEndpointState()


def make_credentials(
    path: Path, endpoint: TokenEndpointState, clock: Clock | None = None, **kwargs: Any
) -> tuple[Credentials, DirectPost, list[str]]:
    post = DirectPost(endpoint)
    results: list[str] = []
    creds = Credentials(path, URL, post, clock=clock or time.time, on_refresh=results.append, **kwargs)
    return creds, post, results


def expired_doc(**extra: Any) -> dict[str, Any]:
    return auth_document(access_token=make_jwt(exp=time.time() - 60, serial="old"), **extra)


@contextmanager
def holding_lock(auth_path: Path) -> Iterator[None]:
    """Another process's refresh, seen from codexd: the sidecar lock is taken."""
    fd = os.open(auth_path.with_name("auth.json.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --- reading auth.json -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "mode"),
    [
        ({"auth_mode": "chatgpt", "OPENAI_API_KEY": "sk-exchanged"}, "chatgpt"),  # auth_mode wins over a key
        ({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-real"}, "apikey"),
        ({"auth_mode": "chatgptAuthTokens"}, "chatgpt"),
        ({"auth_mode": "agentIdentity"}, "chatgpt"),  # unknown mode with tokens
        ({"auth_mode": None, "OPENAI_API_KEY": "sk-real"}, "apikey"),  # absent: a key string means apikey
        ({"auth_mode": None, "OPENAI_API_KEY": None}, "chatgpt"),
    ],
)
def test_mode_detection(auth_path: Path, endpoint: TokenEndpointState, changes: dict[str, Any], mode: str) -> None:
    doc = auth_document()
    doc.update(changes)
    if changes.get("auth_mode", "") is None:
        del doc["auth_mode"]
    write_auth(auth_path, doc)
    creds, _, _ = make_credentials(auth_path, endpoint)
    auth = run(creds.current())
    assert auth.mode == mode
    if mode == "apikey":
        assert auth.headers() == {"Authorization": "Bearer sk-real"}
    else:
        assert auth.headers() == {
            "Authorization": f"Bearer {doc['tokens']['access_token']}",
            "ChatGPT-Account-ID": ACCOUNT_ID,
        }
    assert endpoint.count == 0


def test_apikey_mode_never_refreshes(auth_path: Path, endpoint: TokenEndpointState) -> None:
    write_auth(auth_path, {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-real", "tokens": None})
    creds, _, _ = make_credentials(auth_path, endpoint, clock=Clock(NOW + 10**9))
    assert run(creds.current()) == Auth(mode="apikey", api_key="sk-real")
    with pytest.raises(CodexdError) as info:
        run(creds.after_unauthorized(Auth(mode="apikey", api_key="sk-real")))
    assert info.value.kind is ErrorKind.LOGIN_REQUIRED
    assert endpoint.count == 0


def test_account_id_falls_back_to_the_id_token_claim(auth_path: Path, endpoint: TokenEndpointState) -> None:
    doc = auth_document()
    doc["tokens"]["id_token"] = make_jwt(exp=time.time() + 3600, account_id="acct-from-claim-9999")
    del doc["tokens"]["account_id"]
    write_auth(auth_path, doc)
    creds, _, _ = make_credentials(auth_path, endpoint)
    auth = run(creds.current())
    assert auth.account_id == "acct-from-claim-9999"
    assert auth.headers()["ChatGPT-Account-ID"] == "acct-from-claim-9999"


def test_missing_login_reports_codex_login(auth_path: Path, endpoint: TokenEndpointState) -> None:
    creds, _, _ = make_credentials(auth_path, endpoint)  # the file does not exist: construction must not fail
    with pytest.raises(CodexdError) as info:
        run(creds.current())
    assert info.value.kind is ErrorKind.LOGIN_REQUIRED
    assert info.value.message == f"No Codex login found at {auth_path}: run `codex login`"
    write_auth(auth_path, {"auth_mode": "chatgpt", "OPENAI_API_KEY": None, "tokens": {"refresh_token": "rt-0"}})
    with pytest.raises(CodexdError) as info:
        run(creds.current())
    assert info.value.kind is ErrorKind.LOGIN_REQUIRED
    assert "run `codex login`" in info.value.message
    write_auth(auth_path, auth_document())  # `codex login` ran: picked up without a restart
    assert run(creds.current()).mode == "chatgpt"


def test_file_is_parsed_again_only_when_it_changes(auth_path: Path, endpoint: TokenEndpointState) -> None:
    first = auth_document(access_token=make_jwt(exp=time.time() + 3600, serial="A"))
    write_auth(auth_path, first)
    creds, _, _ = make_credentials(auth_path, endpoint)
    assert read_claims(run(creds.current()).access_token)["jti"] == "A"
    st = os.stat(auth_path)
    # Same size, inode and mtime: treated as unchanged, the cached tokens stay in use.
    with open(auth_path, "r+b") as fh:
        second = auth_document(access_token=make_jwt(exp=time.time() + 3600, serial="B"))
        fh.write(json.dumps(second, indent=2).encode())
    assert os.stat(auth_path).st_size == st.st_size
    os.utime(auth_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert read_claims(run(creds.current()).access_token)["jti"] == "A"
    os.utime(auth_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert read_claims(run(creds.current()).access_token)["jti"] == "B"


def test_truncated_file_is_read_again(auth_path: Path, endpoint: TokenEndpointState) -> None:
    doc = auth_document()
    text = json.dumps(doc, indent=2)
    auth_path.parent.mkdir(parents=True)
    auth_path.write_text(text[: len(text) // 2])  # caught while the CLI rewrites it in place
    creds, _, _ = make_credentials(auth_path, endpoint)

    async def scenario() -> Auth:
        asyncio.get_running_loop().call_later(0.06, auth_path.write_text, text)
        return await creds.current()

    assert run(scenario()).access_token == doc["tokens"]["access_token"]


def test_corrupt_file_is_reported_after_retries(auth_path: Path, endpoint: TokenEndpointState) -> None:
    auth_path.parent.mkdir(parents=True)
    auth_path.write_text('{"auth_mode": "chatgpt", "tok')
    creds, _, _ = make_credentials(auth_path, endpoint)
    started = time.monotonic()
    with pytest.raises(CodexdError) as info:
        run(creds.current())
    assert time.monotonic() - started >= 0.15
    assert info.value.kind is ErrorKind.LOGIN_REQUIRED
    assert "not valid JSON" in info.value.message


def _half_written(path: Path, doc: dict[str, Any]) -> str:
    """Write the first half of ``doc`` over ``path`` in place, as a CLI paused mid-write leaves it; the whole text."""
    text = json.dumps(doc, indent=2)
    path.write_text(text[: len(text) // 2])
    return text


def test_a_file_half_written_for_longer_than_the_retries_leaves_the_login_in_use(
    auth_path: Path, endpoint: TokenEndpointState, caplog: pytest.LogCaptureFixture
) -> None:
    write_auth(auth_path, auth_document(access_token=make_jwt(exp=time.time() + 3600, serial="A")))
    creds, _, _ = make_credentials(auth_path, endpoint)
    assert read_claims(run(creds.current()).access_token)["jti"] == "A"
    text = _half_written(auth_path, auth_document(access_token=make_jwt(exp=time.time() + 3600, serial="B")))
    with caplog.at_level(logging.WARNING, logger="codexd.credentials"):
        for _ in range(3):  # the writer stays paused: the login read before serves
            assert read_claims(run(creds.current()).access_token)["jti"] == "A"
    assert creds.describe()["ok"]  # and /ready says so, as it is what requests use
    assert [r.getMessage() for r in caplog.records] == [
        f"{auth_path} is not valid JSON; using the login read before until it changes"
    ]
    auth_path.write_text(text)  # the writer finishes
    assert read_claims(run(creds.current()).access_token)["jti"] == "B"
    assert endpoint.count == 0


def test_a_refresh_never_redeems_the_token_read_before_a_half_written_file(
    auth_path: Path, endpoint: TokenEndpointState
) -> None:
    """The CLI redeemed the due token and is writing its new one: codexd waits for the whole file and uses it."""
    write_auth(auth_path, auth_document(expires_in=60))  # due, still valid
    creds, _, results = make_credentials(auth_path, endpoint)
    assert creds.describe()["ok"]  # the due login read, as a running daemon has it
    theirs = make_jwt(exp=time.time() + 3600, serial="theirs")
    text = _half_written(auth_path, auth_document(access_token=theirs, refresh_token="rt-theirs"))

    async def scenario() -> Auth:
        asyncio.get_running_loop().call_later(0.5, auth_path.write_text, text)
        return await creds.current()

    assert run(scenario()).access_token == theirs
    assert endpoint.count == 0  # rt-0, spent by the CLI, was never presented
    assert results == ["reused_other"]


def test_a_refresh_due_while_the_file_stays_unparsable_keeps_the_valid_token(
    auth_path: Path, endpoint: TokenEndpointState
) -> None:
    doc = auth_document(expires_in=60)  # due, still valid
    write_auth(auth_path, doc)
    creds, _, results = make_credentials(auth_path, endpoint)
    assert creds.describe()["ok"]
    auth_path.write_text('{"auth_mode": "chatgpt", "tok')  # damaged for good
    started = time.monotonic()
    assert run(creds.current()).access_token == doc["tokens"]["access_token"]
    assert time.monotonic() - started >= 1.9  # the refresh waited for a whole file before giving up on it
    assert endpoint.count == 0
    assert results == ["transient_failure"]


# --- when to refresh ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds_left", "refreshed"), [(301, False), (299, True), (-10, True)])
def test_refresh_window_is_five_minutes(
    auth_path: Path, endpoint: TokenEndpointState, seconds_left: int, refreshed: bool
) -> None:
    old = make_jwt(exp=NOW + seconds_left, serial="old")
    write_auth(auth_path, auth_document(access_token=old))
    creds, _, results = make_credentials(auth_path, endpoint, clock=Clock())
    auth = run(creds.current())
    assert (auth.access_token != old) is refreshed
    assert endpoint.count == int(refreshed)
    assert results == (["success"] if refreshed else [])


@pytest.mark.parametrize(
    ("last_refresh", "refreshed"),
    [("2027-01-08T08:00:00.123456789Z", False), ("2027-01-06T08:00:00Z", True), (None, True)],
)
def test_token_without_exp_refreshes_after_eight_days(
    auth_path: Path, endpoint: TokenEndpointState, last_refresh: str | None, refreshed: bool
) -> None:
    clock = Clock(1_799_913_600.0)  # 2027-01-14T08:00:00Z
    doc = auth_document(access_token="opaque-access-token-without-exp")
    if last_refresh is None:
        del doc["last_refresh"]
    else:
        doc["last_refresh"] = last_refresh
    write_auth(auth_path, doc)
    creds, _, _ = make_credentials(auth_path, endpoint, clock=clock)
    run(creds.current())
    assert endpoint.count == int(refreshed)
    if refreshed:
        assert json.loads(auth_path.read_text())["last_refresh"] == "2027-01-14T08:00:00.000000Z"


def test_fifty_concurrent_callers_share_one_refresh(auth_path: Path, endpoint: TokenEndpointState) -> None:
    write_auth(auth_path, expired_doc())
    endpoint.delay = 0.05
    creds, _, results = make_credentials(auth_path, endpoint)

    async def scenario() -> list[Auth]:
        return await asyncio.gather(*(creds.current() for _ in range(50)))

    auths = run(scenario())
    assert endpoint.count == 1
    assert {a.access_token for a in auths} == {endpoint.issued[0]["access_token"]}
    assert results == ["success"]


def test_cancelled_caller_does_not_cancel_the_refresh(auth_path: Path, endpoint: TokenEndpointState) -> None:
    write_auth(auth_path, expired_doc())
    endpoint.delay = 0.1
    creds, _, _ = make_credentials(auth_path, endpoint)

    async def scenario() -> Auth:
        first = asyncio.ensure_future(creds.current())
        second = asyncio.ensure_future(creds.current())
        await asyncio.sleep(0.03)
        first.cancel()
        return await second

    assert run(scenario()).access_token == endpoint.issued[0]["access_token"]
    assert json.loads(auth_path.read_text())["tokens"]["refresh_token"] == "rt-1"


def test_token_refreshed_by_another_process_under_the_lock_is_reused(
    auth_path: Path, endpoint: TokenEndpointState
) -> None:
    write_auth(auth_path, expired_doc())
    creds, _, results = make_credentials(auth_path, endpoint)
    theirs = make_jwt(exp=time.time() + 3600, serial="theirs")

    async def scenario() -> Auth:
        with holding_lock(auth_path):
            task = asyncio.ensure_future(creds.current())
            await asyncio.sleep(0.1)  # codexd is now waiting for the lock
            assert not task.done()
            write_auth(auth_path, auth_document(access_token=theirs, refresh_token="rt-theirs"))
        return await task

    assert run(scenario()).access_token == theirs
    assert endpoint.count == 0
    assert results == ["reused_other"]


def test_lock_held_too_long_is_a_transient_error(auth_path: Path, endpoint: TokenEndpointState) -> None:
    write_auth(auth_path, expired_doc())
    creds, _, results = make_credentials(auth_path, endpoint, lock_timeout=0.2)
    with holding_lock(auth_path), pytest.raises(CodexdError) as info:
        run(creds.current())
    assert info.value.kind is ErrorKind.UNAVAILABLE and info.value.transient
    assert endpoint.count == 0
    assert results == ["transient_failure"]


# --- after an upstream 401 ---------------------------------------------------------------------------


def test_after_401_a_newer_token_on_disk_is_used_without_refresh(auth_path: Path, endpoint: TokenEndpointState) -> None:
    write_auth(auth_path, auth_document())
    creds, _, _ = make_credentials(auth_path, endpoint)
    failed = run(creds.current())
    newer = make_jwt(exp=time.time() + 3600, serial="cli-refreshed")
    write_auth(auth_path, auth_document(access_token=newer))
    assert run(creds.after_unauthorized(failed)).access_token == newer
    assert endpoint.count == 0


def test_after_401_the_same_token_is_refreshed_once(auth_path: Path, endpoint: TokenEndpointState) -> None:
    write_auth(auth_path, auth_document(expires_in=3600))  # not due: only the 401 says it is dead
    endpoint.delay = 0.05
    creds, _, _ = make_credentials(auth_path, endpoint)
    failed = run(creds.current())

    async def scenario() -> list[Auth]:
        return await asyncio.gather(*(creds.after_unauthorized(failed) for _ in range(10)))

    auths = run(scenario())
    assert endpoint.count == 1
    assert {a.access_token for a in auths} == {endpoint.issued[0]["access_token"]}
    late = run(creds.after_unauthorized(failed))  # a request that started before the refresh
    assert late.access_token == endpoint.issued[0]["access_token"]
    assert endpoint.count == 1


# --- refresh answers ---------------------------------------------------------------------------------


def test_written_file_keeps_every_key_and_the_cli_format(auth_path: Path, endpoint: TokenEndpointState) -> None:
    doc = expired_doc(agent_identity={"id": "agent-1", "nested": [1, 2]})
    doc["OPENAI_API_KEY"] = "sk-exchanged"
    write_auth(auth_path, doc)
    os.chmod(auth_path, 0o644)
    clock = Clock(time.time())
    creds, _, _ = make_credentials(auth_path, endpoint, clock=clock)
    auth = run(creds.current())

    text = auth_path.read_text()
    written = json.loads(text)
    assert text == json.dumps(written, indent=2)  # 2-space indent, no trailing newline
    assert not text.endswith("\n")
    assert os.stat(auth_path).st_mode & 0o777 == 0o600
    assert list(written) == list(doc)
    assert list(written["tokens"]) == list(doc["tokens"])
    issued = endpoint.issued[0]
    assert written["tokens"] == {
        "id_token": issued["id_token"],
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "account_id": ACCOUNT_ID,
    }
    assert {k: v for k, v in written.items() if k not in ("tokens", "last_refresh")} == {
        k: v for k, v in doc.items() if k not in ("tokens", "last_refresh")
    }
    assert written["last_refresh"].endswith("Z") and written["last_refresh"] != doc["last_refresh"]
    assert auth.access_token == issued["access_token"]
    assert [p.name for p in auth_path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_tokens_missing_from_the_answer_are_kept(auth_path: Path, endpoint: TokenEndpointState) -> None:
    doc = expired_doc()
    write_auth(auth_path, doc)
    new_access = make_jwt(exp=time.time() + 3600, serial="new")
    endpoint.failures.append((200, {"access_token": new_access}))
    creds, _, _ = make_credentials(auth_path, endpoint)
    assert run(creds.current()).access_token == new_access
    tokens = json.loads(auth_path.read_text())["tokens"]
    assert tokens == {**doc["tokens"], "access_token": new_access}


def test_refresh_request_body(auth_path: Path, endpoint: TokenEndpointState) -> None:
    write_auth(auth_path, expired_doc())
    creds, post, _ = make_credentials(auth_path, endpoint)
    run(creds.current())
    assert post.urls == [URL]
    assert endpoint.calls == [
        {"client_id": "app_EMoamEEZ73f0CkXaXp7hrann", "grant_type": "refresh_token", "refresh_token": "rt-0"}
    ]


def test_symlinked_auth_file_stays_a_symlink(tmp_path: Path, endpoint: TokenEndpointState) -> None:
    real = write_auth(tmp_path / "store" / "auth.json", expired_doc())
    link = tmp_path / "codex" / "auth.json"
    link.parent.mkdir()
    link.symlink_to(real)
    creds, _, _ = make_credentials(link, endpoint)
    run(creds.current())
    assert link.is_symlink()
    assert json.loads(real.read_text())["tokens"]["refresh_token"] == "rt-1"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": {"code": "refresh_token_reused"}}),
        (400, {"error": {"code": "refresh_token_expired", "message": "expired"}}),
        (401, {"error": {"code": "refresh_token_invalidated"}}),
        (400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}),
        (403, {"code": "account_deactivated"}),
        (401, b"<html>Unauthorized</html>"),
    ],
)
def test_permanent_failure_is_remembered_until_the_file_changes(
    auth_path: Path, endpoint: TokenEndpointState, status: int, body: Any
) -> None:
    write_auth(auth_path, expired_doc())
    endpoint.fail_always = (status, body)
    creds, _, results = make_credentials(auth_path, endpoint)
    for _ in range(3):
        with pytest.raises(CodexdError) as info:
            run(creds.current())
        assert info.value.kind is ErrorKind.LOGIN_REQUIRED
        assert info.value.code == "token_expired"
        assert "run `codex login`" in info.value.message
    with pytest.raises(CodexdError):
        run(creds.after_unauthorized(Auth(mode="chatgpt", access_token="whatever")))
    assert endpoint.count == 1
    assert results == ["permanent_failure"]
    assert creds.describe()["ok"] is False

    endpoint.fail_always = None
    endpoint.valid.add("rt-relogin")
    write_auth(auth_path, expired_doc(refresh_token="rt-relogin"))  # the user ran `codex login`
    assert run(creds.current()).access_token == endpoint.issued[0]["access_token"]
    assert endpoint.count == 2
    assert creds.describe()["ok"] is True


def test_transient_failure_is_not_remembered(auth_path: Path, endpoint: TokenEndpointState) -> None:
    write_auth(auth_path, expired_doc())
    endpoint.failures.append((502, {"error": {"message": "bad gateway"}}))
    creds, post, results = make_credentials(auth_path, endpoint)
    with pytest.raises(CodexdError) as info:
        run(creds.current())
    assert info.value.kind is ErrorKind.UNAVAILABLE and info.value.transient
    assert "502" in info.value.message
    assert creds.describe()["ok"] is False
    post.error = OSError("connection refused")
    with pytest.raises(CodexdError) as info:
        run(creds.current())
    assert info.value.kind is ErrorKind.UNAVAILABLE and info.value.transient
    post.error = None
    assert run(creds.current()).access_token == endpoint.issued[0]["access_token"]
    assert endpoint.count == 3
    assert results == ["transient_failure", "transient_failure", "success"]
    assert creds.describe()["ok"] is True


def test_transient_failure_keeps_a_still_valid_token_for_a_while(auth_path: Path, endpoint: TokenEndpointState) -> None:
    still_valid = make_jwt(exp=NOW + 120, serial="old")
    write_auth(auth_path, auth_document(access_token=still_valid))
    endpoint.failures.append((500, "oops"))
    clock = Clock()
    creds, _, _ = make_credentials(auth_path, endpoint, clock=clock)
    assert run(creds.current()).access_token == still_valid
    assert run(creds.current()).access_token == still_valid
    assert endpoint.count == 1  # no hammering while the endpoint is down
    clock.now += 20
    assert run(creds.current()).access_token == endpoint.issued[0]["access_token"]
    assert endpoint.count == 2


# --- no secrets anywhere -----------------------------------------------------------------------------


def test_no_secret_in_logs_errors_or_describe(
    auth_path: Path, endpoint: TokenEndpointState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    doc = expired_doc(refresh_token="rt-0")
    doc["OPENAI_API_KEY"] = "sk-exchanged-secret"
    write_auth(auth_path, doc)
    secrets = {*doc["tokens"].values(), "rt-0", "sk-exchanged-secret"} - {ACCOUNT_ID}
    creds, post, _ = make_credentials(auth_path, endpoint)
    messages: list[str] = []

    def attempt() -> None:
        try:
            run(creds.current())
        except CodexdError as err:
            messages.extend([str(err), repr(err), err.message])

    endpoint.failures.append((500, {"error": "bad token rt-0", "echo": doc["tokens"]}))  # a body echoing secrets
    attempt()
    post.error = OSError(f"boom {doc['tokens']['access_token']}")
    attempt()
    post.error = None
    auth = run(creds.current())
    secrets |= set(endpoint.issued[0].values()) - {"Bearer", 3600}
    messages += [repr(auth), json.dumps(creds.describe())]
    write_auth(auth_path, expired_doc(refresh_token="rt-0"))
    attempt()  # rt-0 was redeemed already: reused -> permanent
    messages += [json.dumps(creds.describe())]

    assert len(messages) >= 10
    logged = [r.getMessage() for r in caplog.records]
    assert any("permanently" in line for line in logged)
    for text in messages + logged:
        for secret in secrets:
            assert secret[:12] not in text  # not even a prefix of one


def test_describe_reports_status_without_network(auth_path: Path, endpoint: TokenEndpointState) -> None:
    creds, _, _ = make_credentials(auth_path, endpoint, clock=Clock())
    missing = creds.describe()
    assert missing["ok"] is False and "codex login" in missing["error"]
    write_auth(auth_path, auth_document(access_token=make_jwt(exp=NOW + 1000)))
    assert creds.describe() == {
        "ok": True,
        "mode": "chatgpt",
        "account_id": "acct…cdef",
        "expires_in": 1000,
        "error": None,
    }
    write_auth(auth_path, auth_document(access_token=make_jwt(exp=NOW - 5)))
    assert creds.describe()["ok"] is True  # expired but refreshable
    assert endpoint.count == 0
