"""Incremental Server-Sent Events decoder and encoder (pure: bytes in, events out).

The decoder follows the WHATWG framing rules that matter for a proxy: events split across reads,
several events in one read, LF / CRLF / CR line endings, multi-line ``data:``, comment lines, and a
trailing event without its blank line at end of stream (``close``). Must not import tornado.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple


class SSEEvent(NamedTuple):
    """One dispatched event: its ``event:`` name (None when absent) and its joined ``data:`` text."""

    event: str | None
    data: str
    id: str | None = None

    def json(self) -> Any:
        """The data parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.data)


class SSEDecoder:
    """Feed raw bytes as they arrive; get back the events completed by them.

    Works frame by frame: bytes wait until a blank line completes their frame (one join, however many
    reads the frame took), then each frame is split on its own. The frame every backend event uses,
    ``event: NAME`` then one ``data: ...`` line, is taken apart without a loop over its lines.
    """

    __slots__ = ("_id", "_pending", "_pending_cr", "_tail_lf")

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # the bytes of the frame not yet completed, LF line endings only
        self._tail_lf = False  # whether those bytes end with a line feed
        self._id: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk`` and return every event whose terminating blank line it completed."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF pair split across two reads
        self._pending_cr = False
        if b"\r" in chunk:
            self._pending_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not chunk:
            return []
        pending = self._pending
        if b"\n\n" not in chunk and not (self._tail_lf and chunk[0] == 0x0A):
            pending.append(chunk)  # no frame ends here
            self._tail_lf = chunk[-1] == 0x0A
            return []
        frames = (b"".join(pending) + chunk if pending else chunk).split(b"\n\n")
        rest = frames.pop()
        self._pending = [rest] if rest else []
        self._tail_lf = rest.endswith(b"\n")
        out: list[SSEEvent] = []
        for frame in frames:
            # The hot path of every stream, hence inlined: "event: NAME\ndata: TEXT" or "data: TEXT".
            head, sep, data = frame.partition(b"\ndata: ")
            if sep and head.startswith(b"event: ") and b"\n" not in head and b"\n" not in data:
                out.append(SSEEvent(head[7:].decode("utf-8", "replace"), data.decode("utf-8", "replace"), self._id))
            elif not sep and frame.startswith(b"data: ") and b"\n" not in frame:
                out.append(SSEEvent(None, frame[6:].decode("utf-8", "replace"), self._id))
            elif frame:
                self._frame(frame, out)
        return out

    def close(self) -> list[SSEEvent]:
        """End of stream: dispatch a final event that lacked its blank line."""
        out: list[SSEEvent] = []
        if self._pending:
            self._frame(b"".join(self._pending), out)
            self._pending = []
        return out

    def _frame(self, frame: bytes, out: list[SSEEvent]) -> None:
        """Any frame, line by line (comments, ``id:``, multi-line data, fields without a space)."""
        data: list[str] = []
        event: str | None = None
        for raw in frame.split(b"\n"):
            if not raw:  # a blank line inside: three or more line feeds in a row
                if data:
                    out.append(SSEEvent(event, "\n".join(data), self._id))
                data, event = [], None
                continue
            line = raw.decode("utf-8", "replace")
            if line[0] == ":":
                continue
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                self._id = value
        if data:
            out.append(SSEEvent(event, "\n".join(data), self._id))


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def frame_text(data: str | dict[str, Any], event: str | None = None) -> str:
    """One SSE frame as text: optional ``event:`` line, the data (dicts as compact JSON), a blank line."""
    text = data if isinstance(data, str) else _ENCODER.encode(data)
    if "\n" in text:
        text = text.replace("\n", "\ndata: ")
    return f"event: {event}\ndata: {text}\n\n" if event else f"data: {text}\n\n"


def encode(data: str | dict[str, Any], event: str | None = None) -> bytes:
    """One SSE frame as UTF-8 bytes (see ``frame_text``)."""
    return frame_text(data, event).encode()
