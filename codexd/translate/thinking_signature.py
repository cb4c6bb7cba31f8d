"""The thinking-block signature codec: how a Codex reasoning item survives a round trip through Anthropic clients.

Anthropic clients send ``thinking`` blocks back unmodified, but may keep only ``{type, thinking, signature}``
(Claude Code's ``clear_thinking`` edit), so everything needed to replay the upstream reasoning item lives in
the signature: ``codexd1.`` + base64url(JSON ``{"id": <rs_ id>, "enc": <encrypted_content>}``). Signatures
without that prefix (real Anthropic ones, empty strings, other proxies') decode to None and are dropped.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

PREFIX = "codexd1."


@dataclass(frozen=True, slots=True)
class ReasoningRef:
    """What a signature carries: the upstream reasoning item id (informational) and its encrypted content."""

    item_id: str | None
    encrypted_content: str


def encode(item_id: str | None, encrypted_content: str) -> str:
    """The signature for a reasoning item."""
    payload: dict[str, str] = {"enc": encrypted_content}
    if item_id:
        payload["id"] = item_id
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(signature: Any) -> ReasoningRef | None:
    """The reasoning item behind a codexd signature; None for anything else (never raises)."""
    if not isinstance(signature, str) or not signature.startswith(PREFIX):
        return None
    text = signature[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    enc = payload.get("enc")
    item_id = payload.get("id")
    if not isinstance(enc, str) or not enc:
        return None
    return ReasoningRef(item_id if isinstance(item_id, str) else None, enc)
