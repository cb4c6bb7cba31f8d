"""OpenAI wire shapes: the error object for Chat Completions, Responses and models (``responses_error``, the
Responses form). Pure."""

from __future__ import annotations

from typing import Any

from codexd.errors import CodexdError, ErrorKind

_TYPE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.BAD_REQUEST: "invalid_request_error",
    ErrorKind.UNAUTHORIZED: "invalid_request_error",
    ErrorKind.LOGIN_REQUIRED: "authentication_error",
    ErrorKind.FORBIDDEN: "permission_error",
    ErrorKind.NOT_FOUND: "invalid_request_error",
    ErrorKind.METHOD_NOT_ALLOWED: "invalid_request_error",
    ErrorKind.TOO_LARGE: "invalid_request_error",
    ErrorKind.UNSUPPORTED_MEDIA: "invalid_request_error",
    ErrorKind.UPGRADE_REQUIRED: "invalid_request_error",
    ErrorKind.RATE_LIMITED: "rate_limit_error",
}


_OWN_FIELDS = ("message", "type", "param", "code")


def error_object(err: CodexdError) -> dict[str, Any]:
    """The inner ``{"message", "type", "param", "code"}`` object for ``err``, followed by the backend's further
    fields when it gave any (a usage limit's ``plan_type``, ``resets_at`` and ``resets_in_seconds``)."""
    kind = _TYPE_BY_KIND.get(err.kind, "invalid_request_error" if err.status < 500 else "server_error")
    body = {"message": err.message, "type": kind, "param": err.param, "code": err.code}
    body.update((k, v) for k, v in err.upstream_error.items() if k not in _OWN_FIELDS)
    return body


def error_body(err: CodexdError) -> dict[str, Any]:
    """The full JSON body an OpenAI client expects with a non-2xx status."""
    return {"error": error_object(err)}


def responses_error(err: CodexdError) -> tuple[int, dict[str, Any]]:
    """The status and body for ``/v1/responses``: ``error_body``, except that a backend error keeps the backend's
    status and ``type``. That endpoint speaks the backend's own API, and the Codex CLI reads both: a
    ``usage_limit_reached`` it shows with its reset time, under ``rate_limit_error`` it retries, sleeping out a
    Retry-After of hours."""
    body = error_body(err)
    kind = err.upstream_error.get("type")
    if err.upstream_status is not None and isinstance(kind, str) and kind:
        body["error"]["type"] = kind
        return err.upstream_status, body
    return err.status, body
