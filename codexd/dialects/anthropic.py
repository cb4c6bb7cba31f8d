"""Anthropic wire shapes: the error envelope and its ``type`` per status, request field checks. Pure."""

from __future__ import annotations

from typing import Any

from codexd.errors import CodexdError, ErrorKind, bad_request

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


# --- request validation: Anthropic-style messages ("messages.0.content: ...") with the JSON path as param.


def invalid(path: str, message: str) -> CodexdError:
    """A 400 for the client field at JSON path ``path`` (dotted, as Anthropic writes it)."""
    return bad_request(f"{path}: {message}", param=path)


def is_type(value: Any, kind: type | tuple[type, ...]) -> bool:
    """``isinstance``, except that a JSON boolean never passes for a number."""
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def optional(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str, prefix: str = "") -> Any:
    """``obj[key]`` when present and of ``kind``, None when absent or null; a 400 naming ``what`` otherwise."""
    value = obj.get(key)
    if value is not None and not is_type(value, kind):
        raise invalid(f"{prefix}{key}", f"Input should be {what}")
    return value


def required_str(obj: dict[str, Any], key: str, path: str) -> str:
    """``obj[key]`` as a string, or a 400 for ``path.key``."""
    value = obj.get(key)
    if not isinstance(value, str):
        raise invalid(f"{path}.{key}", "Input should be a valid string")
    return value


def as_object(value: Any, path: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, or a 400 for ``path``."""
    if not isinstance(value, dict):
        raise invalid(path, "Input should be a valid object")
    return value
