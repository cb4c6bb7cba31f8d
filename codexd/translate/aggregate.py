"""Collect a Responses event stream into one result (for non-streaming clients and for metrics).

The backend may leave ``response.completed.response.output`` empty, so output items are collected from
``response.output_item.done`` events keyed by ``output_index``; ``completed.output`` is used only when
no item was collected, and text deltas are a last resort. Pure.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


@dataclass(frozen=True, slots=True)
class Usage:
    """Upstream token counts. ``input_tokens`` includes cached ones; ``output_tokens`` reasoning ones."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output, as the backend counts them."""
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_upstream(cls, usage: Any) -> Usage | None:
        """Parse a Responses ``usage`` object; ``*_details`` may be null. None when absent."""
        if not isinstance(usage, dict):
            return None
        in_details = usage.get("input_tokens_details") or {}
        out_details = usage.get("output_tokens_details") or {}
        return cls(
            input_tokens=_int(usage.get("input_tokens")),
            cached_tokens=_int(in_details.get("cached_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            reasoning_tokens=_int(out_details.get("reasoning_tokens")),
        )

    def to_upstream(self) -> dict[str, Any]:
        """The Responses ``usage`` object for these counts."""
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass
class ResponseAggregator:
    """Feed every upstream event; read ``response()`` or the parsed fields once the stream ended."""

    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    response: dict[str, Any] | None = None  # the terminal event's ``response`` object
    terminal: str | None = None  # the terminal event type, None while the stream is open
    error: dict[str, Any] | None = None  # from ``response.failed`` or an ``error`` event
    _text: io.StringIO = field(default_factory=io.StringIO)  # text deltas, in case no item comes
    _last: dict[str, Any] | None = None  # the latest ``response`` object seen (created/in_progress)

    def feed(self, event: dict[str, Any]) -> None:
        """Take one upstream event."""
        kind = event.get("type")
        if kind == "response.output_item.done":
            item = event.get("item")
            if isinstance(item, dict):
                index = event.get("output_index")
                self.items[index if isinstance(index, int) else len(self.items)] = item
        elif kind == "response.output_text.delta":
            delta = event.get("delta")
            if isinstance(delta, str):
                self._text.write(delta)
        elif kind in TERMINAL_EVENTS:
            self.terminal = kind
            resp = event.get("response")
            self.response = resp if isinstance(resp, dict) else {}
            if kind == "response.failed":
                err = self.response.get("error")
                self.error = err if isinstance(err, dict) else self.error or {}
        elif kind == "error":
            err = event.get("error")
            self.error = err if isinstance(err, dict) else {"message": str(event.get("message", ""))}
        elif kind in ("response.created", "response.in_progress"):
            resp = event.get("response")
            if isinstance(resp, dict):
                self._last = resp

    @property
    def output(self) -> list[dict[str, Any]]:
        """The output items in order: from ``output_item.done``, else ``completed.output``, else text."""
        if self.items:
            return [self.items[k] for k in sorted(self.items)]
        listed = (self.response or {}).get("output")
        if isinstance(listed, list) and listed:
            return [item for item in listed if isinstance(item, dict)]
        text = self._text.getvalue()
        if text:
            return [
                {
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ]
        return []

    @property
    def usage(self) -> Usage | None:
        """Usage from the terminal event, when it carried one."""
        return Usage.from_upstream((self.response or {}).get("usage"))

    @property
    def incomplete_reason(self) -> str | None:
        """``max_output_tokens`` or ``content_filter`` for ``response.incomplete``, else None."""
        details = (self.response or {}).get("incomplete_details")
        return details.get("reason") if isinstance(details, dict) else None

    def result(self) -> dict[str, Any]:
        """One Responses ``response`` object with the collected output filled in."""
        base = dict(self.response or self._last or {})
        base["output"] = self.output
        if "status" not in base and self.terminal:
            base["status"] = self.terminal.removeprefix("response.")
        return base
