"""Chat ``messages`` -> Responses ``instructions`` + ``input`` items (openai-chat.md §2, §3.4).

Pure. Leading system/developer text becomes the instructions; later ones become ``developer`` messages
(the backend refuses role ``system``). Tool calls and their results become paired ``function_call`` /
``function_call_output`` items; orphans are dropped because the backend rejects them. Every bad field
raises ``bad_request`` with its JSON path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, TypeVar

from codexd.errors import bad_request
from codexd.jsonparse import SharedItems
from codexd.translate.progress import Progress, Resumable

T = TypeVar("T")

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_DETAILS = frozenset({"auto", "low", "high", "original"})
_URL_PREFIXES = ("data:", "https://", "http://")


@dataclass
class Conversation:
    """The translated messages: joined leading instructions, input items, and each message's texts (for hints)."""

    instructions: str = ""
    items: list[dict[str, Any]] = field(default_factory=list)
    texts: list[Sequence[str]] = field(default_factory=list)

    @property
    def all_text(self) -> str:
        """Every message's text, joined (only the JSON-mode check reads it)."""
        return "\n".join(chain.from_iterable(self.texts))


def opt(obj: dict[str, Any], key: str, typ: type[T], path: str, what: str) -> T | None:
    """``obj[key]`` when present and of type ``typ``; None when absent or null; else a 400 at ``path``."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
        raise bad_request(f"'{path}' must be {what}.", param=path)
    return value


def opt_str(obj: dict[str, Any], key: str, path: str) -> str | None:
    """An optional string field."""
    return opt(obj, key, str, path, "a string")


def opt_bool(obj: dict[str, Any], key: str, path: str) -> bool | None:
    """An optional boolean field."""
    return opt(obj, key, bool, path, "a boolean")


# Each remembered conversation's translation as its last turn left it.
_PROGRESS = Resumable()


def convert_messages(messages: Any) -> Conversation:
    """Translate and validate the ``messages`` array.

    For a conversation the body parser remembered (``SharedItems``), the messages it shares with its previous
    turn are taken as translated then, in one step, and so is any other user, tool or assistant message
    translated then (system and developer messages depend on where they stand, legacy function calls and
    results on the messages around them: those are translated every time); the items come as an
    ``EncodedList`` of the messages' JSON."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", param="messages")
    shared = messages if isinstance(messages, SharedItems) else None
    now = _PROGRESS.start(shared, None) if shared is not None else Progress(None, encode=False)
    pending_legacy: list[tuple[str, str]] = []  # (call_id, name) of legacy function_calls awaiting a result
    at_start = not now.done  # only system and developer messages so far
    for i in range(len(now.done), len(messages)):
        msg = messages[i]
        if not now.take(msg, settled=not pending_legacy):
            items: list[dict[str, Any]] = []
            texts: list[str] = []
            _convert_one(msg, i, items, texts, now.leading, pending_legacy, at_start)
            role = msg["role"]
            again = role in ("system", "developer", "function") or msg.get("function_call") is not None
            now.add(msg, items, texts, again=again, settled=not pending_legacy)
        at_start = at_start and msg["role"] in ("system", "developer")
    if shared is not None:
        _PROGRESS.keep(shared, now)
    return Conversation("\n\n".join(now.leading), now.upstream(_paired), now.texts)


def _convert_one(
    msg: Any,
    i: int,
    items: list[dict[str, Any]],
    texts: list[str],
    leading: list[str],
    pending_legacy: list[tuple[str, str]],
    at_start: bool,
) -> None:
    """Translate message ``i``: its items go to ``items``, its texts to ``texts``; leading system text
    (``at_start``) to ``leading``."""
    path = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise bad_request("Each message must be an object.", param=path)
    role = msg.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise bad_request(f"'{path}.role' must be one of {', '.join(sorted(ROLES))}.", param=f"{path}.role")
    if role in ("system", "developer"):
        parts = _text_parts(msg.get("content"), f"{path}.content", allow_null=False)
        texts.extend(parts)
        if at_start:
            leading.extend(p for p in parts if p)
        elif parts:
            content = [{"type": "input_text", "text": p} for p in parts]
            items.append({"type": "message", "role": "developer", "content": content})
    elif role == "user":
        content = _user_content(msg.get("content"), f"{path}.content", texts)
        if content:
            items.append({"type": "message", "role": "user", "content": content})
    elif role == "assistant":
        items.extend(_assistant(msg, i, texts, pending_legacy))
    elif role == "tool":
        call_id = msg.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise bad_request("A tool message needs a 'tool_call_id'.", param=f"{path}.tool_call_id")
        output = "".join(_text_parts(msg.get("content"), f"{path}.content", allow_null=True))
        items.append({"type": "function_call_output", "call_id": call_id, "output": output})
    else:  # legacy role "function": answers the oldest pending legacy call, by name when possible
        name = opt_str(msg, "name", f"{path}.name")
        output = "".join(_text_parts(msg.get("content"), f"{path}.content", allow_null=True))
        match = next((p for p in pending_legacy if p[1] == name), pending_legacy[0] if pending_legacy else None)
        if match is not None:
            pending_legacy.remove(match)
            items.append({"type": "function_call_output", "call_id": match[0], "output": output})


def _text_parts(content: Any, path: str, *, allow_null: bool) -> list[str]:
    """A string, or a list of ``text`` parts, as a list of strings (system, developer and tool content)."""
    if content is None and allow_null:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise bad_request(f"'{path}' must be a string or an array of text parts.", param=path)
    out: list[str] = []
    for j, part in enumerate(content):
        ppath = f"{path}[{j}]"
        if not isinstance(part, dict) or part.get("type") not in ("text", "input_text"):
            raise bad_request("Only text parts are allowed here.", param=f"{ppath}.type")
        out.append(_required_str(part, "text", ppath, empty_ok=True))
    return out


def _user_content(content: Any, path: str, texts: list[str]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        texts.append(content)
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise bad_request(f"'{path}' must be a string or an array of content parts.", param=path)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        ppath = f"{path}[{j}]"
        if not isinstance(part, dict):
            raise bad_request("A content part must be an object.", param=ppath)
        kind = part.get("type")
        if kind in ("text", "input_text"):
            text = _required_str(part, "text", ppath, empty_ok=True)
            texts.append(text)
            parts.append({"type": "input_text", "text": text})
        elif kind == "image_url":
            spec = part.get("image_url")
            if isinstance(spec, str):
                spec = {"url": spec}
            if not isinstance(spec, dict):
                raise bad_request("'image_url' must be an object with a 'url'.", param=f"{ppath}.image_url")
            parts.append(_image(spec.get("url"), spec.get("detail"), f"{ppath}.image_url"))
        elif kind == "input_image":
            if part.get("file_id") is not None:
                raise bad_request("File ids are not supported: send the image as a URL.", param=f"{ppath}.file_id")
            parts.append(_image(part.get("image_url"), part.get("detail"), ppath))
        elif kind in ("file", "input_file"):
            spec = part.get("file") if kind == "file" else part
            parts.append(_file(spec, f"{ppath}.file" if kind == "file" else ppath))
        elif kind == "input_audio":
            raise bad_request("Audio input is not supported.", param=f"{ppath}.type")
        else:
            raise bad_request(f"Unsupported content part type {kind!r}.", param=f"{ppath}.type")
    return parts


def _image(url: Any, detail: Any, path: str) -> dict[str, Any]:
    if not isinstance(url, str) or not url.startswith(_URL_PREFIXES):
        raise bad_request("An image needs an https:// or data: URL.", param=f"{path}.url")
    if detail is not None and (not isinstance(detail, str) or detail not in _DETAILS):
        raise bad_request("'detail' must be auto, low, high or original.", param=f"{path}.detail")
    return {"type": "input_image", "image_url": url, "detail": detail or "auto"}


def _file(spec: Any, path: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise bad_request("'file' must be an object.", param=path)
    if spec.get("file_id") is not None:
        raise bad_request("File ids are not supported: send the file inline as 'file_data'.", param=f"{path}.file_id")
    out = {"type": "input_file", "file_data": _required_str(spec, "file_data", path)}
    filename = opt_str(spec, "filename", f"{path}.filename")
    if filename:
        out["filename"] = filename
    return out


def _assistant(
    msg: dict[str, Any], index: int, texts: list[str], pending_legacy: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    path = f"messages[{index}]"
    items: list[dict[str, Any]] = []
    content = msg.get("content")
    pieces: list[str] = []
    if isinstance(content, str):
        pieces = [content]
    elif isinstance(content, list):
        for j, part in enumerate(content):
            ppath = f"{path}.content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ("text", "output_text", "refusal") or not isinstance(part, dict):
                raise bad_request("Assistant content parts must be text or refusal.", param=f"{ppath}.type")
            pieces.append(_required_str(part, "refusal" if kind == "refusal" else "text", ppath, empty_ok=True))
    elif content is not None:
        raise bad_request(f"'{path}.content' must be a string, an array or null.", param=f"{path}.content")
    refusal = opt_str(msg, "refusal", f"{path}.refusal")
    if refusal and not any(pieces):
        pieces = [refusal]
    pieces = [p for p in pieces if p]
    texts.extend(pieces)
    if pieces:
        parts = [{"type": "output_text", "text": p} for p in pieces]
        items.append({"type": "message", "role": "assistant", "content": parts})
    for j, call in enumerate(opt(msg, "tool_calls", list, f"{path}.tool_calls", "an array") or []):
        items.append(_tool_call(call, f"{path}.tool_calls[{j}]"))
    legacy = opt(msg, "function_call", dict, f"{path}.function_call", "an object")
    if legacy is not None:
        item = _function_call(legacy, f"call_legacy_{index}", f"{path}.function_call")
        pending_legacy.append((item["call_id"], item["name"]))
        items.append(item)
    return items


def _tool_call(call: Any, path: str) -> dict[str, Any]:
    if not isinstance(call, dict):
        raise bad_request("A tool call must be an object.", param=path)
    if call.get("type", "function") != "function":
        raise bad_request("Only function tool calls are supported.", param=f"{path}.type")
    call_id = _required_str(call, "id", path)
    fn = call.get("function")
    if not isinstance(fn, dict):
        raise bad_request("A tool call needs a 'function' object.", param=f"{path}.function")
    return _function_call(fn, call_id, f"{path}.function")


def _function_call(fn: dict[str, Any], call_id: str, path: str) -> dict[str, Any]:
    name = _required_str(fn, "name", path)
    args = fn.get("arguments")
    if isinstance(args, dict):
        args = json.dumps(args)
    elif args is None:
        args = "{}"
    elif not isinstance(args, str):
        raise bad_request("'arguments' must be a JSON string.", param=f"{path}.arguments")
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": args}


def _required_str(obj: dict[str, Any], key: str, path: str, *, empty_ok: bool = False) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not (value or empty_ok):
        raise bad_request(
            f"'{path}.{key}' must be a {'string' if empty_ok else 'non-empty string'}.", param=f"{path}.{key}"
        )
    return value


def _paired(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep a call only with a later output and an output only after its call (one each per call_id)."""
    called: set[str] = set()
    answered: set[str] = set()
    kept: list[dict[str, Any]] = []
    for item in items:
        kind, call_id = item.get("type"), item.get("call_id")
        if kind == "function_call":
            if call_id in called:
                continue
            called.add(str(call_id))
        elif kind == "function_call_output":
            if call_id not in called or call_id in answered:
                continue
            answered.add(str(call_id))
        kept.append(item)
    return [i for i in kept if i.get("type") != "function_call" or i.get("call_id") in answered]
