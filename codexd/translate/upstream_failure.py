"""Upstream in-stream failures (``response.failed``, ``error`` events, truncated streams) as CodexdError.

Shared by every dialect translator so that a failure maps to the same kind, status and code whether the
client streams or not (codex-backend.md §6.6). Pure: no I/O, no logging.
"""

from __future__ import annotations

import math
import re
from typing import Any

from codexd.errors import CodexdError, ErrorKind
from codexd.translate.aggregate import ResponseAggregator

_RETRY_IN = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)\b", re.IGNORECASE)

# code -> (kind, status, transient); anything unlisted is a retryable 502.
_BY_CODE: dict[str, tuple[ErrorKind, int, bool]] = {
    "context_length_exceeded": (ErrorKind.BAD_REQUEST, 400, False),
    "invalid_prompt": (ErrorKind.BAD_REQUEST, 400, False),
    "cyber_policy": (ErrorKind.BAD_REQUEST, 400, False),
    "invalid_request_error": (ErrorKind.BAD_REQUEST, 400, False),
    "insufficient_quota": (ErrorKind.RATE_LIMITED, 429, False),
    "usage_limit_reached": (ErrorKind.RATE_LIMITED, 429, False),
    "usage_not_included": (ErrorKind.FORBIDDEN, 403, False),
    "server_is_overloaded": (ErrorKind.OVERLOADED, 503, False),
    "slow_down": (ErrorKind.OVERLOADED, 503, False),
    "rate_limit_exceeded": (ErrorKind.RATE_LIMITED, 429, True),
}


def failure_from_error(error: Any) -> CodexdError:
    """A CodexdError for an upstream ``{"code", "message", "type"?}`` error object (any JSON value)."""
    err = error if isinstance(error, dict) else {}
    code = err.get("code") if isinstance(err.get("code"), str) else None
    etype = err.get("type") if isinstance(err.get("type"), str) else None
    message = err.get("message") if isinstance(err.get("message"), str) and err.get("message") else None
    key = code if code in _BY_CODE else etype if etype in _BY_CODE else None
    if key is None:
        return CodexdError(
            ErrorKind.UPSTREAM,
            message or "The upstream response failed.",
            code=code or "upstream_error",
            transient=True,
        )
    kind, status, transient = _BY_CODE[key]
    return CodexdError(
        kind,
        message or f"The upstream response failed: {key}.",
        status=status,
        code=code or key,
        retry_after=_retry_after(err, message) if kind is ErrorKind.RATE_LIMITED else None,
        transient=transient,
    )


def failure_from_event(event: Any) -> CodexdError:
    """A CodexdError for a ``response.failed`` or ``error`` event (nested or flat error object)."""
    ev = event if isinstance(event, dict) else {}
    if ev.get("type") == "response.failed":
        resp = ev.get("response")
        return failure_from_error(resp.get("error") if isinstance(resp, dict) else None)
    nested = ev.get("error")
    if isinstance(nested, dict):
        return failure_from_error(nested)
    return failure_from_error({k: ev.get(k) for k in ("code", "message") if k in ev})


def stream_closed() -> CodexdError:
    """The upstream stream ended without a terminal event (the Codex CLI retries this too)."""
    return CodexdError(
        ErrorKind.UPSTREAM,
        "The upstream stream closed before the response completed.",
        code="stream_closed",
        transient=True,
    )


def failure_from_aggregate(agg: ResponseAggregator) -> CodexdError | None:
    """The failure of a finished aggregate, or None when it completed or is merely incomplete."""
    if agg.error is not None or agg.terminal == "response.failed":
        return failure_from_error(agg.error)
    if agg.terminal is None:
        return stream_closed()
    return None


def _retry_after(err: dict[str, Any], message: str | None) -> int | None:
    for key in ("resets_in_seconds", "retry_after"):
        value = err.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return max(1, math.ceil(value))
    match = _RETRY_IN.search(message or "")
    if match is None:
        return None
    seconds = float(match.group(1)) / (1000 if match.group(2).lower() == "ms" else 1)
    return max(1, math.ceil(seconds))
