"""Turn an upstream HTTP error answer (status, body, headers) into a ``CodexdError``. Pure.

The backend answers in two styles: FastAPI ``{"detail": "..."}`` for request validation and OpenAI-style
``{"error": {...}}`` from the engine and the auth layer. Statuses are kept, except that usage limits carry a
``retry_after`` and overload is marked so each dialect can render it its own way. The answer's rate-limit
headers go on with the error, and so do the backend's status and error object, for the dialect that shows them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from codexd.errors import CodexdError, ErrorKind
from codexd.upstream.answer_headers import passed_on

_KIND_BY_STATUS = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.LOGIN_REQUIRED,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    413: ErrorKind.TOO_LARGE,
    429: ErrorKind.RATE_LIMITED,
}
TRANSIENT_STATUSES = frozenset({502, 503, 504})
# Past this many seconds to the reset, a usage limit's answer says ``x-should-retry: false``. The Anthropic SDK
# (2.x) otherwise sleeps out any Retry-After, hours for a usage limit, and then asks again; the OpenAI SDK (3.x)
# gives up by itself past two minutes. A reset within a minute is worth the wait.
SDK_RETRY_AFTER_CAP = 60


def error_from_answer(
    status: int, body: bytes, headers: Mapping[str, str] | None = None, now: float | None = None
) -> CodexdError:
    """The error a client should see for an upstream non-2xx answer."""
    payload = _json(body)
    detail = payload.get("detail") if isinstance(payload, dict) else None
    err = payload.get("error") if isinstance(payload, dict) else None
    err = err if isinstance(err, dict) else {}
    code = _str(err.get("code")) or _str(err.get("type")) or None
    message = _str(detail) or _str(err.get("message")) or _fallback_message(status, body)
    kind = _KIND_BY_STATUS.get(status, ErrorKind.UPSTREAM if status >= 500 else ErrorKind.BAD_REQUEST)
    retry_after: int | None = None
    upstream_status = status if err else None
    passed = passed_on(headers or {})
    if status == 429:
        retry_after = _retry_after(err, headers or {}, time.time() if now is None else now)
        if code == "usage_limit_reached" and retry_after is not None:
            message = f"{message} (resets in {_duration(retry_after)})"
        if code in _NOT_BEFORE_RESET and (retry_after is None or retry_after > SDK_RETRY_AFTER_CAP):
            passed["x-should-retry"] = "false"
    if code == "usage_not_included":
        kind, status = ErrorKind.FORBIDDEN, 403
    if status == 401:
        message = f"ChatGPT login rejected by the Codex backend ({message}); run `codex login`"
    if status == 503 and code in ("server_is_overloaded", "slow_down"):
        kind = ErrorKind.OVERLOADED
    return CodexdError(
        kind,
        message,
        status=status,
        code=code,
        param=_str(err.get("param")) or None,
        retry_after=retry_after,
        headers=passed,
        transient=status in TRANSIENT_STATUSES,
        upstream_status=upstream_status,
        upstream_error=err,
    )


_NOT_BEFORE_RESET = frozenset({"usage_limit_reached", "usage_not_included", "insufficient_quota"})


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _fallback_message(status: int, body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").strip()
    return f"upstream answered HTTP {status}" + (f": {text}" if text else "")


def _retry_after(err: Mapping[str, Any], headers: Mapping[str, str], now: float) -> int | None:
    seconds = err.get("resets_in_seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        return max(0, int(seconds))
    resets_at = err.get("resets_at")
    if isinstance(resets_at, (int, float)) and not isinstance(resets_at, bool):
        return max(0, int(resets_at - now))
    header = headers.get("retry-after") or headers.get("Retry-After")
    if header and header.strip().isdigit():
        return int(header.strip())
    return None


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if hours else f"{minutes} min" if minutes else f"{seconds} s"
