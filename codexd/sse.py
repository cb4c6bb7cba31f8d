"""Incremental Server-Sent Events decoder and encoder (pure: bytes in, events out).

The decoder follows the WHATWG framing rules that matter for a proxy: events split across reads,
several events in one read, LF / CRLF / CR line endings, multi-line ``data:``, comment lines, and a
trailing event without its blank line at end of stream (``close``). Must not import tornado.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its ``event:`` name (None when absent) and its joined ``data:`` text."""

    event: str | None
    data: str
    id: str | None = None

    def json(self) -> Any:
        """The data parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.data)


class SSEDecoder:
    """Feed raw bytes as they arrive; get back the events completed by them."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_pending_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk`` and return every event whose terminating blank line it completed."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF pair split across two reads
        self._pending_cr = False
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            if buf.endswith(b"\r"):
                self._pending_cr = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, self._buf = buf.split(b"\n")
        out: list[SSEEvent] = []
        data, event = self._data, self._event
        # The hot path of every stream: inlined, because a method call per line costs more than the parse.
        for raw in lines:
            if not raw:
                if data:
                    out.append(SSEEvent(event, "\n".join(data), self._id))
                    data = []
                event = None
            elif raw.startswith(b"data:"):
                data.append((raw[6:] if raw[5:6] == b" " else raw[5:]).decode("utf-8", "replace"))
            elif raw.startswith(b"event:"):
                event = (raw[7:] if raw[6:7] == b" " else raw[6:]).decode("utf-8", "replace")
            elif raw[0] != 0x3A:  # not a ":" comment
                self._data, self._event = data, event
                self._line(raw, out)
                data, event = self._data, self._event
        self._data, self._event = data, event
        return out

    def close(self) -> list[SSEEvent]:
        """End of stream: dispatch a final event that lacked its blank line, drop a partial line."""
        out: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf, out)
            self._buf = b""
        self._line(b"", out)
        return out

    def _line(self, raw: bytes, out: list[SSEEvent]) -> None:
        if not raw:
            if self._data:
                out.append(SSEEvent(self._event, "\n".join(self._data), self._id))
            self._data = []
            self._event = None
            return
        line = raw.decode("utf-8", "replace")
        if line[0] == ":":
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(data: str | dict[str, Any], event: str | None = None) -> bytes:
    """One SSE frame: optional ``event:`` line, the data (dicts as compact JSON), a blank line."""
    text = data if isinstance(data, str) else _ENCODER.encode(data)
    head = f"event: {event}\n" if event else ""
    body = "".join(f"data: {part}\n" for part in text.split("\n")) if "\n" in text else f"data: {text}\n"
    return (head + body + "\n").encode()
