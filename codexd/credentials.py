"""ChatGPT/Codex credentials from the CLI's ``auth.json``: current token, expiry, refresh, failure memory.

One refresh at a time per process (a shared in-flight task) and per machine (``flock`` on ``auth.json.lock``);
under the lock the file is read again so a refresh done by someone else is reused, never repeated, since
refresh tokens are single-use. Permanent refresh failures are remembered until auth.json changes on disk.
The network call is injected (``TokenPost``), so this module imports no HTTP client. Tokens and keys never
reach a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from codexd.auth_file import (
    MISSING,
    Auth,
    AuthFile,
    Signature,
    acquire_lock,
    mask,
    parse_document,
    read_auth_file,
    read_once,
    release_lock,
    stat_signature,
    updated_document,
    write_atomic,
)
from codexd.errors import CodexdError, ErrorKind

__all__ = ["CLIENT_ID", "Auth", "Credentials", "TokenPost"]

logger = logging.getLogger(__name__)

TokenPost = Callable[[str, dict[str, Any]], Awaitable[tuple[int, bytes]]]

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
REFRESH_WINDOW = 5 * 60  # refresh when the access token expires within this many seconds
REFRESH_INTERVAL = 8 * 24 * 3600  # token without a readable exp: refresh when last_refresh is older
TRANSIENT_BACKOFF = 15.0  # after a transient failure, keep using a still-valid token this long before retrying
LOCK_TIMEOUT = 30.0
READ_ATTEMPTS = 4  # reads of an auth.json that does not parse, 50 ms apart, before a request gives up on it
REDEEM_READ_ATTEMPTS = 40  # the same before a refresh, which must not redeem a token read before: 2 s
REUSED_GRACE = 1.0  # after refresh_token_reused, how long to wait for the program that won to write auth.json
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_\-]{6,}[A-Za-z0-9_.\-]*")  # tokens echoed in bodies we did not send

PERMANENT_CODES = {
    "refresh_token_expired": "the refresh token has expired",
    "refresh_token_reused": "the refresh token was already used (perhaps by another program sharing auth.json)",
    "refresh_token_invalidated": "the refresh token was revoked",
    "invalid_grant": "the refresh token was rejected",
    "invalid_refresh_token": "the refresh token was rejected",
    "token_invalidated": "the login was invalidated",
    "token_expired": "the login has expired",
    "app_session_terminated": "the session was ended",
    "account_session_expired": "the session has expired",
    "account_deactivated": "the account was deactivated",
}


def _error_code(body: bytes) -> str:
    """``error.code``, or ``error`` as a string, or a top-level ``code`` from a token-endpoint answer."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    error = doc.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    if isinstance(error, str):
        return error
    return str(doc["code"]) if isinstance(doc.get("code"), str) else ""


class Credentials:
    """The login in one auth.json file: ``current()`` for each upstream request, ``after_unauthorized()``
    after an upstream 401, ``describe()`` for readiness. Never fails at construction."""

    def __init__(
        self,
        auth_path: Path,
        refresh_url: str,
        post: TokenPost,
        *,
        clock: Callable[[], float] = time.time,
        on_refresh: Callable[[str], None] | None = None,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.auth_path = Path(auth_path)
        self.lock_path = self.auth_path.with_name(self.auth_path.name + ".lock")
        self._refresh_url = refresh_url
        self._post = post
        self._clock = clock
        self._on_refresh = on_refresh
        self._lock_timeout = lock_timeout
        self._state: AuthFile | None = None
        self._unparsable: Signature | None = None  # auth.json as it was when it failed to parse, the login kept
        self._inflight: asyncio.Future[Auth] | None = None
        self._dead: tuple[Signature | None, str] | None = None  # permanent failure, until the file changes
        self._backoff_until = 0.0
        self._last_transient: str | None = None

    async def current(self) -> Auth:
        """The credentials to send now, refreshed first when due. Raises LOGIN_REQUIRED or UNAVAILABLE."""
        state = await self._load()
        auth = self._usable(state)
        if auth.mode == "apikey" or not self._due(state):
            return auth
        now = self._clock()
        expired = auth.expires_at is not None and auth.expires_at <= now
        if not state.refresh_token:
            if expired:
                raise self._login_required(
                    f"The access token in {self.auth_path} has expired and there is no refresh token"
                )
            return auth
        if not expired and now < self._backoff_until:
            return auth
        try:
            return await self._refresh(auth.access_token)
        except CodexdError as err:
            if not err.transient or expired:
                raise
            self._backoff_until = now + TRANSIENT_BACKOFF
            logger.debug("Token refresh failed; the current access token is still valid, using it meanwhile")
            return auth

    async def after_unauthorized(self, failed: Auth) -> Auth:
        """Credentials to retry with once after the upstream rejected ``failed`` with 401.

        A newer token in auth.json is used as is; otherwise the token is refreshed. Raises LOGIN_REQUIRED
        when neither is possible.
        """
        state = await self._load()
        auth = self._usable(state)
        if auth.mode != failed.mode or auth.access_token != failed.access_token or auth.api_key != failed.api_key:
            return auth
        if auth.mode == "apikey":
            raise self._login_required(f"The upstream rejected the API key in {self.auth_path}")
        if not state.refresh_token:
            raise self._login_required(f"The upstream rejected the access token in {self.auth_path} (no refresh token)")
        return await self._refresh(failed.access_token)

    def describe(self) -> dict[str, Any]:
        """Login status for /ready: no network, never a secret."""
        state = self._state
        signature = stat_signature(self.auth_path)
        if state is None or state.signature != signature:
            fresh = read_once(self.auth_path)
            if not fresh.parse_failed:
                state = self._state = fresh
            elif state is None or state.auth is None:
                state = fresh
            # else: half-written or damaged, the login read before is what requests use (see ``_load``)
        now = self._clock()
        auth = state.auth
        info: dict[str, Any] = {
            "ok": False,
            "mode": auth.mode if auth else None,
            "account_id": mask(auth.account_id) if auth else None,
            "expires_in": round(auth.expires_at - now) if auth and auth.expires_at is not None else None,
            "error": None,
        }
        try:
            self._usable(state)
        except CodexdError as err:
            info["error"] = err.message
            return info
        expired = auth is not None and auth.expires_at is not None and auth.expires_at <= now
        if expired and not state.refresh_token:
            info["error"] = f"The access token in {self.auth_path} has expired and there is no refresh token"
        elif expired and self._last_transient:
            info["error"] = self._last_transient
        else:
            info["ok"] = True
        return info

    async def _load(self, *, to_redeem: bool = False) -> AuthFile:
        """auth.json, parsed again only when its stat signature changed.

        A file that does not parse even after the retries leaves the login read before in use until the file
        changes again: a writer that rewrites it in place (as the CLI does) can be paused half-way for longer
        than the retries wait. Not ``to_redeem``, though: a refresh token read before may be the one that
        writer has just spent, so such a read waits longer for the whole file, then fails as transient."""
        state = self._state
        signature = stat_signature(self.auth_path)
        if state is not None and signature == state.signature:
            return state
        if state is not None and not to_redeem and signature and signature == self._unparsable:
            return state
        fresh = await read_auth_file(self.auth_path, attempts=REDEEM_READ_ATTEMPTS if to_redeem else READ_ATTEMPTS)
        if fresh.parse_failed and state is not None and state.auth is not None:
            if to_redeem:
                raise self._transient(f"{self.auth_path} stayed half-written or is not valid JSON", [])
            if self._unparsable is None:
                logger.warning("%s is not valid JSON; using the login read before until it changes", self.auth_path)
            self._unparsable = fresh.signature
            return state
        self._unparsable = None
        state = fresh
        if state.problem and (self._state is None or self._state.problem != state.problem):
            logger.warning("No usable Codex login in %s: %s", self.auth_path, state.problem)
        self._state = state
        return state

    def _usable(self, state: AuthFile) -> Auth:
        if self._dead is not None and self._dead[0] == state.signature:
            raise self._login_required(self._dead[1], code="token_expired")
        if state.auth is None:
            if state.signature is None and state.problem == MISSING:
                raise self._login_required(f"No Codex login found at {self.auth_path}")
            raise self._login_required(f"No usable Codex login in {self.auth_path} ({state.problem})")
        return state.auth

    @staticmethod
    def _login_required(sentence: str, *, code: str = "login_required") -> CodexdError:
        return CodexdError(ErrorKind.LOGIN_REQUIRED, f"{sentence}: run `codex login`", code=code)

    def _due(self, state: AuthFile) -> bool:
        auth = state.auth
        if auth is None or auth.mode == "apikey":
            return False
        now = self._clock()
        if auth.expires_at is not None:
            return auth.expires_at - now <= REFRESH_WINDOW
        return state.last_refresh is None or now - state.last_refresh >= REFRESH_INTERVAL

    def _replacement(self, state: AuthFile, stale: str) -> Auth | None:
        """A token someone else put in auth.json that needs no refresh, if any."""
        auth = state.auth
        if auth is None or (self._dead is not None and self._dead[0] == state.signature):
            return None
        if auth.mode == "apikey" or (auth.access_token != stale and not self._due(state)):
            return auth
        return None

    async def _refresh(self, stale: str) -> Auth:
        """Join the refresh in flight, or start one; cancelling a caller never cancels the refresh."""
        if self._inflight is None or self._inflight.done():
            task = asyncio.ensure_future(self._refresh_once(stale))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._inflight = task
        return await asyncio.shield(self._inflight)

    async def _refresh_once(self, stale: str) -> Auth:
        state = await self._load()
        if (found := self._replacement(state, stale)) is not None:
            self._notify("reused_other")
            return found
        self._usable(state)
        try:
            async with asyncio.timeout(self._lock_timeout):
                fd = await acquire_lock(self.lock_path)
        except TimeoutError:
            message = f"Another process held {self.lock_path} for over {self._lock_timeout:g} s"
            raise self._transient(message, []) from None
        except OSError as exc:
            raise self._transient(f"Cannot lock {self.lock_path}: {exc.strerror}", []) from None
        try:
            state = await self._load(to_redeem=True)
            if (found := self._replacement(state, stale)) is not None:
                logger.info("Using the access token another process refreshed in %s", self.auth_path)
                self._notify("reused_other")
                return found
            self._usable(state)
            if not state.refresh_token:
                raise self._login_required(f"{self.auth_path} holds no refresh token")
            return await self._redeem(state)
        finally:
            release_lock(fd)

    async def _redeem(self, state: AuthFile) -> Auth:
        """POST the refresh token; persist the answer or classify the failure. Called under the file lock."""
        assert state.doc is not None and state.auth is not None
        tokens = state.doc.get("tokens") or {}
        secrets = [v for k, v in tokens.items() if isinstance(v, str) and k != "account_id"] + [state.auth.api_key]
        body = {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": state.refresh_token}
        logger.debug("Refreshing the ChatGPT access token at %s", self._refresh_url)
        try:
            status, raw = await self._post(self._refresh_url, body)
        except CodexdError as exc:
            raise self._transient(f"Could not reach the token endpoint: {exc.message}", secrets) from None
        except Exception as exc:
            raise self._transient(f"Could not reach the token endpoint: {type(exc).__name__}: {exc}", secrets) from None
        if status != 200:
            code = _error_code(raw)
            if code == "refresh_token_reused" and (found := await self._rotated_elsewhere(state)) is not None:
                return found
            if code in PERMANENT_CODES or status == 401:
                raise self._permanent(state, status, code)
            text = raw.decode("utf-8", "replace")
            raise self._transient(f"The token endpoint answered HTTP {status}: {text}", secrets)
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise self._transient("The token endpoint answered 200 without a JSON object", secrets)
        doc = updated_document(state.doc, answer, self._clock())
        try:
            signature: Signature | None = write_atomic(self.auth_path, doc)
        except OSError as exc:
            # The old refresh token is spent: keep the new tokens in memory until the file changes.
            logger.warning("Could not write the refreshed login to %s: %s", self.auth_path, exc.strerror)
            signature = state.signature
        self._state = parse_document(doc, signature)
        self._last_transient = None
        self._backoff_until = 0.0
        auth = self._usable(self._state)
        expires = f"in {auth.expires_at - self._clock():.0f} s" if auth.expires_at is not None else "at an unknown time"
        logger.info("Refreshed the ChatGPT access token for account %s; it expires %s", mask(auth.account_id), expires)
        self._notify("success")
        return auth

    async def _rotated_elsewhere(self, spent: AuthFile) -> Auth | None:
        """After ``refresh_token_reused``: the Codex CLI (which ignores our lock) may have redeemed the same
        token a moment before us and be about to write auth.json. Wait briefly for its tokens."""
        deadline = time.monotonic() + REUSED_GRACE
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            state = await self._load()
            if state.auth is None or not state.refresh_token or state.refresh_token == spent.refresh_token:
                continue
            logger.info("Another program refreshed the login at the same moment; using its tokens")
            if self._due(state):
                return await self._redeem(state)
            self._notify("reused_other")
            return state.auth
        return None

    def _permanent(self, state: AuthFile, status: int, code: str) -> CodexdError:
        reason = PERMANENT_CODES.get(code, "the token endpoint refused to refresh the access token")
        self._dead = (state.signature, f"The ChatGPT login in {self.auth_path} cannot be refreshed ({reason})")
        logger.warning(
            "Token refresh failed permanently (HTTP %d, %s); waiting for %s to change",
            status,
            code or "no code",
            self.auth_path,
        )
        self._notify("permanent_failure")
        return self._login_required(self._dead[1], code="token_expired")

    def _transient(self, message: str, secrets: list[str]) -> CodexdError:
        for secret in secrets:
            if secret:
                message = message.replace(secret, "[redacted]")
        message = _JWT_LIKE.sub("[redacted]", message)[:400]  # redact before cutting: no partial token
        self._last_transient = message
        logger.warning("Token refresh failed: %s", message)
        self._notify("transient_failure")
        return CodexdError(ErrorKind.UNAVAILABLE, message, code="token_refresh_failed", transient=True)

    def _notify(self, result: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(result)
