"""Responses events -> Chat Completions chunks (``ResponsesToChat``) or one ``chat.completion``.

Follows openai-chat.md §4-5: ``role`` only in the first chunk, each tool call's ``id``/``name`` only in
its first delta, client tool indexes 0, 1, 2 in start order (argument deltas routed by ``item_id``),
exactly one finish chunk, then the optional usage chunk and ``[DONE]``. A failure ends the stream with
an ``{"error": ...}`` chunk and no ``[DONE]``. Pure: ids and clock are injected.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from codexd.dialects.openai import error_object
from codexd.errors import CodexdError
from codexd.translate.aggregate import ResponseAggregator, Usage
from codexd.translate.protocol import ECHO_EVENTS, Frame, json_text
from codexd.translate.upstream_failure import failure_from_event, stream_closed

DONE: Frame = (None, "[DONE]")
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # the encoding sse.encode uses
_SEP = "\n\n"  # between message items, and between reasoning summary parts


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """Per-request answer options: the usage chunk, and reasoning summaries as ``reasoning_content``."""

    include_usage: bool = False
    reasoning_content: bool = False


def chat_usage(usage: Usage | None) -> dict[str, Any]:
    """The Chat ``usage`` object (zeros when the backend sent none)."""
    u = usage or Usage()
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def finish_reason(terminal: str | None, incomplete_reason: str | None, has_tool_calls: bool) -> str:
    """``length``/``content_filter`` for an incomplete response, else ``tool_calls`` or ``stop``."""
    if terminal == "response.incomplete":
        return "content_filter" if incomplete_reason == "content_filter" else "length"
    return "tool_calls" if has_tool_calls else "stop"


def _texts(item: dict[str, Any], part_type: str, key: str) -> str:
    content = item.get("content")
    parts = content if isinstance(content, list) else []
    return "".join(
        p[key] for p in parts if isinstance(p, dict) and p.get("type") == part_type and isinstance(p.get(key), str)
    )


def _summaries(item: dict[str, Any]) -> list[str]:
    summary = item.get("summary")
    parts = summary if isinstance(summary, list) else []
    return [p["text"] if isinstance(p, dict) and isinstance(p.get("text"), str) else "" for p in parts]


def _unsent(sent: io.StringIO | None, full: str) -> str:
    """What ``full`` adds to the text already ``sent``; nothing when it does not start with that text."""
    before = sent.getvalue() if sent is not None else ""
    return full[len(before) :] if full.startswith(before) else ""


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class ResponsesToChat:
    """The Chat Completions ``StreamTranslator``: one instance per streamed answer."""

    unread = ECHO_EVENTS

    def __init__(self, *, completion_id: str, created: int, model: str, options: ChatOptions | None = None) -> None:
        self.usage: Usage | None = None
        self._id = completion_id
        self._created = created
        self._model = model
        self._options = options or ChatOptions()
        self._started = False
        self._closed = False
        self._saw_output = False
        self._tools: dict[str, int] = {}  # upstream item id (fc_...) or call_id -> client tool index
        # What was forwarded, to send only the rest of a ``.done`` event's full text. Buffers, not strings made
        # longer per delta (a copy of the whole each time: 0.7 s for a 400 KB tool call) or lists of pieces
        # (about 60 bytes of overhead per delta).
        self._args: dict[str, io.StringIO] = {}  # arguments forwarded per tool key
        self._sent: dict[tuple[str, str], io.StringIO] = {}  # (delta field, item key) -> text forwarded
        self._last: dict[str, str] = {}  # delta field -> key of the last item that forwarded text
        self._message: str = ""  # the open message item, for deltas without item_id
        # Text deltas, and a tool call's argument deltas, are most of a stream: render the unchanging parts of
        # their chunk once, as JSON text (exactly what encoding the dict would give), and encode only the delta.
        head = self._payload([{"index": 0, "delta": None, "logprobs": None, "finish_reason": None}], None)
        self._head, self._tail = _JSON.encode(head).split('"delta":null', 1)

    def feed(self, event: dict[str, Any]) -> list[Frame]:
        """Translate one upstream event."""
        if self._closed or not isinstance(event, dict):
            return []
        kind = event.get("type")
        if kind == "response.output_text.delta" and self._started:  # most of every stream: the short way
            item_id = event.get("item_id")
            key = item_id if isinstance(item_id, str) and item_id else self._message
            return self._text("content", key, _str(event.get("delta")))
        if kind in ("response.failed", "error"):
            self._take_usage(event)
            return self.fail(failure_from_event(event))
        frames = self._start()
        item = _dict(event.get("item"))
        item_id = _str(event.get("item_id"))
        if kind == "response.output_item.added":
            self._saw_output = True
            if item.get("type") == "function_call":
                frames += self._tool_start(item)
            elif item.get("type") == "message":
                self._message = _str(item.get("id"))
        elif kind == "response.output_item.done":
            self._saw_output = True
            frames += self._item_done(item)
        elif kind == "response.output_text.delta":
            frames += self._text("content", item_id or self._message, _str(event.get("delta")))
        elif kind == "response.refusal.delta":
            frames += self._text("refusal", item_id or self._message, _str(event.get("delta")))
        elif kind == "response.reasoning_summary_text.delta":
            key = f"{item_id}#{event.get('summary_index')}"
            frames += self._text("reasoning_content", key, _str(event.get("delta")))
        elif kind == "response.function_call_arguments.delta":
            frames += self._arguments(item_id, _str(event.get("delta")), delta=True)
        elif kind == "response.function_call_arguments.done":
            frames += self._arguments(item_id, _str(event.get("arguments")), delta=False)
        elif kind in ("response.completed", "response.incomplete"):
            frames += self._terminal(event)
        return frames

    def finish(self) -> list[Frame]:
        """The upstream closed: nothing if the answer ended, else an in-band error."""
        return [] if self._closed else self.fail(stream_closed())

    def fail(self, error: CodexdError) -> list[Frame]:
        """End the stream with an error chunk; no finish chunk and no ``[DONE]`` (so clients see a failure)."""
        if self._closed:
            return []
        self._closed = True
        return [(None, {"error": error_object(error)})]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Frame:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return (None, self._payload([choice], None))

    def _payload(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self._options.include_usage:
            payload["usage"] = usage
        return payload

    def _start(self) -> list[Frame]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _text(self, field: str, key: str, text: str) -> list[Frame]:
        if not text or (field == "reasoning_content" and not self._options.reasoning_content):
            return []
        self._saw_output = True
        sent = self._sent.get((field, key))
        if sent is None:  # a new item: separate it from the previous one's text
            sep = _SEP if self._last.get(field, key) != key else ""
            sent = self._sent[(field, key)] = io.StringIO()
        else:
            sep = ""
        sent.write(text)
        self._last[field] = key
        return [self._rendered(f'{{"{field}":{json_text(sep + text)}}}')]

    def _rendered(self, delta: str) -> Frame:
        """A chunk around ``delta``, already JSON text, from the pre-rendered head and tail."""
        return (None, f'{self._head}"delta":{delta}{self._tail}')

    def _rest(self, field: str, key: str, full: str) -> list[Frame]:
        """Forward what ``full`` adds to the text already streamed for ``key`` (all of it if none was)."""
        return self._text(field, key, _unsent(self._sent.get((field, key)), full))

    def _tool_start(self, item: dict[str, Any]) -> list[Frame]:
        key = _str(item.get("id")) or _str(item.get("call_id"))
        if key in self._tools:
            return []
        index = self._tools[key] = len(self._tools)
        self._args[key] = io.StringIO()
        call = {
            "index": index,
            "id": _str(item.get("call_id")) or key,
            "type": "function",
            "function": {"name": _str(item.get("name")), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _arguments(self, key: str, text: str, *, delta: bool) -> list[Frame]:
        if key not in self._tools or not text:
            return []  # nothing to add, or no start seen (output_item.done will emit the whole call)
        sent = self._args[key]
        if not delta:  # a full ``arguments`` string: forward only what the deltas did not carry
            text = _unsent(sent, text)
            if not text:
                return []
        sent.write(text)
        call = f'{{"index":{self._tools[key]},"function":{{"arguments":{json_text(text)}}}}}'
        return [self._rendered(f'{{"tool_calls":[{call}]}}')]

    def _item_done(self, item: dict[str, Any]) -> list[Frame]:
        kind = item.get("type")
        if kind == "function_call":
            key = _str(item.get("id")) or _str(item.get("call_id"))
            return self._tool_start(item) + self._arguments(key, _str(item.get("arguments")), delta=False)
        if kind == "message":
            key = _str(item.get("id")) or self._message
            return self._rest("content", key, _texts(item, "output_text", "text")) + self._rest(
                "refusal", key, _texts(item, "refusal", "refusal")
            )
        if kind == "reasoning":
            frames: list[Frame] = []
            for i, text in enumerate(_summaries(item)):
                frames += self._rest("reasoning_content", f"{_str(item.get('id'))}#{i}", text)
            return frames
        return []

    def _terminal(self, event: dict[str, Any]) -> list[Frame]:
        self._take_usage(event)
        response = _dict(event.get("response"))
        frames: list[Frame] = []
        listed = response.get("output")
        if not self._saw_output and isinstance(listed, list):
            for item in listed:  # older or odd streams: the items only in the terminal event
                frames += self._item_done(item) if isinstance(item, dict) else []
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        frames.append(self._chunk({}, finish_reason(event.get("type"), reason, bool(self._tools))))
        if self._options.include_usage:
            frames.append((None, self._payload([], chat_usage(self.usage))))
        frames.append(DONE)
        self._closed = True
        return frames

    def _take_usage(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        if isinstance(response, dict):
            self.usage = Usage.from_upstream(response.get("usage")) or self.usage


def chat_completion(
    agg: ResponseAggregator, *, completion_id: str, created: int, model: str, reasoning_content: bool = False
) -> dict[str, Any]:
    """One ``chat.completion`` from a finished aggregate (check ``failure_from_aggregate`` first)."""
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for item in agg.output:
        kind = item.get("type")
        if kind == "message":
            texts.append(_texts(item, "output_text", "text"))
            refusals.append(_texts(item, "refusal", "refusal"))
        elif kind == "function_call":
            function = {"name": _str(item.get("name")), "arguments": _str(item.get("arguments"))}
            call_id = _str(item.get("call_id")) or _str(item.get("id"))
            tool_calls.append({"id": call_id, "type": "function", "function": function})
        elif kind == "reasoning":
            reasoning.extend(_summaries(item))
    text = _SEP.join(t for t in texts if t)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": _SEP.join(r for r in refusals if r) or None,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning_content and any(reasoning):
        message["reasoning_content"] = _SEP.join(r for r in reasoning if r)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(agg.terminal, agg.incomplete_reason, bool(tool_calls)),
            }
        ],
        "usage": chat_usage(agg.usage),
    }
