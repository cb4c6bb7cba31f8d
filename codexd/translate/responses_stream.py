"""Pass-through of Responses events for ``/v1/responses`` clients, with in-band failure. Pure."""

from __future__ import annotations

import json
from typing import Any

from codexd.errors import CodexdError
from codexd.translate.aggregate import TERMINAL_EVENTS, ResponseAggregator, Usage
from codexd.translate.protocol import AllExcept, Frame


class ResponsesPassthrough:
    """Sends upstream events on unchanged, except that an empty ``output`` in the terminal event is filled
    from the ``output_item.done`` items (SDKs read the final response from it); ends with
    ``response.failed`` when the upstream broke.

    Only those events and errors are parsed: the others go on as the upstream's own text, among them the
    response object echoed at the start with the request's instructions and tools (parsing and re-encoding
    them cost about 1 ms per answer with a 21 KB system prompt). The latest of those is parsed only if a
    failure has to be synthesised from it."""

    unread = AllExcept(TERMINAL_EVENTS | {"response.output_item.done", "error"})

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self._terminal = False
        self._seq = 0
        self._response: dict[str, Any] = {}
        self._response_text: str | None = None  # the latest unparsed event carrying ``response``
        self._items = ResponseAggregator()

    def feed(self, event: dict[str, Any]) -> list[Frame]:
        """Pass the event through; remember what a synthesised failure would need."""
        kind = event.get("type")
        name = kind if isinstance(kind, str) else None
        raw = event.get("raw") if name in self.unread else None
        if isinstance(raw, str):
            self._seq += 1  # the backend numbers its events one by one
            if name in _CARRY_RESPONSE:
                self._response_text = raw
            return [(name, raw)]
        seq = event.get("sequence_number")
        if isinstance(seq, int):
            self._seq = seq + 1
        resp = event.get("response")
        if isinstance(resp, dict):
            self._response = resp
            self._response_text = None
        if kind == "response.output_item.done":
            self._items.feed(event)
        elif kind in TERMINAL_EVENTS:
            self._terminal = True
            self.usage = Usage.from_upstream(self._response.get("usage"))
            if not self._response.get("output") and self._items.items:
                event = {**event, "response": {**self._response, "output": self._items.output}}
        return [(name, event)]

    def finish(self) -> list[Frame]:
        """A stream that ended without a terminal event gets one, marked failed."""
        if self._terminal:
            return []
        return self._failed("upstream_incomplete", "the upstream stream ended before response.completed")

    def fail(self, error: CodexdError) -> list[Frame]:
        """A transport failure after the first byte."""
        if self._terminal:
            return []
        return self._failed(error.code or error.kind.value, error.message)

    def _failed(self, code: str, message: str) -> list[Frame]:
        self._terminal = True
        error = {"type": "error", "sequence_number": self._seq, "code": code, "message": message, "param": None}
        response = {**self._latest_response(), "status": "failed", "error": {"code": code, "message": message}}
        failed = {"type": "response.failed", "sequence_number": self._seq + 1, "response": response}
        return [("error", error), ("response.failed", failed)]

    def _latest_response(self) -> dict[str, Any]:
        if self._response_text is not None:
            try:
                parsed = json.loads(self._response_text)
            except (ValueError, RecursionError):
                parsed = None
            resp = parsed.get("response") if isinstance(parsed, dict) else None
            if isinstance(resp, dict):
                self._response = resp
            self._response_text = None
        return self._response


# The events that carry the whole response object besides the terminal ones.
_CARRY_RESPONSE = frozenset({"response.created", "response.in_progress", "response.queued"})
