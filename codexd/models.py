"""Model catalog, aliases and the claude-* family mapping. Pure.

Clients name models their own way (``claude-sonnet-4-5``, ``gpt-4o``, a user alias); the Codex backend
knows slugs such as ``gpt-5.5``. Aliases from the configuration win; then Anthropic ids map by family;
anything else is sent as given so that the backend's own error names an unknown model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Used when the upstream catalog cannot be fetched: the slugs the backend served in 2026.
BUILTIN_MODELS: tuple[str, ...] = ("gpt-5.5", "gpt-5.4", "gpt-5.4-mini")
CREATED = 1767225600  # a fixed timestamp: the catalog carries none


@dataclass(frozen=True, slots=True)
class ModelMap:
    """How client model names become upstream slugs."""

    default: str
    small: str
    aliases: Mapping[str, str]

    def resolve(self, requested: str | None) -> str:
        """The upstream slug for a client's model name (empty or missing -> the default)."""
        if not requested:
            return self.default
        if requested in self.aliases:
            return self.aliases[requested]
        lowered = requested.lower()
        if lowered.startswith("claude"):
            return self.small if "haiku" in lowered else self.default
        return requested


def catalog_slugs(payload: Any) -> list[str]:
    """Listed slugs from an upstream ``{"models": [...]}`` answer, by ``priority``; [] when unusable."""
    models = payload.get("models") if isinstance(payload, dict) else None
    if not isinstance(models, list):
        return []
    listed = [
        m
        for m in models
        if isinstance(m, dict) and isinstance(m.get("slug"), str) and m.get("visibility", "list") == "list"
    ]
    listed.sort(key=lambda m: p if isinstance(p := m.get("priority"), int) else 1_000_000)
    return [m["slug"] for m in listed]


def openai_list(slugs: Iterable[str]) -> dict[str, Any]:
    """The OpenAI ``GET /v1/models`` list shape."""
    return {
        "object": "list",
        "data": [{"id": s, "object": "model", "created": CREATED, "owned_by": "openai"} for s in slugs],
    }


def anthropic_list(slugs: Iterable[str]) -> dict[str, Any]:
    """The Anthropic ``GET /v1/models`` list shape."""
    data = [{"type": "model", "id": s, "display_name": s, "created_at": "2026-01-01T00:00:00Z"} for s in slugs]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def with_aliases(slugs: Iterable[str], aliases: Mapping[str, str]) -> list[str]:
    """Catalog slugs followed by configured alias names, without duplicates, order kept."""
    seen: dict[str, None] = dict.fromkeys(slugs)
    seen.update(dict.fromkeys(aliases))
    return list(seen)


def catalog_with_aliases(payload: dict[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """The upstream ``{"models": [...]}`` catalog as the Codex CLI reads it, plus an entry per alias whose target
    it lists: a copy of the target's, under the alias's name."""
    models = payload.get("models")
    if not isinstance(models, list) or not aliases:
        return payload
    by_slug = {m["slug"]: m for m in models if isinstance(m, dict) and isinstance(m.get("slug"), str)}
    added = [
        {**by_slug[target], "slug": alias, "display_name": alias}
        for alias, target in aliases.items()
        if target in by_slug and alias not in by_slug
    ]
    return {**payload, "models": [*models, *added]}


def catalog_etag(etag: str, aliases: Mapping[str, str]) -> str:
    """The ETag of the catalog ``catalog_with_aliases`` makes from one whose ETag is ``etag``.

    The Codex CLI keeps the catalog's ETag and fetches the catalog again when an answer's ``x-models-etag``
    differs from it. Both go through this function, so they still match exactly when the backend's do, and both
    change when the aliases do (a reload). Without aliases the catalog is the backend's, and so is the ETag."""
    if not aliases:
        return etag
    mark = hashlib.sha256(json.dumps(sorted(aliases.items())).encode()).hexdigest()[:12]
    if etag.endswith('"'):  # an entity tag proper, "..." or W/"...": the mark goes inside the quotes
        return f'{etag[:-1]}-a{mark}"'
    return f"{etag}-a{mark}"
