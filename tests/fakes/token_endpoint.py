"""A fake ``auth.openai.com/oauth/token``: rotating single-use refresh tokens, scripted failures, a call log.

Mount ``TokenEndpointHandler`` with ``dict(state=TokenEndpointState(...))`` in any Tornado application
(``make_token_app`` does it at ``/oauth/token``). Binds nothing itself; tests serve it on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import tornado.web

from tests.fakes.tokens import ACCOUNT_ID, make_jwt

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
TOKEN_PATH = "/oauth/token"


@dataclass
class TokenEndpointState:
    """What the endpoint accepts and what it has seen.

    ``valid`` holds the refresh tokens it will redeem (each once); ``failures`` is a queue of scripted
    answers ``(status, body)`` served before normal behaviour; ``fail_always`` answers every call.
    """

    valid: set[str] = field(default_factory=lambda: {"rt-0"})
    account_id: str = ACCOUNT_ID
    expires_in: float = 3600
    delay: float = 0.0
    failures: list[tuple[int, Any]] = field(default_factory=list)  # bodies: JSON values, str or bytes
    fail_always: tuple[int, Any] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)  # every request body, parsed
    redeemed: list[str] = field(default_factory=list)  # refresh tokens exchanged successfully, in order
    rejected_reuse: list[str] = field(default_factory=list)  # refresh tokens presented a second time
    issued: list[dict[str, Any]] = field(default_factory=list)  # every success answer
    in_flight: int = 0
    _used: set[str] = field(default_factory=set, init=False, repr=False)
    _serial: int = field(default=0, init=False, repr=False)

    @property
    def count(self) -> int:
        """How many requests arrived."""
        return len(self.calls)

    async def handle(self, body: dict[str, Any]) -> tuple[int, Any]:
        """Record the call, wait ``delay``, answer: what the HTTP handler and ``DirectPost`` both do."""
        self.calls.append(body)
        self.in_flight += 1
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self.answer(body)
        finally:
            self.in_flight -= 1

    def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        """The endpoint's logic, without HTTP: validate, rotate, issue."""
        if self.failures:
            status, failure = self.failures.pop(0)
            return status, failure
        if self.fail_always is not None:
            return self.fail_always
        if body.get("client_id") != CLIENT_ID:
            return 401, {"error": "invalid_client", "error_description": "Unknown client"}
        if body.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        token = body.get("refresh_token")
        if token in self._used:
            self.rejected_reuse.append(str(token))
            return 401, {
                "error": {
                    "message": "Your refresh token has already been used to generate a new access token.",
                    "type": "invalid_request_error",
                    "code": "refresh_token_reused",
                    "param": None,
                }
            }
        if token not in self.valid:
            return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
        self.valid.discard(token)
        self._used.add(token)
        self.redeemed.append(token)
        self._serial += 1
        new_refresh = f"rt-{self._serial}"
        self.valid.add(new_refresh)
        now = time.time()
        result = {
            "id_token": make_jwt(exp=now + 3600, account_id=self.account_id, serial=f"id-{self._serial}"),
            "access_token": make_jwt(exp=now + self.expires_in, account_id=self.account_id, serial=str(self._serial)),
            "refresh_token": new_refresh,
            "token_type": "Bearer",
            "expires_in": int(self.expires_in),
        }
        self.issued.append(result)
        return 200, result


class TokenEndpointHandler(tornado.web.RequestHandler):
    """POST with a JSON or form body, like the real endpoint; answers JSON."""

    def initialize(self, state: TokenEndpointState) -> None:
        self.state = state

    async def post(self) -> None:
        content_type = self.request.headers.get("Content-Type", "")
        try:
            if content_type.startswith("application/x-www-form-urlencoded"):
                body: Any = dict(urllib.parse.parse_qsl(self.request.body.decode()))
            else:
                body = json.loads(self.request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.set_status(400)
            self.finish({"error": "invalid_request", "error_description": "Body is not JSON or a form"})
            return
        status, answer = await self.state.handle(body)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(encode_answer(answer))


def encode_answer(answer: Any) -> bytes:
    """Scripted bodies may be bytes or str (sent as is) or JSON values."""
    if isinstance(answer, bytes):
        return answer
    return answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()


class DirectPost:
    """A ``TokenPost`` that calls the endpoint logic in process; ``error`` makes it raise instead."""

    def __init__(self, state: TokenEndpointState) -> None:
        self.state = state
        self.urls: list[str] = []
        self.error: Exception | None = None

    async def __call__(self, url: str, body: dict[str, Any]) -> tuple[int, bytes]:
        self.urls.append(url)
        if self.error is not None:
            self.state.calls.append(body)
            raise self.error
        status, answer = await self.state.handle(body)
        return status, encode_answer(answer)


def make_token_app(state: TokenEndpointState) -> tornado.web.Application:
    """An application serving only the token endpoint at ``/oauth/token``."""
    return tornado.web.Application([(TOKEN_PATH, TokenEndpointHandler, {"state": state})])
