"""Anthropic Messages request -> Codex Responses request body (a pure function, ``to_responses``).

Every client field is checked on the way (a bad one raises ``bad_request`` with its JSON path, never a
KeyError or TypeError); fields the backend rejects (``max_tokens``, ``temperature``, ...) are accepted and
dropped. The result carries what the answer needs: the client's model name, the short->client tool name map
and whether thinking blocks were asked for. The rules are in anthropic-messages.md §8. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from codexd.dialects.anthropic import as_object, invalid, optional, required_str
from codexd.errors import bad_request
from codexd.jsonparse import SharedItems
from codexd.models import ModelMap
from codexd.translate import thinking_signature
from codexd.translate.messages_tools import Tools, clean_schema, parse_tools, tool_choice
from codexd.translate.progress import Progress, Resumable

_BILLING_PREFIX = "x-anthropic-billing-header:"
_BUDGET_EFFORT = ((512, "minimal"), (1024, "low"), (8192, "medium"), (24576, "high"))
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
_MAX_CALL_ID = 64
_ERROR_MARK = "[tool error]"
_CACHE_NAMESPACE = uuid.UUID("5b0c7c1e-4f3a-5d8e-9a61-0c0d3e7a1f24")
_SESSION_IN_USER_ID = re.compile(r"_session_([0-9A-Za-z-]+)$")


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """The upstream body plus what answering the client needs."""

    body: dict[str, Any]
    model: str  # the client's model name, echoed in the answer
    stream: bool
    tool_names: dict[str, str]  # upstream tool name -> the client's name (only names that were shortened)
    thinking: bool  # the client asked for thinking blocks
    session_key: str  # the prompt_cache_key; also fit for the upstream session-id header


def to_responses(
    body: Any,
    *,
    models: ModelMap,
    instructions: str,
    default_effort: str = "medium",
    session_id: str | None = None,
) -> MessagesRequest:
    """Translate a ``POST /v1/messages`` body; ``session_id`` is the X-Claude-Code-Session-Id header value."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = optional(body, "model", str, "a string")
    stream = optional(body, "stream", bool, "a boolean")
    _check_ignored(body)
    tools = parse_tools(body.get("tools"))
    system = [t for t in _texts(body.get("system"), "system", allow_none=True) if not _is_billing(t)]
    items, leading_system = _messages(body.get("messages"), tools)
    choice, parallel = tool_choice(body.get("tool_choice"), tools)
    reasoning, thinking = _reasoning(body, default_effort, web_search=bool(tools.web_search))
    upstream_model = models.resolve(model)
    joined = "\n\n".join(t for t in (*system, *leading_system) if t.strip())
    instructions = joined or instructions or "You are a helpful assistant."
    cache_key = _cache_key(session_id, body.get("metadata"), upstream_model, instructions, items)
    out: dict[str, Any] = {
        "model": upstream_model,
        "instructions": instructions,
        "input": items,
        "tools": tools.specs,
        "tool_choice": choice,
        "parallel_tool_calls": parallel,
        "reasoning": reasoning,
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": cache_key,
    }
    text_format = _text_format(body.get("output_config"))
    if text_format is not None:
        out["text"] = {"format": text_format}
    return MessagesRequest(
        body=out,
        model=model or upstream_model,
        stream=bool(stream),
        tool_names=tools.reverse,
        thinking=thinking,
        session_key=cache_key,
    )


# --- validation helpers -------------------------------------------------------------------------------


def _check_ignored(body: dict[str, Any]) -> None:
    """Fields the backend rejects: accepted when well typed, never forwarded."""
    optional(body, "max_tokens", int, "a valid integer")
    optional(body, "top_k", int, "a valid integer")
    optional(body, "temperature", (int, float), "a valid number")
    optional(body, "top_p", (int, float), "a valid number")
    stops = optional(body, "stop_sequences", list, "a valid list")
    for i, stop in enumerate(stops or []):
        if not isinstance(stop, str):
            raise invalid(f"stop_sequences.{i}", "Input should be a valid string")
    metadata = optional(body, "metadata", dict, "a valid object")
    if metadata is not None:
        optional(metadata, "user_id", str, "a valid string", "metadata.")


def _blocks(content: Any, path: str) -> list[dict[str, Any]]:
    """A message's content as a list of typed blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise invalid(path, "Input should be a valid string or list of content blocks")
    for j, block in enumerate(content):
        if not isinstance(as_object(block, f"{path}.{j}").get("type"), str):
            raise invalid(f"{path}.{j}.type", "Input should be a valid string")
    return content


def _texts(content: Any, path: str, *, allow_none: bool = False) -> list[str]:
    """The texts of a system prompt or system message (other block types carry nothing we can use)."""
    if content is None and allow_none:
        return []
    return [
        required_str(block, "text", f"{path}.{j}")
        for j, block in enumerate(_blocks(content, path))
        if block["type"] == "text"
    ]


def _is_billing(text: str) -> bool:
    # Claude Code's attribution block changes per conversation and would defeat the prompt cache.
    return text.lstrip().startswith(_BILLING_PREFIX)


# --- messages -----------------------------------------------------------------------------------------


# Each remembered conversation's translation as its last turn left it.
_PROGRESS = Resumable()


def _messages(value: Any, tools: Tools) -> tuple[list[dict[str, Any]], list[str]]:
    """The upstream input items, plus the texts of system messages that precede the conversation.

    For a conversation the body parser remembered (``SharedItems``), the messages it shares with its previous
    turn are taken as translated then, in one step, and so is any other user or assistant message translated
    then for the same tool names; the items come as an ``EncodedList`` of the messages' JSON."""
    if not isinstance(value, list):
        raise invalid("messages", "Input should be a valid list")
    if not value:
        raise invalid("messages", "at least one message is required")
    shared = value if isinstance(value, SharedItems) else None
    now = _PROGRESS.start(shared, tools.names) if shared is not None else Progress(tools.names, encode=False)
    for i in range(len(now.done), len(value)):
        message = value[i]
        if not now.take(message):
            role = as_object(message, f"messages.{i}").get("role")
            new = _message_items(message, role, f"messages.{i}", tools, now.leading if not now.items else None)
            now.add(message, new, (), again=role == "system")
    if shared is not None:
        _PROGRESS.keep(shared, now)
    return now.upstream(_paired), now.leading


def _message_items(
    message: dict[str, Any], role: Any, path: str, tools: Tools, leading: list[str] | None
) -> list[dict[str, Any]]:
    """One message's upstream items. The texts of a system message go to ``leading`` when it is given (no
    items came before)."""
    content = message.get("content")
    if role == "system":
        texts = [t for t in _texts(content, f"{path}.content") if t and not _is_billing(t)]
        if leading is not None:
            leading.extend(texts)
            return []
        # Mid-conversation system text stays in place (as the backend's developer role) so the prompt prefix
        # before it, and so the prompt cache, is unchanged.
        parts = [{"type": "input_text", "text": t} for t in texts]
        return [{"type": "message", "role": "developer", "content": parts}] if texts else []
    if role == "user":
        return _user_items(_blocks(content, f"{path}.content"), f"{path}.content")
    if role == "assistant":
        return _assistant_items(_blocks(content, f"{path}.content"), f"{path}.content", tools)
    raise invalid(f"{path}.role", "Input should be 'user', 'assistant' or 'system'")


def _user_items(blocks: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    # Tool outputs go first so that they directly follow the calls of the previous assistant turn.
    outputs: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        kind, bpath = block["type"], f"{path}.{j}"
        if kind == "tool_result":
            outputs.append(_tool_result(block, bpath))
            continue
        part = _input_part(block, bpath)
        if part is not None:
            parts.append(part)
    if parts:
        outputs.append({"type": "message", "role": "user", "content": parts})
    return outputs


def _input_part(block: dict[str, Any], path: str) -> dict[str, Any] | None:
    """A user-side content part (text, image, document); None for empty text and unusable blocks."""
    kind = block["type"]
    if kind == "text":
        text = required_str(block, "text", path)
        return {"type": "input_text", "text": text} if text else None
    if kind == "image":
        return _image(block, path)
    if kind == "document":
        return _document(block, path)
    return None  # thinking in a user turn, search results, tool references, future block types


def _image(block: dict[str, Any], path: str) -> dict[str, Any]:
    source = as_object(block.get("source"), f"{path}.source")
    kind = source.get("type")
    if kind == "base64":
        media = required_str(source, "media_type", f"{path}.source")
        data = required_str(source, "data", f"{path}.source")
        return {"type": "input_image", "image_url": f"data:{media};base64,{data}"}
    if kind == "url":
        return {"type": "input_image", "image_url": required_str(source, "url", f"{path}.source")}
    raise invalid(f"{path}.source.type", "image sources must be 'base64' or 'url'")


def _document(block: dict[str, Any], path: str) -> dict[str, Any]:
    source = as_object(block.get("source"), f"{path}.source")
    title = optional(block, "title", str, "a valid string", f"{path}.")
    kind = source.get("type")
    if kind == "base64":
        media = required_str(source, "media_type", f"{path}.source")
        if media != "application/pdf":
            raise invalid(f"{path}.source.media_type", "only application/pdf documents are supported")
        data = required_str(source, "data", f"{path}.source")
        name = title if title and title.lower().endswith(".pdf") else f"{title or 'document'}.pdf"
        return {"type": "input_file", "filename": name, "file_data": f"data:application/pdf;base64,{data}"}
    if kind == "text":
        data = required_str(source, "data", f"{path}.source")
        return {"type": "input_text", "text": f"{title}\n\n{data}" if title else data}
    raise invalid(f"{path}.source.type", "documents must be a base64 PDF or plain text")


def _tool_result(block: dict[str, Any], path: str) -> dict[str, Any]:
    call_id = _call_id(required_str(block, "tool_use_id", path))
    is_error = optional(block, "is_error", bool, "a valid boolean", f"{path}.")
    content = block.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        parts = [{"type": "input_text", "text": content}] if content else []
    elif isinstance(content, list):
        for k, sub in enumerate(_blocks(content, f"{path}.content")):
            part = _input_part(sub, f"{path}.content.{k}")
            if part is not None:
                parts.append(part)
    elif content is not None:
        raise invalid(f"{path}.content", "Input should be a valid string or list of content blocks")
    if all(p["type"] == "input_text" for p in parts):
        text = "\n".join(p["text"] for p in parts)
        output: str | list[dict[str, Any]] = f"{_ERROR_MARK}\n{text}" if is_error else text
    else:
        output = [{"type": "input_text", "text": _ERROR_MARK}, *parts] if is_error else parts
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def _assistant_items(blocks: list[dict[str, Any]], path: str, tools: Tools) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    texts: list[str] = []

    def flush() -> None:
        if texts:
            parts = [{"type": "output_text", "text": t} for t in texts]
            items.append({"type": "message", "role": "assistant", "content": parts})
            texts.clear()

    for j, block in enumerate(blocks):
        kind, bpath = block["type"], f"{path}.{j}"
        if kind == "text":
            text = required_str(block, "text", bpath)
            if text:
                texts.append(text)
        elif kind == "tool_use":
            flush()
            items.append(_function_call(block, bpath, tools))
        elif kind == "thinking":
            thinking = optional(block, "thinking", str, "a valid string", f"{bpath}.") or ""
            ref = thinking_signature.decode(optional(block, "signature", str, "a valid string", f"{bpath}."))
            if ref is not None:  # foreign and empty signatures cannot be replayed upstream
                flush()
                summary = [{"type": "summary_text", "text": thinking}] if thinking else []
                # No ``id``: with store=false the backend would look the item up and fail.
                items.append({"type": "reasoning", "summary": summary, "encrypted_content": ref.encrypted_content})
        # redacted_thinking, server tool history and unknown blocks have no upstream form.
    flush()
    return items


def _function_call(block: dict[str, Any], path: str, tools: Tools) -> dict[str, Any]:
    call_id = _call_id(required_str(block, "id", path))
    name = required_str(block, "name", path)
    tool_input = block.get("input")
    if tool_input is None:
        tool_input = {}
    elif not isinstance(tool_input, dict):
        raise invalid(f"{path}.input", "Input should be a valid object")
    try:
        arguments = json.dumps(tool_input, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        raise invalid(f"{path}.input", "the input is nested too deeply") from None
    return {"type": "function_call", "call_id": call_id, "name": tools.upstream_name(name), "arguments": arguments}


def _call_id(value: str) -> str:
    """Upstream call ids are at most 64 characters; longer ones are shortened the same way every time."""
    if len(value) <= _MAX_CALL_ID:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{value[: _MAX_CALL_ID - 9]}_{digest}"


def _paired(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop calls without an output and outputs without a call: the backend rejects both."""
    calls = {i["call_id"] for i in items if i["type"] == "function_call"}
    outputs = {i["call_id"] for i in items if i["type"] == "function_call_output"}
    return [
        i
        for i in items
        if (i["type"] != "function_call" or i["call_id"] in outputs)
        and (i["type"] != "function_call_output" or i["call_id"] in calls)
    ]


# --- top-level options --------------------------------------------------------------------------------


def _reasoning(body: dict[str, Any], default_effort: str, *, web_search: bool) -> tuple[dict[str, Any], bool]:
    """``reasoning`` for the upstream body, and whether the client wants thinking blocks back."""
    thinking = optional(body, "thinking", dict, "a valid object") or {}
    config = optional(body, "output_config", dict, "a valid object") or {}
    kind = optional(thinking, "type", str, "a valid string", "thinking.")
    if kind not in (None, "enabled", "adaptive", "disabled"):
        raise invalid("thinking.type", "Input should be 'enabled', 'adaptive' or 'disabled'")
    budget = optional(thinking, "budget_tokens", int, "a valid integer", "thinking.")
    display = optional(thinking, "display", str, "a valid string", "thinking.")
    asked = optional(config, "effort", str, "a valid string", "output_config.")
    if asked is not None and asked not in _EFFORTS:
        raise invalid("output_config.effort", "Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
    if asked is not None:
        effort = _EFFORTS[asked]
    elif kind == "enabled" and budget is not None:
        effort = next((name for limit, name in _BUDGET_EFFORT if budget <= limit), "xhigh")
    else:
        effort = default_effort
    if effort == "minimal" and web_search:
        effort = "low"  # the backend refuses web_search with minimal effort
    wanted = kind in ("enabled", "adaptive")
    reasoning: dict[str, Any] = {"effort": effort}
    if wanted and display != "omitted":
        reasoning["summary"] = "auto"
    return reasoning, wanted


def _text_format(config: Any) -> dict[str, Any] | None:
    """``output_config.format`` (structured output) as the upstream ``text.format``."""
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        return None
    fmt = as_object(fmt, "output_config.format")
    if fmt.get("type") != "json_schema":
        raise invalid("output_config.format.type", "Input should be 'json_schema'")
    schema = clean_schema(as_object(fmt.get("schema"), "output_config.format.schema"), "output_config.format.schema")
    return {"type": "json_schema", "name": "output", "schema": schema, "strict": False}


def _cache_key(session_id: str | None, metadata: Any, model: str, instructions: str, items: list[Any]) -> str:
    """A stable prompt_cache_key per client session (or, lacking one, per conversation start)."""
    source = session_id or _session_of(metadata.get("user_id") if isinstance(metadata, dict) else None)
    if not source:
        source = "start:" + json.dumps([instructions, items[:1]], sort_keys=True)
    digest = hashlib.sha256(f"{model}\n{source}".encode("utf-8", "surrogatepass")).hexdigest()
    return str(uuid.uuid5(_CACHE_NAMESPACE, digest))


def _session_of(user_id: Any) -> str | None:
    """The session id inside Claude Code's ``metadata.user_id`` (2.1.x JSON string, 2.0.x suffix)."""
    if not isinstance(user_id, str) or not user_id:
        return None
    try:
        parsed = json.loads(user_id)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("session_id"), str) and parsed["session_id"]:
        return str(parsed["session_id"])
    match = _SESSION_IN_USER_ID.search(user_id)
    return match.group(1) if match else user_id
