"""Two ``codexd serve`` processes and a Codex CLI imitation share one auth.json under constant refreshes.

Both daemons use the same CODEX_HOME and one fake backend + token endpoint (a thread of this process).
Every access token the fake issues is inside codexd's 5-minute refresh window one to two seconds after it
was issued, so the daemons refresh all the time while clients keep them busy. Meanwhile a writer imitates
the Codex CLI: it re-reads auth.json, redeems the refresh token itself at the same endpoint and rewrites
the file in place (truncate, then write; non-atomic, no lock, 2-space JSON), as the CLI does.

Residual window, by design of the imitation: the CLI does not take codexd's lock, so if it redeemed a
token at the very moment a daemon did (both seeing it due), one of the two would present a spent refresh
token; re-reading under the lock shrinks that window but cannot close it. The imitation therefore
refreshes on its own schedule, right after a daemon wrote a fresh token (like a CLI that refreshes after
its own 401 or at start-up), and needs ``MARGIN`` seconds of freshness left, far more than its read, POST
and write take. What is asserted is codexd's side: the daemons never present a spent token, and read the
CLI's half-written files and its rotations without failing a single request. The window itself, the CLI
winning a simultaneous refresh, is the second test: codexd then waits for the CLI's file and fails nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codexd.credentials import CLIENT_ID, REFRESH_WINDOW
from tests.fakes.tokens import auth_document, make_jwt, read_claims, write_auth
from tests.harness import start_stack, write_login
from tests.stress.rig import (
    ENDPOINTS,
    Answer,
    ServeProcess,
    call,
    finished_properly,
    serve_process,
    threaded_backend,
    write_config,
)

ROUNDS = 16
EXPIRES_IN = REFRESH_WINDOW + 2  # exp is whole seconds: every token is outside the window for 1 to 2 s
MARGIN = 0.5  # seconds of freshness the CLI imitation needs before it redeems
CLIENTS = 6
EXTRA = {"cli_setting": {"kept": True}}  # a key codexd does not know and must keep

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Observed:
    """What the poller and the imitation saw."""

    writing: bool = False  # the imitation is between its truncate and its last write
    reads: int = 0
    torn_during_cli_write: int = 0
    violations: list[str] = field(default_factory=list)
    cli_redeemed: list[str] = field(default_factory=list)
    cli_issued: list[str] = field(default_factory=list)  # refresh tokens the imitation received and wrote
    cli_rejected: list[str] = field(default_factory=list)
    codexd_writes_checked: int = 0


def post_refresh(url: str, refresh_token: str) -> tuple[int, dict[str, Any]]:
    """The CLI's refresh request (blocking)."""
    body = json.dumps({"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh_token})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    try:
        with _opener.open(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def freshness_left(doc: dict[str, Any]) -> float:
    """Seconds until the access token enters codexd's refresh window."""
    return float(read_claims(doc["tokens"]["access_token"])["exp"]) - REFRESH_WINDOW - time.time()


def snapshot(path: Path) -> tuple[bytes, int]:
    """auth.json's bytes and permission bits. Read synchronously on purpose: the imitation writes on the same
    event loop, so whether a read happened mid-way through one of its writes is known exactly."""
    return path.read_bytes(), path.stat().st_mode & 0o777


async def poll(path: Path, seen: Observed, stop: asyncio.Event) -> None:
    """Read auth.json every few milliseconds: whole JSON and mode 0600, except mid-way through a CLI write."""
    while not stop.is_set():
        raw, mode = snapshot(path)
        seen.reads += 1
        try:
            json.loads(raw)
        except ValueError:
            if seen.writing:
                seen.torn_during_cli_write += 1
            else:
                seen.violations.append(f"torn auth.json outside any CLI write: {raw[:80]!r}")
        if mode != 0o600:
            seen.violations.append(f"auth.json mode {mode:o}")
        await asyncio.sleep(0.003)


async def imitate_cli(path: Path, refresh_url: str, seen: Observed) -> None:
    """``ROUNDS`` times: wait for a daemon's refresh, check its file, then refresh as the CLI and rewrite in place."""
    last_token = json.loads(snapshot(path)[0])["tokens"]["refresh_token"]
    done = 0
    while done < ROUNDS:
        deadline = time.monotonic() + 15
        while True:  # a daemon wrote a token the imitation has not seen
            raw, mode = snapshot(path)
            doc = json.loads(raw)
            token = doc["tokens"]["refresh_token"]
            if token != last_token and token not in seen.cli_issued:
                break
            assert time.monotonic() < deadline, "no daemon refreshed for 15 s"
            await asyncio.sleep(0.003)
        last_token = token
        if mode != 0o600 or doc.get("cli_setting") != EXTRA["cli_setting"]:
            seen.violations.append(f"codexd wrote a file with mode {mode:o} or lost a key")
        seen.codexd_writes_checked += 1
        doc = json.loads(snapshot(path)[0])  # the CLI's guarded reload: the file as it is right now
        if freshness_left(doc) < MARGIN:
            continue  # the daemons may be about to refresh this one: see the module docstring
        refresh_token = doc["tokens"]["refresh_token"]
        status, answer = await asyncio.to_thread(post_refresh, refresh_url, refresh_token)
        if status != 200:
            seen.cli_rejected.append(refresh_token)
            continue
        seen.cli_redeemed.append(refresh_token)
        seen.cli_issued.append(answer["refresh_token"])
        doc["tokens"].update({k: answer[k] for k in ("id_token", "access_token", "refresh_token")})
        doc["last_refresh"] = "2026-11-22T00:00:00.000000Z"
        text = json.dumps(doc, indent=2).encode()
        seen.writing = True
        try:  # truncate and write in two parts with a pause: readers can catch it half-written
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, text[: len(text) // 2])
                await asyncio.sleep(0.01)
                os.write(fd, text[len(text) // 2 :])
            finally:
                os.close(fd)
        finally:
            seen.writing = False
        done += 1


async def keep_busy(daemons: list[ServeProcess], stop: asyncio.Event, failures: list[str], worker: int) -> int:
    """Requests through both daemons in turn until ``stop``; returns how many were sent."""
    sent = 0
    kinds = list(ENDPOINTS)
    while not stop.is_set():
        kind, stream = kinds[(sent + worker) % len(kinds)], sent % 2 == 0
        daemon = daemons[(sent + worker) % len(daemons)]
        answer = await call(daemon.port, ENDPOINTS[kind]["path"], {**ENDPOINTS[kind]["body"], "stream": stream})
        problem = finished_properly(kind, stream, answer)
        if problem is not None:
            failures.append(f"{daemon.port} {kind} stream={stream}: {problem}")
        sent += 1
    return sent


@pytest.mark.slow
def test_two_daemons_and_the_cli_share_auth_json_without_reuse_or_failure(tmp_path: Path) -> None:
    home = tmp_path / "codex"
    path = write_auth(
        home / "auth.json",
        auth_document(access_token=make_jwt(exp=time.time() + EXPIRES_IN, serial="first"), **EXTRA),
    )
    os.chmod(path, 0o600)
    seen = Observed()
    failures: list[str] = []
    with threaded_backend() as fake:
        fake.call(lambda: setattr(fake.fake.token_state, "expires_in", EXPIRES_IN))
        config = write_config(tmp_path / "config.toml", fake.fake)
        with (
            serve_process(tmp_path, home, config, name="codexd-a") as first,
            serve_process(tmp_path, home, config, name="codexd-b") as second,
        ):

            async def scenario() -> int:
                stop = asyncio.Event()
                poller = asyncio.ensure_future(poll(path, seen, stop))
                clients = [asyncio.ensure_future(keep_busy([first, second], stop, failures, w)) for w in range(CLIENTS)]
                try:
                    await imitate_cli(path, fake.fake.refresh_url, seen)
                finally:
                    stop.set()
                    sent = sum(await asyncio.gather(*clients))
                    await poller
                return sent

            started = time.monotonic()
            sent = asyncio.run(scenario())
            seconds = time.monotonic() - started
            refreshes = [
                (
                    d.metric('codexd_token_refreshes_total{result="success"}'),
                    d.metric('codexd_token_refreshes_total{result="reused_other"}'),
                )
                for d in (first, second)
            ]
            logs = first.stderr() + second.stderr()
        state = fake.fake.token_state
        redeemed, rejected, valid = fake.call(
            lambda: (list(state.redeemed), list(state.rejected_reuse), set(state.valid))
        )
    final = json.loads(path.read_bytes())
    codexd_redeemed = [t for t in redeemed if t not in seen.cli_redeemed]
    print(
        f"\nshared login: {ROUNDS} CLI rounds in {seconds:.1f} s, {sent} requests, {len(redeemed)} redemptions "
        f"({len(codexd_redeemed)} by the daemons, refreshes/reuses per daemon {refreshes}), {seen.reads} polls, "
        f"{seen.torn_during_cli_write} torn reads during CLI writes, {seen.codexd_writes_checked} daemon writes checked"
    )
    assert failures == []  # no request failed because of the race
    assert seen.violations == []  # auth.json was whole JSON, mode 0600, every key kept, whenever codexd wrote it
    assert rejected == [] and seen.cli_rejected == []  # no refresh token presented twice
    assert len(redeemed) == len(set(redeemed))
    assert len(seen.cli_redeemed) == ROUNDS and len(codexd_redeemed) >= ROUNDS
    assert final["tokens"]["refresh_token"] in valid  # the login is still alive for everyone
    assert final["cli_setting"] == EXTRA["cli_setting"]
    assert list(home.glob(".auth.json.*.tmp")) == []  # no temp file left beside it
    assert (home / "auth.json.lock").stat().st_mode & 0o777 == 0o600
    assert "Traceback" not in logs and " ERROR " not in logs
    assert "No usable Codex login" not in logs  # the CLI's half-written files were read again, never reported


@pytest.mark.slow
def test_losing_a_refresh_race_to_the_cli_costs_no_request(tmp_path: Path) -> None:
    """The residual window itself: the CLI redeems the due token first and writes auth.json a moment later,
    while codexd is refreshing. codexd is told the token was used, waits for the CLI's file, uses its tokens."""
    home = tmp_path / "codex"
    path = write_login(home, expires_in=60)  # inside the refresh window, still valid

    async def scenario() -> tuple[Answer, dict[str, Any], list[str], list[str], list[str]]:
        stack = start_stack(home)
        tokens = stack.backend.token_state
        try:
            status, answer = tokens.answer(
                {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": "rt-0"}
            )
            assert status == 200
            doc = json.loads(path.read_text())
            doc["tokens"].update({k: answer[k] for k in ("id_token", "access_token", "refresh_token")})
            asyncio.get_running_loop().call_later(0.3, write_auth, path, doc)  # the CLI's write, a bit late
            result = await call(stack.port, "/v1/responses", {**ENDPOINTS["responses"]["body"], "stream": False})
        finally:
            stack.stop()
        bearers = [r.headers.get("Authorization", "") for r in stack.backend.state.posts]
        return result, answer, tokens.redeemed, tokens.rejected_reuse, bearers

    result, cli_answer, redeemed, rejected, bearers = asyncio.run(scenario())
    assert finished_properly("responses", False, result) is None
    assert rejected == ["rt-0"]  # codexd did lose the race (the CLI ignores its lock) ...
    assert redeemed == ["rt-0"]  # ... redeemed nothing else ...
    assert bearers == [f"Bearer {cli_answer['access_token']}"]  # ... and answered with the CLI's new token
