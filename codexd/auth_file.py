"""The Codex CLI's ``auth.json`` on disk: parse it, read it, write it back atomically, lock beside it.

Used by ``credentials`` only. Imports no tornado, pycurl or prometheus_client. Nothing here may put a token
or key into a log line, an exception message or a ``repr``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import fcntl
import glob
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jwt

AUTH_CLAIM = "https://api.openai.com/auth"

MISSING = "the file does not exist"
STALE_TEMP_AGE = 60.0  # a write_atomic temp file this old belongs to a writer killed before its rename
Signature = tuple[int, int, int]  # (st_mtime_ns, st_ino, st_size): auth.json changed when this changes


@dataclass(frozen=True)
class Auth:
    """What one upstream request needs: a bearer token (ChatGPT or API key) and the account id."""

    mode: Literal["chatgpt", "apikey"]
    access_token: str = field(default="", repr=False)
    account_id: str = ""
    api_key: str = field(default="", repr=False)
    expires_at: float | None = None

    def headers(self) -> dict[str, str]:
        """``Authorization`` (and ``ChatGPT-Account-ID`` in ChatGPT mode) for the upstream request."""
        if self.mode == "apikey":
            return {"Authorization": f"Bearer {self.api_key}"}
        headers = {"Authorization": f"Bearer {self.access_token}"}
        if self.account_id:
            headers["ChatGPT-Account-ID"] = self.account_id
        return headers


@dataclass(frozen=True)
class AuthFile:
    """One read of auth.json; ``auth`` is None when it holds no usable login, and ``problem`` says why."""

    signature: Signature | None  # None: the file does not exist
    doc: dict[str, Any] | None = field(default=None, repr=False)
    auth: Auth | None = None
    refresh_token: str = field(default="", repr=False)
    last_refresh: float | None = None
    problem: str | None = None
    parse_failed: bool = False  # not valid JSON: maybe caught mid-write by the CLI


def mask(value: str) -> str:
    """An account id shortened for display, e.g. ``acct…cdef``."""
    if len(value) <= 8:
        return "…" + value[-2:] if value else ""
    return f"{value[:4]}…{value[-4:]}"


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the signature is the issuer's business), or {} if not a JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(token: str) -> float | None:
    """The access token's ``exp`` in unix seconds, or None when it has none."""
    exp = jwt_claims(token).get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def parse_timestamp(value: Any) -> float | None:
    """An RFC 3339 timestamp (``last_refresh``) as unix seconds, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def format_timestamp(unix: float) -> str:
    """Unix seconds as RFC 3339 UTC with ``Z``, the way the CLI writes ``last_refresh``."""
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _account_from_claims(*tokens: str) -> str:
    for token in tokens:
        claim = jwt_claims(token).get(AUTH_CLAIM)
        if isinstance(claim, dict) and isinstance(claim.get("chatgpt_account_id"), str):
            return str(claim["chatgpt_account_id"])
    return ""


def parse_document(doc: Any, signature: Signature | None) -> AuthFile:
    """Interpret a parsed auth.json: ``auth_mode`` wins; without it an API-key string means API-key mode."""
    if not isinstance(doc, dict):
        return AuthFile(signature, problem="it does not hold a JSON object")
    raw_tokens = doc.get("tokens")
    tokens: dict[str, Any] = raw_tokens if isinstance(raw_tokens, dict) else {}
    access, refresh = _string(tokens.get("access_token")), _string(tokens.get("refresh_token"))
    api_key = _string(doc.get("OPENAI_API_KEY"))
    mode = doc.get("auth_mode")
    if mode is None:
        mode = "apikey" if isinstance(doc.get("OPENAI_API_KEY"), str) else "chatgpt"
    elif mode not in ("chatgpt", "chatgptAuthTokens", "apikey"):
        mode = "chatgpt" if access or not api_key else "apikey"
    last_refresh = parse_timestamp(doc.get("last_refresh"))
    if mode == "apikey":
        if not api_key:
            return AuthFile(signature, doc, problem="it is in API-key mode but holds no OPENAI_API_KEY")
        return AuthFile(signature, doc, Auth(mode="apikey", api_key=api_key), last_refresh=last_refresh)
    if not access:
        return AuthFile(signature, doc, problem="it holds no ChatGPT access token")
    account = _string(tokens.get("account_id")) or _account_from_claims(_string(tokens.get("id_token")), access)
    auth = Auth(mode="chatgpt", access_token=access, account_id=account, expires_at=token_expiry(access))
    return AuthFile(signature, doc, auth, refresh_token=refresh, last_refresh=last_refresh)


def stat_signature(path: Path) -> Signature | None:
    """The file's change signature, or None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:  # missing, or its directory unreadable: read_once says which
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


def read_once(path: Path) -> AuthFile:
    """One attempt at reading auth.json; the signature is taken from the same open file as the bytes."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return AuthFile(None, problem=MISSING)
    except OSError as exc:
        return AuthFile(None, problem=f"it cannot be read ({exc.strerror})")
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        signature = (st.st_mtime_ns, st.st_ino, st.st_size)
        try:
            raw = fh.read()
        except OSError as exc:
            return AuthFile(signature, problem=f"it cannot be read ({exc.strerror})")
    try:
        doc = json.loads(raw)
    except ValueError:
        return AuthFile(signature, problem="it is not valid JSON", parse_failed=True)
    return parse_document(doc, signature)


async def read_auth_file(path: Path, attempts: int = 4, pause: float = 0.05) -> AuthFile:
    """Read auth.json, retrying a parse failure briefly: the CLI truncates and rewrites it in place."""
    state = read_once(path)
    for _ in range(attempts - 1):
        if not state.parse_failed:
            break
        await asyncio.sleep(pause)
        state = read_once(path)
    return state


def updated_document(doc: dict[str, Any], answer: dict[str, Any], now: float) -> dict[str, Any]:
    """``doc`` with the tokens present in a refresh answer replaced and ``last_refresh`` set; all else kept."""
    new = copy.deepcopy(doc)
    tokens = new.setdefault("tokens", {})
    for key in ("id_token", "access_token", "refresh_token"):
        if isinstance(answer.get(key), str) and answer[key]:
            tokens[key] = answer[key]
    new["last_refresh"] = format_timestamp(now)
    return new


def write_atomic(path: Path, doc: dict[str, Any]) -> Signature:
    """Write ``doc`` like the CLI (2-space JSON, no trailing newline) via temp file, fsync, rename; mode 0600."""
    target = Path(os.path.realpath(path))  # keep a symlinked auth.json a symlink
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(doc, indent=2, ensure_ascii=False).encode())
            fh.flush()
            os.fchmod(fh.fileno(), 0o600)
            os.fsync(fh.fileno())
            st = os.fstat(fh.fileno())  # rename keeps inode, size and mtime: this is the new signature
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable; not possible on every filesystem
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    remove_stale_temp_files(target)
    return (st.st_mtime_ns, st.st_ino, st.st_size)


def remove_stale_temp_files(target: Path) -> None:
    """Delete temp files (0600, holding tokens) that writers killed mid-write left beside ``target``.

    Only stale ones: a fresh temp file may belong to another process writing right now.
    """
    cutoff = time.time() - STALE_TEMP_AGE
    for leftover in glob.glob(os.path.join(glob.escape(str(target.parent)), f".{glob.escape(target.name)}.*.tmp")):
        with contextlib.suppress(OSError):
            if os.lstat(leftover).st_mtime < cutoff:
                os.unlink(leftover)


async def acquire_lock(lock_path: Path, poll: float = 0.02) -> int:
    """Take ``flock(LOCK_EX)`` on a sidecar lock file without blocking the event loop; returns its fd.

    Waits as long as another process holds it: bound it with ``asyncio.timeout``.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                await asyncio.sleep(poll)
    except BaseException:
        os.close(fd)
        raise


def release_lock(fd: int) -> None:
    """Release and close a lock taken by ``acquire_lock`` (the lock file stays: deleting it would race)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
