"""Pass-through of Responses events for ``/v1/responses`` clients, with in-band failure. Pure."""

from __future__ import annotations

from typing import Any

from codexd.errors import CodexdError
from codexd.translate.aggregate import TERMINAL_EVENTS, ResponseAggregator, Usage
from codexd.translate.protocol import Frame


class ResponsesPassthrough:
    """Sends upstream events on unchanged, except that an empty ``output`` in the terminal event is filled
    from the ``output_item.done`` items (SDKs read the final response from it); ends with
    ``response.failed`` when the upstream broke."""

    unread: frozenset[str] = frozenset()  # every event goes on to the client as it came

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self._terminal = False
        self._seq = 0
        self._response: dict[str, Any] = {}
        self._items = ResponseAggregator()

    def feed(self, event: dict[str, Any]) -> list[Frame]:
        """Pass the event through; remember what a synthesised failure would need."""
        kind = event.get("type")
        seq = event.get("sequence_number")
        if isinstance(seq, int):
            self._seq = seq + 1
        resp = event.get("response")
        if isinstance(resp, dict):
            self._response = resp
        if kind == "response.output_item.done":
            self._items.feed(event)
        elif kind in TERMINAL_EVENTS:
            self._terminal = True
            self.usage = Usage.from_upstream(self._response.get("usage"))
            if not self._response.get("output") and self._items.items:
                event = {**event, "response": {**self._response, "output": self._items.output}}
        return [(kind if isinstance(kind, str) else None, event)]

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
        response = {**self._response, "status": "failed", "error": {"code": code, "message": message}}
        failed = {"type": "response.failed", "sequence_number": self._seq + 1, "response": response}
        return [("error", error), ("response.failed", failed)]
