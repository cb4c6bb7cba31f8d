"""Upstream ``response.failed`` / ``error`` events and truncated streams map to the right CodexdError."""

from __future__ import annotations

from typing import Any

import pytest

from codexd.errors import ErrorKind
from codexd.translate.aggregate import ResponseAggregator
from codexd.translate.upstream_failure import failure_from_aggregate, failure_from_event, stream_closed


def failed(code: str | None, message: str | None = "boom") -> dict[str, Any]:
    """A ``response.failed`` event shaped like capture 05 E."""
    error = None if code is None else {"code": code, "message": message}
    return {
        "type": "response.failed",
        "sequence_number": 3,
        "response": {
            "id": "resp_5c66275b97b9baef1ed95550adb3b7ec13b17aafd1d2f11b",
            "object": "response",
            "created_at": 1759510079,
            "status": "failed",
            "background": False,
            "error": error,
            "usage": None,
            "user": None,
            "metadata": {},
        },
    }


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        ("context_length_exceeded", ErrorKind.BAD_REQUEST, 400),
        ("invalid_prompt", ErrorKind.BAD_REQUEST, 400),
        ("cyber_policy", ErrorKind.BAD_REQUEST, 400),
        ("insufficient_quota", ErrorKind.RATE_LIMITED, 429),
        ("usage_not_included", ErrorKind.FORBIDDEN, 403),
        ("server_is_overloaded", ErrorKind.OVERLOADED, 503),
        ("slow_down", ErrorKind.OVERLOADED, 503),
        ("rate_limit_exceeded", ErrorKind.RATE_LIMITED, 429),
        ("something_new", ErrorKind.UPSTREAM, 502),
    ],
)
def test_failed_codes_map_per_backend_table(code: str, kind: ErrorKind, status: int) -> None:
    err = failure_from_event(failed(code, "upstream says no"))
    assert (err.kind, err.status, err.code) == (kind, status, code)
    assert err.message == "upstream says no"


def test_context_window_failure_is_a_client_error_not_retried() -> None:
    err = failure_from_event(failed("context_length_exceeded", "Your input exceeds the context window of this model."))
    assert err.status == 400
    assert not err.transient
    assert "context window" in err.message


def test_rate_limit_delay_is_parsed_from_the_message() -> None:
    msg = "Rate limit reached for gpt-5 on tokens per min. Please try again in 11.054s. Visit ..."
    err = failure_from_event(failed("rate_limit_exceeded", msg))
    assert err.retry_after == 12
    assert err.transient
    assert failure_from_event(failed("rate_limit_exceeded", "Please try again in 250ms.")).retry_after == 1


def test_usage_limit_uses_resets_in_seconds() -> None:
    event = {"type": "error", "error": {"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": 90}}
    err = failure_from_event(event)
    assert (err.status, err.code, err.retry_after, err.transient) == (429, "usage_limit_reached", 90, False)


def test_error_event_nested_and_flat_shapes() -> None:
    nested = {
        "type": "error",
        "sequence_number": 2,
        "error": {
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
            "message": "too long",
            "param": "input",
        },
    }
    flat = {"type": "error", "sequence_number": 2, "code": "server_is_overloaded", "message": "busy", "param": None}
    assert failure_from_event(nested).status == 400
    # the upstream param names the upstream body's field, which means nothing to the client
    assert failure_from_event(nested).param is None
    assert (failure_from_event(flat).kind, failure_from_event(flat).message) == (ErrorKind.OVERLOADED, "busy")


@pytest.mark.parametrize("event", [failed(None), failed("x", None), {"type": "error"}, {}, None, [1], "junk"])
def test_malformed_failures_still_give_an_upstream_error(event: Any) -> None:
    err = failure_from_event(event)
    assert err.status >= 400
    assert err.message


def test_aggregate_failure_states() -> None:
    done = ResponseAggregator()
    done.feed({"type": "response.completed", "response": {"status": "completed"}})
    assert failure_from_aggregate(done) is None

    incomplete = ResponseAggregator()
    incomplete.feed(
        {"type": "response.incomplete", "response": {"incomplete_details": {"reason": "max_output_tokens"}}}
    )
    assert failure_from_aggregate(incomplete) is None

    open_stream = ResponseAggregator()
    open_stream.feed({"type": "response.created", "response": {"id": "resp_1"}})
    err = failure_from_aggregate(open_stream)
    assert err is not None and err.code == stream_closed().code and err.status == 502

    failing = ResponseAggregator()
    failing.feed(failed("usage_not_included"))
    err = failure_from_aggregate(failing)
    assert err is not None and err.status == 403
