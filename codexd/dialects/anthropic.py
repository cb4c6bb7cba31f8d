"""Anthropic wire shapes: the error envelope and its ``type`` per status. Pure."""

from __future__ import annotations

from typing import Any

from codexd.errors import CodexdError, ErrorKind

_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def status_for(err: CodexdError) -> int:
    """Anthropic clients read overload as 529 and connection failures as 500-class api errors."""
    if err.kind is ErrorKind.OVERLOADED or (err.status == 503 and err.code in ("server_is_overloaded", "slow_down")):
        return 529
    return err.status


def error_type(status: int) -> str:
    """Anthropic's ``error.type`` for an HTTP status."""
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "invalid_request_error" if status < 500 else "api_error"


def error_body(err: CodexdError, request_id: str | None = None) -> dict[str, Any]:
    """The ``{"type": "error", "error": {...}}`` body, also used as the in-stream ``error`` event."""
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type(status_for(err)), "message": err.message}}
    if request_id:
        body["request_id"] = request_id
    return body
