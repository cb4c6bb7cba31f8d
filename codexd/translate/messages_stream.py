"""Responses events -> Anthropic Messages: the streaming translator and the non-streaming message builder.

``ResponsesToMessages`` emits ``message_start``, then content blocks indexed 0, 1, 2... (one open at a
time: text and thinking stream live, each tool call is emitted whole at its ``output_item.done`` so that
interleaved calls never mix), then ``message_delta`` and ``message_stop``. A failure after the start is one
``event: error`` and nothing more. ``message_from`` (from messages_blocks, re-exported) builds the same
blocks from an aggregate for non-streaming clients. The rules are in anthropic-messages.md §9-10. Pure: no
I/O, ids injected.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codexd.dialects.anthropic import error_body
from codexd.errors import CodexdError
from codexd.translate.aggregate import Usage
from codexd.translate.messages_blocks import (
    anthropic_usage,
    for_anthropic,
    message,
    message_failure,
    message_from,
    message_parts,
    search_blocks,
    stop_reason,
    thinking_of,
    tool_use_block,
)
from codexd.translate.protocol import ECHO_EVENTS, Frame, json_text
from codexd.translate.upstream_failure import failure_from_event, stream_closed

__all__ = ["ResponsesToMessages", "message_failure", "message_from"]

_EMPTY_TEXT: dict[str, Any] = {"type": "text", "text": ""}
# Text and thinking deltas are most of a stream: their JSON is pre-rendered, only the text is encoded.
_TEXT_DELTA = '{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%s}}'
_THINKING_DELTA = '{"type":"content_block_delta","index":%d,"delta":{"type":"thinking_delta","thinking":%s}}'
_EMPTY_THINKING: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}


@dataclass
class _Open:
    """The one content block currently open."""

    index: int
    key: tuple[Any, ...]  # ("text", item_id, content_index) or ("thinking", item_id)
    part: int = 0  # thinking: the summary part being streamed
    has_text: bool = False


@dataclass
class _Call:
    """A function call being streamed: its arguments are buffered until the item is done (in a buffer, not a
    list of pieces: a file written by a tool comes in deltas of a few characters, about 60 bytes each as
    strings in a list)."""

    call_id: Any
    name: Any
    arguments: io.StringIO = field(default_factory=io.StringIO)


class ResponsesToMessages:
    """Upstream Responses events in, Anthropic ``(event, payload)`` frames out (a ``StreamTranslator``)."""

    unread = ECHO_EVENTS

    def __init__(
        self,
        *,
        message_id: str,
        model: str,
        tool_names: Mapping[str, str] | None = None,
        thinking: bool = True,
        request_id: str | None = None,
    ) -> None:
        self.usage: Usage | None = None
        self._id = message_id
        self._model = model
        self._names = dict(tool_names or {})
        self._thinking = thinking
        self._request_id = request_id
        self._started = False
        self._done = False
        self._next = 0  # the index of the next content block
        self._open: _Open | None = None
        self._calls: dict[str | None, _Call] = {}
        self._streamed_text: set[tuple[str | None, int]] = set()
        self._streamed_thinking: set[str | None] = set()
        self._message_item: str | None = None  # the message item that text deltas without ``item_id`` belong to
        self._items_done = 0
        self._tool_use = False
        self._refusal = False
        self._searches = 0

    def feed(self, event: dict[str, Any]) -> list[Frame]:
        """Translate one upstream event."""
        if self._done or not isinstance(event, dict):
            return []
        kind = event.get("type")
        if kind == "response.output_text.delta" and self._started:  # most of every stream: the short way
            return self._text_delta(event)
        if kind in ("error", "response.failed"):
            resp = event.get("response")
            self.usage = Usage.from_upstream(resp.get("usage")) if isinstance(resp, dict) else None
            return self._error(failure_from_event(event))
        frames = self._message_start()
        if kind == "response.output_item.added":
            self._item_added(event.get("item"))
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            self._refusal = self._refusal or kind == "response.refusal.delta"
            frames += self._text_delta(event)
        elif kind == "response.reasoning_summary_text.delta":
            frames += self._thinking_delta(event)
        elif kind == "response.function_call_arguments.delta":
            call = self._calls.get(_sid(event.get("item_id")))
            if call is not None and isinstance(event.get("delta"), str):
                call.arguments.write(event["delta"])
        elif kind == "response.output_item.done":
            self._items_done += 1
            frames += self._item_done(event.get("item"))
        elif kind in ("response.completed", "response.incomplete"):
            frames += self._terminal(kind, event.get("response"))
        return frames

    def finish(self) -> list[Frame]:
        """The upstream ended; without a terminal event that is an in-band error."""
        return [] if self._done else self._error(stream_closed())

    def fail(self, error: CodexdError) -> list[Frame]:
        """A transport failure after the first byte: one ``error`` event, then nothing."""
        return [] if self._done else self._error(error)

    def ping(self) -> list[Frame]:
        """The keep-alive the server sends during long upstream silences."""
        return [("ping", {"type": "ping"})]

    # --- upstream events --------------------------------------------------------------------------------

    def _message_start(self) -> list[Frame]:
        if self._started:
            return []
        self._started = True
        start = message(self._id, self._model, [], None, anthropic_usage(None))
        return [("message_start", {"type": "message_start", "message": start}), *self.ping()]

    def _item_added(self, item: Any) -> None:
        if not isinstance(item, dict):
            return
        if item.get("type") == "message":
            self._message_item = _sid(item.get("id"))
        elif item.get("type") == "function_call":
            self._calls[_sid(item.get("id"))] = _Call(item.get("call_id"), item.get("name"))

    def _text_delta(self, event: dict[str, Any]) -> list[Frame]:
        delta = event.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        item_id = _sid(event.get("item_id")) or self._message_item
        part = _int(event.get("content_index"))
        frames = self._ensure_open(("text", item_id, part))
        self._streamed_text.add((item_id, part))
        frames.append(self._rendered(_TEXT_DELTA, delta))
        return frames

    def _thinking_delta(self, event: dict[str, Any]) -> list[Frame]:
        delta = event.get("delta")
        if not self._thinking or not isinstance(delta, str) or not delta:
            return []
        item_id = _sid(event.get("item_id"))
        part = _int(event.get("summary_index"))
        frames = self._ensure_open(("thinking", item_id))
        self._streamed_thinking.add(item_id)
        block = self._open
        if block is not None:
            if block.has_text and part != block.part:
                frames.append(self._rendered(_THINKING_DELTA, "\n\n"))
            block.part, block.has_text = part, True
        frames.append(self._rendered(_THINKING_DELTA, delta))
        return frames

    def _item_done(self, item: Any) -> list[Frame]:
        if not isinstance(item, dict):
            return []
        kind = item.get("type")
        if kind == "reasoning":
            return self._reasoning_done(item)
        if kind == "message":
            return self._message_done(item)
        if kind == "function_call":
            self._tool_use = True
            call = self._calls.pop(_sid(item.get("id")), None) or _Call(None, None)
            buffered = call.arguments.getvalue()
            item = {"call_id": call.call_id, "name": call.name, "arguments": buffered, **_present(item)}
            return self._whole_block(tool_use_block(item, self._names, f"call_{self._id}_{self._next}"))
        if kind == "web_search_call":
            blocks = search_blocks(item, self._next)
            self._searches += 1 if blocks else 0
            return [frame for block in blocks for frame in self._whole_block(block)]
        return []

    def _reasoning_done(self, item: dict[str, Any]) -> list[Frame]:
        if not self._thinking:
            return []
        item_id = _sid(item.get("id"))
        text, signature = thinking_of(item)
        if self._open is not None and self._open.key == ("thinking", item_id):
            frames = [self._delta({"type": "signature_delta", "signature": signature})] if signature else []
            return frames + self._close()
        if item_id in self._streamed_thinking or not (text or signature):
            return []  # already streamed and closed (an interleaved item cut it), or nothing to show
        return self._whole_block({"type": "thinking", "thinking": text, "signature": signature})

    def _message_done(self, item: dict[str, Any]) -> list[Frame]:
        item_id = _sid(item.get("id"))
        frames: list[Frame] = []
        if self._open is not None and self._open.key[0] == "text" and self._open.key[1] in (item_id, None):
            frames += self._close()
        for part, (text, refusal) in enumerate(message_parts(item)):
            self._refusal = self._refusal or refusal
            streamed = {(item_id, part), (None, part)} & self._streamed_text
            self._streamed_text -= streamed
            if text and not streamed:  # text that came only in the done event
                frames += self._whole_block({"type": "text", "text": text})
        return frames

    def _terminal(self, kind: str, response: Any) -> list[Frame]:
        resp = response if isinstance(response, dict) else {}
        frames: list[Frame] = []
        listed = resp.get("output")
        if not self._items_done and self._next == 0 and isinstance(listed, list):
            for item in listed:  # nothing was streamed: the terminal event's own output is all there is
                frames += self._item_done(item)
        frames += self._close()
        self.usage = Usage.from_upstream(resp.get("usage"))
        reason = stop_reason(self._tool_use, kind, resp, self._refusal)
        delta = {"stop_reason": reason, "stop_sequence": None}
        usage = anthropic_usage(self.usage, self._searches)
        self._done = True
        return [
            *frames,
            ("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}),
            ("message_stop", {"type": "message_stop"}),
        ]

    def _error(self, err: CodexdError) -> list[Frame]:
        self._done = True
        return [("error", error_body(for_anthropic(err), self._request_id))]

    # --- blocks -----------------------------------------------------------------------------------------

    def _ensure_open(self, key: tuple[Any, ...]) -> list[Frame]:
        if self._open is not None and self._open.key == key:
            return []
        frames = self._close()
        self._open = _Open(self._next, key)
        frames.append(self._start(dict(_EMPTY_TEXT if key[0] == "text" else _EMPTY_THINKING)))
        return frames

    def _start(self, block: dict[str, Any]) -> Frame:
        index, self._next = self._next, self._next + 1
        return ("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})

    def _delta(self, delta: dict[str, Any]) -> Frame:
        index = self._open.index if self._open is not None else self._next - 1
        return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def _rendered(self, template: str, text: str) -> Frame:
        """A text or thinking delta from its pre-rendered template (the same JSON ``_delta`` would give)."""
        index = self._open.index if self._open is not None else self._next - 1
        return ("content_block_delta", template % (index, json_text(text)))

    def _close(self) -> list[Frame]:
        if self._open is None:
            return []
        index, self._open = self._open.index, None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _whole_block(self, block: dict[str, Any]) -> list[Frame]:
        """A complete block as start, deltas, stop. Tool input goes in a delta: Claude Code reads only those."""
        frames = self._close()
        kind = block["type"]
        if kind == "text":
            frames.append(self._start(dict(_EMPTY_TEXT)))
            frames.append(self._delta({"type": "text_delta", "text": block["text"]}))
        elif kind == "thinking":
            frames.append(self._start(dict(_EMPTY_THINKING)))
            if block["thinking"]:
                frames.append(self._delta({"type": "thinking_delta", "thinking": block["thinking"]}))
            if block["signature"]:
                frames.append(self._delta({"type": "signature_delta", "signature": block["signature"]}))
        elif kind in ("tool_use", "server_tool_use"):
            frames.append(self._start({**block, "input": {}}))
            partial = json.dumps(block["input"], ensure_ascii=False, separators=(",", ":"))
            frames.append(self._delta({"type": "input_json_delta", "partial_json": partial}))
        else:
            frames.append(self._start(block))
        frames.append(("content_block_stop", {"type": "content_block_stop", "index": self._next - 1}))
        return frames


def _sid(value: Any) -> str | None:
    """An upstream id, or None when absent or not a string (ids key dicts and sets)."""
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _present(item: dict[str, Any]) -> dict[str, Any]:
    """The item's fields that carry a value (a done item's empty ``arguments`` must not hide the buffer)."""
    return {k: v for k, v in item.items() if v not in (None, "")}
