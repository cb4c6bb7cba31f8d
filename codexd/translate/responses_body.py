"""Normalise a client's Responses request body for the Codex backend (codex-backend.md §3.2). Pure.

Used for ``/v1/responses`` (the openai SDK's Responses calls, the Codex CLI), so that no body reaches the backend
with a field it rejects. A long conversation's next turn costs only its new items (``input_items``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codexd.errors import bad_request
from codexd.jsonbody import EncodedList, compact
from codexd.jsonparse import TOOL_LISTS, SharedItems, SharedList
from codexd.models import ModelMap
from codexd.translate.progress import CALLS, OUTPUTS, Item, Progress, Resumable
from codexd.translate.recent import Recent

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
    given = body.get("instructions")
    if given is not None and not isinstance(given, str):
        raise bad_request("'instructions' must be a string", param="instructions")
    folded, out["input"] = input_items(body.get("input", []), fold=not given)
    out["instructions"] = given or folded or instructions
    out["model"] = models.resolve(model)
    out["stream"] = True
    out["store"] = False
    tools = out.get("tools")
    if type(tools) is SharedList:  # a large list resent unchanged: its text is spliced into the upstream body
        out["tools"] = EncodedList(tools, _TOOL_TEXTS.get(tools, compact))
    if out.get("reasoning") is not None:
        include = out.get("include")
        include = list(include) if isinstance(include, list) else []
        if ENCRYPTED_REASONING not in include:
            include.append(ENCRYPTED_REASONING)
        out["include"] = include
    return ResponsesRequest(out, stream, model or out["model"])


# Each remembered conversation's input items as its last turn left them, and the last tool lists' texts.
_PROGRESS = Resumable()
_TOOL_TEXTS: Recent[bytes] = Recent(TOOL_LISTS)


def input_items(value: Any, *, fold: bool) -> tuple[str, list[Item]]:
    """The input items as the backend takes them (``finished_item``), calls and outputs paired; with ``fold``
    (the body has no instructions), the texts of the leading system and developer messages are taken out
    and returned, joined, to be the instructions.

    For a conversation the body parser remembered (``SharedItems``), the items the previous turn had are taken
    as that turn left them, and the result is an ``EncodedList`` of their JSON (``translate/progress.py``):
    a long Codex CLI session's next turn reads, changes and encodes only its new items."""
    if isinstance(value, str):
        value = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list):
        raise bad_request("'input' must be a string or a list of items", param="input")
    shared = value if isinstance(value, SharedItems) else None
    now = _PROGRESS.start(shared, fold) if shared is not None else Progress(fold, encode=False)
    at_start = not now.done
    for i in range(len(now.done), len(value)):
        item = value[i]
        text = _text_of(item) if at_start and fold and _is_system(item) else None
        if text is not None:
            if text:
                now.leading.append(text)
            now.add(item, [], (), again=True)
            continue
        at_start = False
        if not now.take(item):
            now.add(item, finished_item(item, i), (), again=False)
    if shared is not None:
        _PROGRESS.keep(shared, now)
    return "\n\n".join(now.leading), now.upstream(drop_unpaired)


def _is_system(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("role") in ("system", "developer")
        and item.get("type", "message") == "message"
    )


def _text_of(item: dict[str, Any]) -> str | None:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if len(texts) == len(content):
            return "\n".join(texts)
    return None


def finished_item(item: Any, i: int) -> list[Item]:
    """Input item ``i`` as the backend takes it: without its id, a system message as a developer one; nothing
    for a reasoning item without its encrypted content or an item reference (the backend keeps no items)."""
    if not isinstance(item, dict):
        raise bad_request("each input item must be an object", param=f"input[{i}]")
    kind = item.get("type")
    if kind is not None and not isinstance(kind, str):
        raise bad_request("the 'type' of an input item must be a string", param=f"input[{i}].type")
    if kind == "item_reference" or (kind == "reasoning" and not item.get("encrypted_content")):
        return []
    if (kind in CALLS or kind in OUTPUTS) and not isinstance(item.get("call_id"), str):
        raise bad_request(f"'call_id' of a {kind} item must be a string", param=f"input[{i}].call_id")
    out = {k: v for k, v in item.items() if k != "id"}
    if out.get("role") == "system":
        out["role"] = "developer"
    return [out]


def drop_unpaired(items: list[Item]) -> list[Item]:
    """Remove tool calls without outputs and outputs without calls (the backend rejects both)."""
    keep = list(items)
    for output_type, call_type in OUTPUTS.items():
        calls = {i["call_id"] for i in keep if i.get("type") == call_type}
        outputs = {i["call_id"] for i in keep if i.get("type") == output_type}
        paired = calls & outputs
        keep = [i for i in keep if i.get("type") not in (call_type, output_type) or i["call_id"] in paired]
    return keep
