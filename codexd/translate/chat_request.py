"""Chat Completions request -> Codex Responses body (openai-chat.md §1-3, codex-backend.md §3.2).

Pure: a validated, allow-listed rebuild of the client's JSON; nothing is copied through unchecked.
Every malformed input raises ``bad_request`` with the JSON path of the bad field, never anything else.
Message and content-part mapping lives in ``chat_messages``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from codexd.errors import bad_request
from codexd.jsonbody import EncodedList, compact
from codexd.jsonparse import TOOL_LISTS
from codexd.models import ModelMap
from codexd.translate.chat_messages import Conversation, convert_messages, opt, opt_bool, opt_str
from codexd.translate.recent import Recent

FALLBACK_INSTRUCTIONS = "You are a helpful assistant."
_JSON_HINT = "Respond with a valid JSON object."
_SUMMARIES = frozenset({"auto", "concise", "detailed"})
# Chat parameters that are valid but cannot be honoured: never forwarded (the backend rejects them).
_UNSUPPORTED = {
    "audio": "Audio output is not supported.",
    "prediction": "Predicted outputs are not supported.",
}
_CACHE_NS = uuid.UUID("6f1f3c39-6b8e-4f0e-9a77-2a4d0c1f5e10")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The upstream Responses body plus what the answer side needs to know about the client."""

    upstream: dict[str, Any]
    stream: bool
    model: str  # the name the client asked for, echoed in every chunk
    include_usage: bool


def to_responses(
    body: Any,
    *,
    models: ModelMap,
    default_effort: str,
    instructions: str,
    session_key: str | None = None,
    reasoning_summary: str | None = None,
) -> ChatRequest:
    """Map a Chat Completions request body to a Responses body; raises ``bad_request`` on bad input.

    ``default_effort`` applies when the client names none ("" sends no reasoning); ``instructions`` is
    the default when the conversation has no leading system text; ``session_key`` (a client session
    header) seeds ``prompt_cache_key``; ``reasoning_summary`` asks for summaries unless the client did.
    """
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    _reject_unsupported(body)
    model = opt_str(body, "model", "model")
    stream = bool(opt_bool(body, "stream", "stream"))
    stream_options = opt(body, "stream_options", dict, "stream_options", "an object") or {}
    include_usage = bool(opt_bool(stream_options, "include_usage", "stream_options.include_usage"))

    convo = convert_messages(body.get("messages"))
    tools = _client_tools(body)
    upstream: dict[str, Any] = {
        "model": models.resolve(model),
        "instructions": convo.instructions or instructions or FALLBACK_INSTRUCTIONS,
        "input": convo.items,
        "tools": tools,
        "tool_choice": _tool_choice(body, tools),
        "parallel_tool_calls": _parallel(body),
        "store": False,
        "stream": True,
    }
    reasoning = _reasoning(body, default_effort, reasoning_summary)
    if reasoning is not None:
        upstream["reasoning"] = reasoning
        if reasoning.get("effort") != "none":
            upstream["include"] = ["reasoning.encrypted_content"]
    text = _text(body, convo, upstream)
    if text:
        upstream["text"] = text
    if body.get("service_tier") == "priority":
        upstream["service_tier"] = "priority"
    upstream["prompt_cache_key"] = _cache_key(body, session_key, upstream)
    return ChatRequest(upstream, stream, model or upstream["model"], stream and include_usage)


def _reject_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise bad_request("'n' must be a positive integer.", param="n")
    if isinstance(n, int) and n > 1:
        raise bad_request("Only one choice per request is supported: 'n' must be 1.", param="n")
    if body.get("logprobs") is True:
        raise bad_request("Log probabilities are not available from this backend.", param="logprobs")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        raise bad_request("Audio output is not supported.", param="modalities")
    for name, message in _UNSUPPORTED.items():
        if body.get(name) is not None:
            raise bad_request(message, param=name)


_RECENT: Recent[tuple[list[dict[str, Any]], bytes]] = Recent(TOOL_LISTS)  # see TOOL_LISTS


def _client_tools(body: dict[str, Any]) -> EncodedList:
    """The upstream tools, from an identical recent request's when there is one (agents send theirs with
    every request), with their JSON text for the upstream body. Requests with the deprecated ``functions``
    are translated each time."""
    if body.get("functions") is None:
        specs, text = _RECENT.get(body.get("tools"), _translated)
    else:
        specs = _tools(body)
        text = compact(specs)
    return EncodedList(specs, text)


def _translated(tools: Any) -> tuple[list[dict[str, Any]], bytes]:
    specs = _tools({"tools": tools})
    return specs, compact(specs)


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(opt(body, "tools", list, "tools", "an array") or []):
        path = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise bad_request("A tool must be an object.", param=path)
        if tool.get("type", "function") != "function":
            raise bad_request("Only tools of type 'function' are supported.", param=f"{path}.type")
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise bad_request("A function tool needs a 'function' object.", param=f"{path}.function")
        tools.append(_function_tool(fn, f"{path}.function"))
    for i, fn in enumerate(opt(body, "functions", list, "functions", "an array") or []):
        if not isinstance(fn, dict):
            raise bad_request("A function must be an object.", param=f"functions[{i}]")
        tools.append(_function_tool(fn, f"functions[{i}]"))
    return tools


def _function_tool(fn: dict[str, Any], path: str) -> dict[str, Any]:
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request("A function needs a non-empty 'name'.", param=f"{path}.name")
    params = opt(fn, "parameters", dict, f"{path}.parameters", "an object")
    tool: dict[str, Any] = {
        "type": "function",
        "name": name,
        "description": opt_str(fn, "description", f"{path}.description") or "",
        # A missing ``strict`` means false in Chat but true in Responses: always write it.
        "strict": bool(opt_bool(fn, "strict", f"{path}.strict")),
        # The client's schema as parsed from its request, not a copy: nothing changes it, and copying the
        # schemas of 18 tools took 0.4 ms of every such request.
        "parameters": params if params is not None else {"type": "object", "properties": {}},
    }
    return tool


def _tool_choice(body: dict[str, Any], tools: list[dict[str, Any]]) -> Any:
    if body.get("tool_choice") is not None:
        choice, param = body["tool_choice"], "tool_choice"
    elif body.get("function_call") is not None:
        choice, param = body["function_call"], "function_call"
    else:
        return "auto"
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        if choice.get("type", "function") == "function" and isinstance(name, str) and name:
            return {"type": "function", "name": name}
        if choice.get("type") == "allowed_tools":
            return _allowed_tools(choice, tools)
    raise bad_request(
        "'tool_choice' must be 'auto', 'none', 'required' or {'type': 'function', 'function': {'name': ...}}.",
        param=param,
    )


def _allowed_tools(choice: dict[str, Any], tools: list[dict[str, Any]]) -> str:
    """Filter ``tools`` in place to the allowed names; the backend then gets a plain mode string."""
    spec = choice.get("allowed_tools")
    listed = spec.get("tools") if isinstance(spec, dict) else None
    mode = spec.get("mode", "auto") if isinstance(spec, dict) else None
    if mode not in ("auto", "required") or not isinstance(listed, list):
        raise bad_request("'allowed_tools' needs a mode and a list of tools.", param="tool_choice.allowed_tools")
    names = set()
    for entry in listed:
        fn = entry.get("function") if isinstance(entry, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise bad_request("Each allowed tool needs a function name.", param="tool_choice.allowed_tools.tools")
        names.add(name)
    tools[:] = [t for t in tools if t["name"] in names]
    return str(mode)


def _parallel(body: dict[str, Any]) -> bool:
    value = opt_bool(body, "parallel_tool_calls", "parallel_tool_calls")
    return True if value is None else value


def _reasoning(body: dict[str, Any], default_effort: str, summary: str | None) -> dict[str, Any] | None:
    nested = opt(body, "reasoning", dict, "reasoning", "an object") or {}
    effort = opt_str(body, "reasoning_effort", "reasoning_effort") or opt_str(nested, "effort", "reasoning.effort")
    effort = effort or default_effort
    if not effort:
        return None
    reasoning: dict[str, Any] = {"effort": effort}
    asked = opt_str(nested, "summary", "reasoning.summary")
    if asked is not None and asked not in _SUMMARIES:
        raise bad_request("'reasoning.summary' must be auto, concise or detailed.", param="reasoning.summary")
    if (asked or summary) and effort != "none":
        reasoning["summary"] = asked or summary
    return reasoning


def _text(body: dict[str, Any], convo: Conversation, upstream: dict[str, Any]) -> dict[str, Any]:
    text: dict[str, Any] = {}
    verbosity = opt_str(body, "verbosity", "verbosity")
    if verbosity is not None:
        if verbosity not in ("low", "medium", "high"):
            raise bad_request("'verbosity' must be low, medium or high.", param="verbosity")
        text["verbosity"] = verbosity
    fmt = opt(body, "response_format", dict, "response_format", "an object")
    if fmt is None or fmt.get("type") == "text":
        return text
    if fmt.get("type") == "json_object":
        text["format"] = {"type": "json_object"}
        # The Responses API insists that the word JSON appears in the input for this mode.
        if "json" not in (upstream["instructions"] + convo.all_text).lower():
            upstream["instructions"] += "\n\n" + _JSON_HINT
        return text
    if fmt.get("type") == "json_schema":
        spec = opt(fmt, "json_schema", dict, "response_format.json_schema", "an object") or {}
        schema = opt(spec, "schema", dict, "response_format.json_schema.schema", "an object")
        out: dict[str, Any] = {
            "type": "json_schema",
            "name": opt_str(spec, "name", "response_format.json_schema.name") or "response",
            "schema": schema if schema is not None else {"type": "object"},
            "strict": bool(opt_bool(spec, "strict", "response_format.json_schema.strict")),
        }
        description = opt_str(spec, "description", "response_format.json_schema.description")
        if description:
            out["description"] = description
        text["format"] = out
        return text
    raise bad_request("'response_format.type' must be text, json_object or json_schema.", param="response_format.type")


def _cache_key(body: dict[str, Any], session_key: str | None, upstream: dict[str, Any]) -> str:
    given = body.get("prompt_cache_key")
    if isinstance(given, str) and given:
        return given
    if session_key:
        return session_key
    user = body.get("user")
    if isinstance(user, str) and user:
        seed = "user:" + user
    else:
        # Same instructions and opening turn -> same key on every later request of that conversation.
        first = upstream["input"][:1]
        seed = "conv:" + json.dumps([upstream["instructions"], first], sort_keys=True, default=str)
    return str(uuid.uuid5(_CACHE_NS, hashlib.sha256(seed.encode("utf-8", "replace")).hexdigest()))
