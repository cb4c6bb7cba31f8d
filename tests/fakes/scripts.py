"""Upstream answers for the fake backend, shaped like the real captures (``sequence_number``,
``obfuscation`` on deltas, full ``response`` echoes, the reasoning item first at ``output_index`` 0).

A ``Script`` is what the fake sends for one request: a status, headers, then SSE frames with optional
delays and faults. Builders return event dicts; ``Script.sse`` turns them into frames.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

USAGE = {
    "input_tokens": 2239,
    "input_tokens_details": {"cached_tokens": 2176},
    "output_tokens": 15,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 2254,
}


def wire(event: dict[str, Any]) -> bytes:
    """One event as the real backend frames it: compact JSON with raw UTF-8 (see the captures); text that
    UTF-8 cannot carry (a lone surrogate) goes out as a JSON escape."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    try:
        return f"event: {event['type']}\ndata: {data}\n\n".encode()
    except UnicodeEncodeError:
        return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


@dataclass
class Step:
    """One thing to send: an event (dict), raw bytes, or a pause/fault marker."""

    event: dict[str, Any] | None = None
    raw: bytes | None = None
    delay: float = 0.0  # seconds to wait before sending this step
    action: str | None = None  # "drop" (close), "reset" (close with a TCP RST) or "stall" (silent for ``delay``)


@dataclass
class Script:
    """The full answer to one request."""

    steps: list[Step] = field(default_factory=list)
    status: int = 200
    body: bytes | None = None  # for non-200 answers
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "text/event-stream; charset=utf-8"
    header_delay: float = 0.0
    interval: float = 0.0  # delay between every two events
    reset_before_headers: bool = False  # close the connection with a TCP RST before any byte of the answer

    @classmethod
    def events(cls, events: list[dict[str, Any]], **kwargs: Any) -> Script:
        """A 200 stream of ``events``."""
        return cls(steps=[Step(event=e) for e in events], **kwargs)

    @classmethod
    def error(cls, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> Script:
        """A non-2xx answer with a JSON (or text) body."""
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return cls(status=status, body=raw, headers=headers or {}, content_type="application/json")

    @classmethod
    def reset(cls) -> Script:
        """No answer at all: the connection is reset before the status line (a transient failure)."""
        return cls(reset_before_headers=True)

    def then_drop(self, after: int) -> Script:
        """Close the connection after ``after`` events (mid-stream reset)."""
        self.steps = [*self.steps[:after], Step(action="drop")]
        return self

    def then_reset(self, after: int) -> Script:
        """Reset the connection (TCP RST) after ``after`` events."""
        self.steps = [*self.steps[:after], Step(action="reset")]
        return self

    def then_raw(self, after: int, *raw: bytes) -> Script:
        """Send ``raw`` bytes after ``after`` events, then end the stream there (malformed SSE)."""
        self.steps = [*self.steps[:after], *(Step(raw=r) for r in raw)]
        return self

    def then_stall(self, after: int, seconds: float) -> Script:
        """Go silent for ``seconds`` after ``after`` events, then continue."""
        self.steps.insert(after, Step(action="stall", delay=seconds))
        return self

    def without_terminal(self) -> Script:
        """End the stream without ``response.completed`` (an upstream protocol failure)."""
        self.steps = [s for s in self.steps if not (s.event and s.event.get("type") == "response.completed")]
        return self


def response_object(
    status: str, *, resp_id: str, model: str, instructions: str = "<ELIDED>", **fields: Any
) -> dict[str, Any]:
    """The ``response`` object the backend echoes in created/in_progress/terminal events (capture 01's keys)."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": 1758751064,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": instructions,
        "max_output_tokens": None,
        "model": model,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": "be2fbdac-3949-492a-9684-473f02efeec9",
        "reasoning": {"effort": "medium", "summary": None},
        "service_tier": "auto",
        "store": False,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "usage": None,
        "metadata": {},
        **fields,
    }


def _obf() -> str:
    return secrets.token_urlsafe(6)


class Builder:
    """Builds one answer's events with consistent ids and sequence numbers."""

    def __init__(
        self,
        model: str = "gpt-5.5",
        instructions: str = "You are a helpful assistant.",
        tools: list[dict[str, Any]] | None = None,
    ) -> None:
        self.resp_id = "resp_" + secrets.token_hex(16)
        self.model = model
        self.instructions = instructions
        self.tools = tools or []  # echoed in every response object, as the backend echoes the request's
        self.seq = 0
        self.out: list[dict[str, Any]] = []
        self.index = 0
        self.items: list[dict[str, Any]] = []

    def _emit(self, event: dict[str, Any]) -> None:
        self.out.append({"type": event.pop("type"), "sequence_number": self.seq, **event})
        self.seq += 1

    def response(self, status: str, **extra: Any) -> dict[str, Any]:
        fields = {"tools": self.tools, **extra}
        return response_object(status, resp_id=self.resp_id, model=self.model, instructions=self.instructions, **fields)

    def start(self) -> Builder:
        self._emit({"type": "response.created", "response": self.response("in_progress")})
        self._emit({"type": "response.in_progress", "response": self.response("in_progress")})
        return self

    def reasoning(self, summary: list[str] | None = None, encrypted: str | None = "gAAAAABenc") -> Builder:
        rid = "rs_" + secrets.token_hex(12)
        idx = self._next()
        self._emit(
            {
                "type": "response.output_item.added",
                "output_index": idx,
                "item": {"id": rid, "type": "reasoning", "summary": []},
            }
        )
        done_summary = []
        for si, text in enumerate(summary or []):
            part = {"type": "summary_text", "text": ""}
            self._emit(
                {
                    "type": "response.reasoning_summary_part.added",
                    "item_id": rid,
                    "output_index": idx,
                    "summary_index": si,
                    "part": part,
                }
            )
            for piece in _pieces(text):
                self._emit(
                    {
                        "type": "response.reasoning_summary_text.delta",
                        "item_id": rid,
                        "output_index": idx,
                        "summary_index": si,
                        "delta": piece,
                        "obfuscation": _obf(),
                    }
                )
            self._emit(
                {
                    "type": "response.reasoning_summary_text.done",
                    "item_id": rid,
                    "output_index": idx,
                    "summary_index": si,
                    "text": text,
                }
            )
            self._emit(
                {
                    "type": "response.reasoning_summary_part.done",
                    "item_id": rid,
                    "output_index": idx,
                    "summary_index": si,
                    "part": {"type": "summary_text", "text": text},
                }
            )
            done_summary.append({"type": "summary_text", "text": text})
        item: dict[str, Any] = {"id": rid, "type": "reasoning", "summary": done_summary}
        if encrypted:
            item["encrypted_content"] = encrypted
        self._done(idx, item)
        return self

    def text(self, text: str, pieces: list[str] | None = None) -> Builder:
        mid = "msg_" + secrets.token_hex(12)
        idx = self._next()
        self._emit(
            {
                "type": "response.output_item.added",
                "output_index": idx,
                "item": {"id": mid, "type": "message", "status": "in_progress", "content": [], "role": "assistant"},
            }
        )
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        self._emit(
            {
                "type": "response.content_part.added",
                "item_id": mid,
                "output_index": idx,
                "content_index": 0,
                "part": part,
            }
        )
        for piece in pieces if pieces is not None else _pieces(text):
            self._emit(
                {
                    "type": "response.output_text.delta",
                    "item_id": mid,
                    "output_index": idx,
                    "content_index": 0,
                    "delta": piece,
                    "logprobs": [],
                    "obfuscation": _obf(),
                }
            )
        self._emit(
            {
                "type": "response.output_text.done",
                "item_id": mid,
                "output_index": idx,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            }
        )
        full = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        self._emit(
            {
                "type": "response.content_part.done",
                "item_id": mid,
                "output_index": idx,
                "content_index": 0,
                "part": full,
            }
        )
        self._done(idx, {"id": mid, "type": "message", "status": "completed", "content": [full], "role": "assistant"})
        return self

    def tool_calls(self, calls: list[tuple[str, str]], interleave: bool = False) -> Builder:
        """Function calls ``(name, arguments_json)``; ``interleave`` mixes their argument deltas."""
        started = []
        for name, args in calls:
            fid, cid = "fc_" + secrets.token_hex(12), "call_" + secrets.token_hex(8)
            idx = self._next()
            self._emit(
                {
                    "type": "response.output_item.added",
                    "output_index": idx,
                    "item": {
                        "id": fid,
                        "type": "function_call",
                        "status": "in_progress",
                        "arguments": "",
                        "call_id": cid,
                        "name": name,
                    },
                }
            )
            started.append((fid, cid, idx, name, args))
            if not interleave:
                self._finish_call(fid, cid, idx, name, args, _pieces(args))
        if interleave:
            queues = {s[0]: _pieces(s[4]) for s in started}
            while any(queues.values()):
                for fid, _cid, idx, _name, _args in started:
                    if queues[fid]:
                        self._emit(
                            {
                                "type": "response.function_call_arguments.delta",
                                "item_id": fid,
                                "output_index": idx,
                                "delta": queues[fid].pop(0),
                                "obfuscation": _obf(),
                            }
                        )
            for fid, cid, idx, name, args in started:
                self._finish_call(fid, cid, idx, name, args, [])
        return self

    def _finish_call(self, fid: str, cid: str, idx: int, name: str, args: str, pieces: list[str]) -> None:
        for piece in pieces:
            self._emit(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": fid,
                    "output_index": idx,
                    "delta": piece,
                    "obfuscation": _obf(),
                }
            )
        self._emit(
            {"type": "response.function_call_arguments.done", "item_id": fid, "output_index": idx, "arguments": args}
        )
        self._done(
            idx,
            {
                "id": fid,
                "type": "function_call",
                "status": "completed",
                "arguments": args,
                "call_id": cid,
                "name": name,
            },
        )

    def completed(self, usage: dict[str, Any] | None = None, full_output: bool = False) -> list[dict[str, Any]]:
        """Close with ``response.completed``; by default with an empty ``output`` as the 2026 backend does."""
        resp = self.response("completed", usage=usage or USAGE, output=self.items if full_output else [])
        self._emit({"type": "response.completed", "response": resp})
        return self.out

    def incomplete(self, reason: str = "max_output_tokens") -> list[dict[str, Any]]:
        resp = self.response("incomplete", usage=USAGE, incomplete_details={"reason": reason})
        self._emit({"type": "response.incomplete", "response": resp})
        return self.out

    def failed(self, code: str = "server_error", message: str = "Something went wrong") -> list[dict[str, Any]]:
        resp = self.response("failed", error={"code": code, "message": message})
        self._emit({"type": "response.failed", "response": resp})
        return self.out

    def _next(self) -> int:
        idx = self.index
        self.index += 1
        return idx

    def _done(self, idx: int, item: dict[str, Any]) -> None:
        self.items.append(item)
        self._emit({"type": "response.output_item.done", "output_index": idx, "item": item})


def _pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or []


def text_answer(text: str = "Hello! How can I help you today?", model: str = "gpt-5.5") -> list[dict[str, Any]]:
    """The shape of capture 01: reasoning item (no summary), then one message."""
    return Builder(model).start().reasoning(encrypted=None).text(text).completed()


RATE_LIMIT_HEADERS = {
    "x-codex-primary-used-percent": "9",
    "x-codex-primary-window-minutes": "299",
    "x-codex-primary-reset-after-seconds": "1637",
    "x-codex-primary-reset-at": "1900000000",
    "x-codex-secondary-used-percent": "31",
    "x-codex-secondary-window-minutes": "10079",
    "x-codex-secondary-reset-after-seconds": "167364",
    "x-codex-secondary-reset-at": "1900100000",
    "x-codex-plan-type": "plus",
}


def usage_limit_error(resets_in: int = 13872) -> Script:
    """The real 429 usage-limit answer with its headers."""
    body = {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_at": 1777936568,
            "eligible_promo": None,
            "resets_in_seconds": resets_in,
        }
    }
    headers = {**RATE_LIMIT_HEADERS, "x-codex-primary-used-percent": "100", "x-codex-active-limit": "codex"}
    return Script.error(429, body, headers)
