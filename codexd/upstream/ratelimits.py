"""Parse the backend's ``x-codex-*`` rate-limit headers into windows. Pure.

A window counts only if its used percent or window minutes is non-zero, or a reset time is given.
Reset times are absolute unix seconds: ``reset-at`` when present, else now + ``reset-after-seconds``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

FAMILY = re.compile(r"^x-([a-z0-9-]+?)-(primary|secondary)-used-percent$")


@dataclass(frozen=True, slots=True)
class Window:
    """One rate-limit window of a limit family (``codex``, or an extra family the server names)."""

    family: str
    window: str  # primary or secondary
    used_percent: float
    window_minutes: int
    resets_at: float | None


def parse_windows(headers: Mapping[str, str], now: float) -> list[Window]:
    """Every window announced by the headers (names compared case-insensitively)."""
    lower = {k.lower(): v for k, v in headers.items()}
    windows: list[Window] = []
    for name in sorted(lower):
        match = FAMILY.match(name)
        if not match:
            continue
        family, which = match.groups()
        prefix = f"x-{family}-{which}-"
        used = _float(lower.get(prefix + "used-percent"))
        minutes = int(_float(lower.get(prefix + "window-minutes")) or 0)
        resets_at = _float(lower.get(prefix + "reset-at"))
        if resets_at is None:
            after = _float(lower.get(prefix + "reset-after-seconds"))
            resets_at = now + after if after is not None else None
        if used or minutes or resets_at is not None:
            windows.append(Window(family, which, used or 0.0, minutes, resets_at))
    return windows


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
