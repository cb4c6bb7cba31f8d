"""The shape every stream translator has, so the server's ``relay`` can drive any of them.

A translator is a small state machine fed with decoded upstream events (dicts, parsed once by the
upstream client). It returns frames to send: ``(event_name_or_None, payload)`` where the payload is a
dict (sent as compact JSON) or a literal string such as ``[DONE]``. Pure: no I/O, no logging, no
settings lookups; ids and clocks are injected through constructors.
"""

from __future__ import annotations

from collections.abc import Container
from json.encoder import encode_basestring
from typing import Any, Protocol

from codexd.errors import CodexdError
from codexd.translate.aggregate import Usage

Frame = tuple[str | None, "dict[str, Any] | str"]


def json_text(text: str) -> str:
    """``text`` as a JSON string literal, exactly as the compact encoder of ``sse.encode`` writes it
    (non-ASCII left as is); for payloads pre-rendered around the one field that changes per event."""
    return encode_basestring(text)  # the C function the encoder itself calls per string


# Upstream events whose content the chat and messages translators never read: the response object echoed at
# the start (with the request's instructions and tools: often tens of kilobytes), and the ``.done`` and
# ``part`` events that repeat or frame what the deltas already carried.
ECHO_EVENTS = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.done",
    }
)


def carries_token(event: dict[str, Any]) -> bool:
    """Whether an upstream event carries a piece of the answer (``response.output_text.delta`` and its kin)."""
    kind = event.get("type")
    return isinstance(kind, str) and kind.endswith(".delta")


class AllExcept:
    """Every event type but the given ones, as an ``unread`` set."""

    __slots__ = ("read",)

    def __init__(self, read: frozenset[str]) -> None:
        self.read = read

    def __contains__(self, name: object) -> bool:
        return name not in self.read


class StreamTranslator(Protocol):
    """Upstream Responses events in, client-dialect SSE frames out."""

    usage: Usage | None
    """Token usage once the terminal event arrived (for metrics), else None."""

    @property
    def unread(self) -> Container[str]:
        """Event types whose content ``feed`` does not look at: it gets them as ``{"type": name, "raw": text}``
        (the event's data as the upstream sent it), and the upstream client does not parse their JSON."""
        ...

    def feed(self, event: dict[str, Any]) -> list[Frame]:
        """Translate one upstream event; may return zero, one or several frames."""
        ...

    def finish(self) -> list[Frame]:
        """The upstream stream ended. Close the answer; if no terminal event came, an in-band error."""
        ...

    def fail(self, error: CodexdError) -> list[Frame]:
        """A transport failure after the first byte: the dialect's terminal in-band error frames."""
        ...
