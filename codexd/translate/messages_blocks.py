"""Anthropic content blocks from Responses output items, and the non-streaming message (``message_from``).

Shared with the streaming translator so that both answers carry the same blocks: thinking (summary text
plus the codec signature), text, tool_use (the client's tool name, parsed input), and server_tool_use +
web_search_tool_result for web searches. The rules are in anthropic-messages.md §9. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from codexd.errors import CodexdError
from codexd.translate import thinking_signature
from codexd.translate.aggregate import ResponseAggregator, Usage
from codexd.translate.upstream_failure import failure_from_aggregate

_ID_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def message_from(
    agg: ResponseAggregator,
    *,
    message_id: str,
    model: str,
    tool_names: Mapping[str, str] | None = None,
    thinking: bool = True,
) -> dict[str, Any]:
    """One Anthropic message from a finished aggregate (check ``message_failure`` first)."""
    names = dict(tool_names or {})
    blocks: list[dict[str, Any]] = []
    tool_use = refusal = False
    searches = 0
    for item in agg.output:
        kind = item.get("type")
        if kind == "reasoning" and thinking:
            text, signature = thinking_of(item)
            if text or signature:
                blocks.append({"type": "thinking", "thinking": text, "signature": signature})
        elif kind == "message":
            for text, is_refusal in message_parts(item):
                refusal = refusal or is_refusal
                if text:
                    blocks.append({"type": "text", "text": text})
        elif kind == "function_call":
            tool_use = True
            blocks.append(tool_use_block(item, names, f"call_{message_id}_{len(blocks)}"))
        elif kind == "web_search_call":
            found = search_blocks(item, len(blocks))
            searches += 1 if found else 0
            blocks += found
    terminal = agg.terminal or "response.completed"
    reason = stop_reason(tool_use, terminal, agg.response or {}, refusal)
    return message(message_id, model, blocks, reason, anthropic_usage(agg.usage, searches))


def message_failure(agg: ResponseAggregator) -> CodexdError | None:
    """The error to answer with instead of a message (failed, errored or truncated upstream), else None."""
    err = failure_from_aggregate(agg)
    return for_anthropic(err) if err is not None else None


def for_anthropic(err: CodexdError) -> CodexdError:
    """Anthropic clients recognise an overlong prompt by "prompt is too long" in the message."""
    if err.code != "context_length_exceeded" or err.message.startswith("prompt is too long"):
        return err
    return CodexdError(
        err.kind,
        f"prompt is too long: {err.message}",
        status=err.status,
        code=err.code,
        param=err.param,
        retry_after=err.retry_after,
        headers=err.headers,
        transient=err.transient,
    )


def anthropic_usage(usage: Usage | None, searches: int = 0) -> dict[str, Any]:
    """Anthropic ``usage``: input excludes cached tokens, which are reported as cache reads."""
    u = usage or Usage()
    out: dict[str, Any] = {
        "input_tokens": max(u.input_tokens - u.cached_tokens, 0),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
    }
    if searches:
        out["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
    if u.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": min(u.reasoning_tokens, u.output_tokens)}
    return out


def stop_reason(tool_use: bool, terminal: str, response: dict[str, Any], refusal: bool) -> str:
    """``tool_use`` when a client tool was called; else from ``response.incomplete``'s reason or a refusal."""
    if tool_use:
        return "tool_use"
    if terminal == "response.incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return "refusal" if reason == "content_filter" else "max_tokens"
    return "refusal" if refusal else "end_turn"


def thinking_of(item: dict[str, Any]) -> tuple[str, str]:
    """A reasoning item's thinking text (summary parts joined) and its codec signature ("" when unreplayable)."""
    summary = item.get("summary")
    parts = summary if isinstance(summary, list) else []
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]]
    enc = item.get("encrypted_content")
    item_id = item.get("id") if isinstance(item.get("id"), str) else None
    signature = thinking_signature.encode(item_id, enc) if isinstance(enc, str) and enc else ""
    return "\n\n".join(texts), signature


def message_parts(item: dict[str, Any]) -> list[tuple[str, bool]]:
    """``(text, is_refusal)`` per content part of a message item (unknown parts give empty text)."""
    content = item.get("content")
    out: list[tuple[str, bool]] = []
    for part in content if isinstance(content, list) else []:
        kind = part.get("type") if isinstance(part, dict) else None
        key = "refusal" if kind == "refusal" else "text"
        text = part.get(key) if isinstance(part, dict) and kind in ("output_text", "refusal") else None
        out.append((text if isinstance(text, str) else "", kind == "refusal"))
    return out


def tool_use_block(item: dict[str, Any], names: Mapping[str, str], fallback_id: str) -> dict[str, Any]:
    """A ``tool_use`` block for a function_call item: the client's tool name, arguments parsed (or {})."""
    name: str = item["name"] if isinstance(item.get("name"), str) else ""
    call_id = _tool_id(item.get("call_id")) or _tool_id(fallback_id)
    return {
        "type": "tool_use",
        "id": call_id,
        "name": names.get(name, name),
        "input": _arguments(item.get("arguments")),
    }


def search_blocks(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """``server_tool_use`` + ``web_search_tool_result`` for a web_search_call item that searched."""
    action = item["action"] if isinstance(item.get("action"), dict) else {}
    sources = action["sources"] if isinstance(action.get("sources"), list) else []
    query = action.get("query")
    if not isinstance(query, str) or not query:
        return []
    tool_id = "srvtoolu_" + (_tool_id(item.get("id")) or str(index))
    results = [
        {
            "type": "web_search_result",
            "url": source["url"],
            "title": source["title"] if isinstance(source.get("title"), str) else source["url"],
            "encrypted_content": "",
            "page_age": None,
        }
        for source in sources
        if isinstance(source, dict) and isinstance(source.get("url"), str)
    ]
    return [
        {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": query}},
        {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results},
    ]


def message(
    message_id: str, model: str, content: list[dict[str, Any]], reason: str | None, usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _arguments(arguments: Any) -> dict[str, Any]:
    """Tool input from the upstream JSON string: an object, or {} for anything else (never a crash)."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
        json.dumps(parsed, allow_nan=False)  # JavaScript clients cannot parse NaN or Infinity
    except (ValueError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _tool_id(value: Any) -> str:
    """An id Anthropic accepts (``^[a-zA-Z0-9_-]+$``), or "" when there is none."""
    return _ID_BAD_CHARS.sub("_", value) if isinstance(value, str) else ""
