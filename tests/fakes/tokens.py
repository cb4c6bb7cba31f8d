"""Unsigned JWTs and auth.json files shaped like the ones the Codex CLI writes."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

ACCOUNT_ID = "acct-1234567890abcdef"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(exp: float | None = None, account_id: str = ACCOUNT_ID, serial: str = "0", **claims: Any) -> str:
    """A syntactically valid JWT (three parts, base64url JSON) with the OpenAI auth claim; not signed."""
    payload: dict[str, Any] = {
        "https://api.openai.com/auth": {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus"},
        "email": "user@example.com",
        "jti": serial,
        **claims,
    }
    if exp is not None:
        payload["exp"] = int(exp)
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}.{_b64(b'signature-not-checked')}"


def auth_document(
    access_token: str | None = None,
    refresh_token: str = "rt-0",
    account_id: str = ACCOUNT_ID,
    last_refresh: str = "2026-11-20T10:11:12.123456Z",
    expires_in: float = 3600,
    **extra: Any,
) -> dict[str, Any]:
    """An auth.json document in ChatGPT mode, as the Codex CLI writes it."""
    access = access_token or make_jwt(exp=time.time() + expires_in, account_id=account_id)
    return {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": make_jwt(exp=time.time() + 3600, account_id=account_id),
            "access_token": access,
            "refresh_token": refresh_token,
            "account_id": account_id,
        },
        "last_refresh": last_refresh,
        **extra,
    }


def write_auth(path: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` the way the CLI does: 2-space JSON, no trailing newline, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(doc, indent=2))
    return path


def read_claims(token: str) -> dict[str, Any]:
    """The payload of an unsigned JWT, or {} when it is not one."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
