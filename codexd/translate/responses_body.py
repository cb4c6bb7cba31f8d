"""Normalise a client's Responses request body for the Codex backend (codex-backend.md §3.2). Pure.

Used for pass-through ``/v1/responses`` and as the last step of every translated request, so that no body
reaches the backend with a field it rejects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codexd.errors import bad_request
from codexd.models import ModelMap

# Fields the backend answers with 400 "Unsupported parameter: <name>" (or is known to reject).
REJECTED_FIELDS = (
    "temperature",
    "top_p",
    "max_output_tokens",
    "max_tokens",
    "max_completion_tokens",
    "previous_response_id",
    "frequency_penalty",
    "presence_penalty",
    "truncation",
    "user",
    "safety_identifier",
    "prompt_cache_retention",
    "context_management",
    "stream_options",
    "metadata",
    "background",
    "conversation",
    "top_logprobs",
    "logprobs",
    "max_tool_calls",
    "seed",
    "stop",
    "n",
    "logit_bias",
)
ENCRYPTED_REASONING = "reasoning.encrypted_content"


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """A body ready for the backend, plus what the client asked for that the body no longer says."""

    upstream: dict[str, Any]
    stream: bool
    model: str  # the model name the client used


def normalise(body: Any, *, models: ModelMap, instructions: str) -> ResponsesRequest:
    """Apply the backend's rules to a Responses body; raises ``CodexdError`` on malformed input."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad_request("'model' must be a string", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean", param="stream")
    out = {k: v for k, v in body.items() if k not in REJECTED_FIELDS}
    items = _input_items(body.get("input", []))
    given = body.get("instructions")
    if given is not None and not isinstance(given, str):
        raise bad_request("'instructions' must be a string", param="instructions")
    folded, items = fold_leading_system(items) if not given else ("", items)
    out["instructions"] = given or folded or instructions
    out["input"] = finish_items(items)
    out["model"] = models.resolve(model)
    out["stream"] = True
    out["store"] = False
    if out.get("reasoning") is not None:
        include = out.get("include")
        include = list(include) if isinstance(include, list) else []
        if ENCRYPTED_REASONING not in include:
            include.append(ENCRYPTED_REASONING)
        out["include"] = include
    return ResponsesRequest(out, stream, model or out["model"])


def _input_items(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list):
        raise bad_request("'input' must be a string or a list of items", param="input")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise bad_request("each input item must be an object", param=f"input[{i}]")
    return list(value)


def _text_of(item: dict[str, Any]) -> str | None:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if len(texts) == len(content):
            return "\n".join(texts)
    return None


def fold_leading_system(items: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Move the text of leading system/developer messages into instructions text."""
    texts: list[str] = []
    rest = list(items)
    while rest and rest[0].get("role") in ("system", "developer") and rest[0].get("type", "message") == "message":
        text = _text_of(rest[0])
        if text is None:
            break
        texts.append(text)
        rest.pop(0)
    return "\n\n".join(t for t in texts if t), rest


def finish_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Strip item ids, turn system into developer, drop id-only reasoning and unpaired tool items."""
    cleaned: list[dict[str, Any]] = []
    for item in items:
        item = {k: v for k, v in item.items() if k != "id"}
        if item.get("role") == "system":
            item["role"] = "developer"
        if item.get("type") == "reasoning" and not item.get("encrypted_content"):
            continue
        if item.get("type") == "item_reference":
            continue
        cleaned.append(item)
    return drop_unpaired(cleaned)


def drop_unpaired(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Remove tool calls without outputs and outputs without calls (the backend rejects both)."""
    pairs = (("function_call", "function_call_output"), ("custom_tool_call", "custom_tool_call_output"))
    keep = list(items)
    for call_type, output_type in pairs:
        calls = {_call_id(i) for i in keep if i.get("type") == call_type}
        outputs = {_call_id(i) for i in keep if i.get("type") == output_type}
        paired = calls & outputs
        keep = [i for i in keep if i.get("type") not in (call_type, output_type) or i.get("call_id") in paired]
    return keep


def _call_id(item: dict[str, Any]) -> str | None:
    call_id = item.get("call_id")
    if call_id is not None and not isinstance(call_id, str):
        raise bad_request(f"'call_id' of a {item.get('type')} item must be a string", param="input.call_id")
    return call_id
