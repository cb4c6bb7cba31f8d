"""Anthropic tool definitions and ``tool_choice`` -> Responses tools (part of the Messages request translator).

Custom tools become function tools with ``strict: false`` and a schema cleaned of what the backend
rejects; names the backend cannot take (over 64 characters, other characters) are shortened
deterministically, and ``Tools.reverse`` maps them back for the answer. The ``web_search_*`` server tool
becomes the backend's ``web_search``. Unknown tool fields are never forwarded (allow-list). Pure.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from codexd.dialects.anthropic import as_object, invalid, optional, required_str
from codexd.jsonbody import EncodedList, compact
from codexd.jsonparse import TOOL_LISTS
from codexd.translate.recent import Recent

_NAME_OK = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64
# JSON Schema ``format`` values the backend accepts; others (``uri``...) fail the whole request.
_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
_SUBSCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_SUBSCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SUBSCHEMAS = frozenset(
    {"items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"}
    | {"unevaluatedProperties", "unevaluatedItems", "additionalItems"}
)  # a schema, or (``items`` in old drafts) a list of schemas
_MAX_DEPTH = 64
_TOUCHED = frozenset({"$schema", "format"}) | _SUBSCHEMA_MAPS | _SUBSCHEMA_LISTS | _SUBSCHEMAS
_LOCATION_KEYS = ("city", "region", "country", "timezone")


@dataclass(frozen=True, slots=True)
class Tools:
    """The upstream tool list and the name maps the rest of the translation needs."""

    specs: list[dict[str, Any]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # client name -> upstream name (function tools)
    web_search: frozenset[str] = frozenset()  # client names of web search server tools

    @property
    def reverse(self) -> dict[str, str]:
        """Upstream name -> client name, for the names that were changed."""
        return {short: name for name, short in self.names.items() if short != name}

    def upstream_name(self, name: str) -> str:
        """The upstream name for a tool named in history (possibly no longer in ``tools``)."""
        return self.names.get(name) or _shorten(name, set())


_RECENT: Recent[tuple[Tools, bytes]] = Recent(TOOL_LISTS)  # see TOOL_LISTS


def parse_tools(value: Any) -> Tools:
    """Check and translate the request's ``tools``. A list identical to one of the last few translated is
    taken from them (``recent``), with the JSON text of its specs: the upstream body splices that in."""
    if value is None:
        return Tools()
    tools, text = _RECENT.get(value, _translated)
    return Tools(EncodedList(tools.specs, text), tools.names, tools.web_search)


def _translated(value: Any) -> tuple[Tools, bytes]:
    tools = _parse_tools(value)
    return tools, compact(tools.specs)


def _parse_tools(value: Any) -> Tools:
    if not isinstance(value, list):
        raise invalid("tools", "Input should be a valid list")
    tools = [as_object(tool, f"tools.{i}") for i, tool in enumerate(value)]
    custom: list[str] = []
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        if kind in (None, "custom"):
            name = required_str(tool, "name", f"tools.{i}")
            if not name:
                raise invalid(f"tools.{i}.name", "String should have at least 1 character")
            custom.append(name)
        elif not isinstance(kind, str):
            raise invalid(f"tools.{i}.type", "Input should be a valid string")
        elif not kind.startswith("web_search_"):
            raise invalid(f"tools.{i}.type", f"the server tool {kind!r} is not supported by codexd")
    names = _short_names(custom)
    specs: list[dict[str, Any]] = []
    web_search: set[str] = set()
    for i, tool in enumerate(tools):
        if tool.get("type") in (None, "custom"):
            specs.append(_function(tool, f"tools.{i}", names))
            continue
        web_search.add(optional(tool, "name", str, "a valid string", f"tools.{i}.") or "web_search")
        spec = _web_search(tool, f"tools.{i}")
        if spec not in specs:
            specs.append(spec)
    return Tools(specs, names, frozenset(web_search))


def tool_choice(value: Any, tools: Tools) -> tuple[str | dict[str, Any], bool]:
    """Upstream ``tool_choice`` and ``parallel_tool_calls``."""
    if value is None:
        return "auto", True
    choice = as_object(value, "tool_choice")
    parallel = not optional(choice, "disable_parallel_tool_use", bool, "a valid boolean", "tool_choice.")
    kind = choice.get("type")
    if kind in ("auto", "any", "none"):
        return {"auto": "auto", "any": "required", "none": "none"}[kind], parallel
    if kind != "tool":
        raise invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    name = required_str(choice, "name", "tool_choice")
    if name in tools.web_search:
        return {"type": "web_search"}, parallel
    if name in tools.names:
        return {"type": "function", "name": tools.names[name]}, parallel
    raise invalid("tool_choice.name", f"no tool named {name!r} in tools")


def clean_schema(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """A JSON Schema the backend accepts: no ``$schema``, no unsupported ``format``, objects with properties."""
    cleaned = _clean_object(schema, path, 0)
    if "type" not in cleaned:
        cleaned["type"] = "object"
        cleaned.setdefault("properties", {})
    return cleaned


def _function(tool: dict[str, Any], path: str, names: dict[str, str]) -> dict[str, Any]:
    name = required_str(tool, "name", path)
    description = optional(tool, "description", str, "a valid string", f"{path}.")
    schema = optional(tool, "input_schema", dict, "a valid object", f"{path}.")
    spec: dict[str, Any] = {"type": "function", "name": names[name]}
    if description is not None:
        spec["description"] = description
    # An omitted ``strict`` means strict mode, which rejects Claude Code's optional properties.
    spec["parameters"] = clean_schema(schema or {"type": "object", "properties": {}}, f"{path}.input_schema")
    spec["strict"] = False
    return spec


def _web_search(tool: dict[str, Any], path: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "web_search"}
    allowed = optional(tool, "allowed_domains", list, "a valid list", f"{path}.")
    if allowed:
        for k, domain in enumerate(allowed):
            if not isinstance(domain, str):
                raise invalid(f"{path}.allowed_domains.{k}", "Input should be a valid string")
        spec["filters"] = {"allowed_domains": list(allowed)}
    location = optional(tool, "user_location", dict, "a valid object", f"{path}.")
    if location:
        picked = {k: location[k] for k in _LOCATION_KEYS if isinstance(location.get(k), str)}
        if picked:
            spec["user_location"] = {"type": "approximate", **picked}
    return spec


def _clean(node: Any, path: str, depth: int) -> Any:
    return _clean_object(node, path, depth) if isinstance(node, dict) else node


def _clean_object(node: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise invalid(path, "the schema is nested too deeply")
    # Most nodes (a property's type and description) have nothing to drop or clean: copied as they are.
    out = dict(node) if _TOUCHED.isdisjoint(node) else _cleaned_keys(node, path, depth)
    kind = out.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object and not isinstance(out.get("properties"), dict):
        out["properties"] = {}
    return out


def _cleaned_keys(node: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$schema" or (key == "format" and isinstance(value, str) and value not in _FORMATS):
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _clean(sub, path, depth + 1) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_clean(sub, path, depth + 1) for sub in value]
        elif key in _SUBSCHEMAS:
            subs = value if isinstance(value, list) else None
            out[key] = (
                [_clean(s, path, depth + 1) for s in subs] if subs is not None else _clean(value, path, depth + 1)
            )
        else:
            out[key] = value
    return out


def _short_names(names: list[str]) -> dict[str, str]:
    """client name -> upstream name; valid names stay, others get a deterministic short form."""
    taken = {n for n in names if _NAME_OK.fullmatch(n)}
    out = {n: n for n in taken}
    for name in names:
        if name not in out:
            out[name] = _shorten(name, taken)
            taken.add(out[name])
    return out


def _shorten(name: str, taken: set[str]) -> str:
    if _NAME_OK.fullmatch(name):
        return name
    clean = _NAME_BAD_CHARS.sub("_", name) or "tool"
    candidates = [clean]
    if clean.startswith("mcp__") and "__" in clean[5:]:
        candidates.append("mcp__" + clean.rsplit("__", 1)[1])  # mcp__server__tool -> mcp__tool
    for candidate in candidates:
        if len(candidate) <= _MAX_NAME and _NAME_OK.fullmatch(candidate) and candidate not in taken:
            return candidate
    salt = 0
    while True:
        digest = hashlib.sha256(f"{name}\n{salt}".encode("utf-8", "surrogatepass")).hexdigest()[:8]
        short = f"{clean[: _MAX_NAME - 9]}_{digest}"
        if short not in taken:
            return short
        salt += 1
