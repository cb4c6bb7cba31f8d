"""Typed errors that cross layers: ``CodexdError`` and its ``ErrorKind``.

Pure: imports nothing from tornado, pycurl, prometheus_client or tomlkit. Errors are raised anywhere and
turned into output in three places only: a dialect handler's error writer, the CLI's ``main`` and the
serve loop.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class ErrorKind(enum.Enum):
    """What went wrong, independent of the client dialect; ``status`` is the default HTTP status."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"  # the local api key is missing or wrong
    LOGIN_REQUIRED = "login_required"  # no usable ChatGPT/Codex credentials: run `codex login`
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA = "unsupported_media"
    UPGRADE_REQUIRED = "upgrade_required"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    UPSTREAM = "upstream"  # the upstream answered with an error or broke its protocol
    UNAVAILABLE = "unavailable"  # the upstream could not be reached
    TIMEOUT = "timeout"  # the upstream went silent past the idle timeout
    OVERLOADED = "overloaded"  # the upstream says it is overloaded
    CONFIG = "config"  # a bad configuration file (exit status 78, not HTTP)

    @property
    def status(self) -> int:
        """The HTTP status this kind maps to when nothing more specific is known."""
        return _STATUS[self]


_STATUS: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.LOGIN_REQUIRED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED_MEDIA: 415,
    ErrorKind.UPGRADE_REQUIRED: 426,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.INTERNAL: 500,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.OVERLOADED: 529,
    ErrorKind.CONFIG: 500,
}


class CodexdError(Exception):
    """An error with a kind, a user-facing message and the details a dialect needs to render it.

    ``status`` overrides the kind's default status (e.g. to pass an upstream 400 through unchanged);
    ``code`` and ``param`` follow OpenAI's error object; ``retry_after`` is seconds for ``Retry-After``;
    ``headers`` go out with the error. ``upstream_status`` and ``upstream_error`` keep the backend's own status and
    ``error`` object when the backend gave one (its ``type``, and fields such as ``plan_type`` and ``resets_at``).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
        transient: bool = False,
        upstream_status: int | None = None,
        upstream_error: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status if status is not None else kind.status
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.transient = transient
        self.upstream_status = upstream_status
        self.upstream_error = dict(upstream_error or {})

    def __repr__(self) -> str:
        return f"CodexdError({self.kind.name}, {self.message!r}, status={self.status})"


def bad_request(message: str, param: str | None = None, code: str | None = None) -> CodexdError:
    """A 400 for malformed client input; ``param`` is the JSON path of the bad field."""
    return CodexdError(ErrorKind.BAD_REQUEST, message, param=param, code=code or "invalid_request")


def too_large(limit: int, when: str = "") -> CodexdError:
    """A 413 for a request body over ``limit`` bytes (``when``: " once decoded", for a compressed one)."""
    return CodexdError(
        ErrorKind.TOO_LARGE, f"request body over the limit of {limit} bytes{when}", code="request_too_large"
    )
