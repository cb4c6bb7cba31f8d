"""The backend's answer headers that codexd passes on to its clients. Pure.

The Codex CLI reads them from every answer, success or error: the rate-limit windows, credits and plan it shows
in ``/status`` and warns with, the model that served when the backend rerouted, and whether past reasoning was
already counted. Other clients may show them too; they name no secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from codexd.upstream.ratelimits import FAMILY

SINGLE = frozenset({"openai-model", "x-reasoning-included"})
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters, which Tornado refuses to send


def passed_on(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of an upstream answer that go on to the client, names lower-cased: every ``x-codex-*``, every
    header of a further rate-limit family (``x-<family>-*``, once ``x-<family>-primary-used-percent`` or its
    ``secondary`` announces the family), ``openai-model`` and ``x-reasoning-included``.

    ``x-models-etag`` is not among them: it stands for the catalog, which codexd changes (``models.catalog_etag``)."""
    lower = {name.lower(): value for name, value in headers.items()}
    families = [m for name in lower if name.endswith("-used-percent") and (m := FAMILY.match(name))]
    prefixes = ("x-codex-", *{f"x-{m.group(1)}-" for m in families})
    return {
        name: value
        for name, value in lower.items()
        if (name in SINGLE or name.startswith(prefixes)) and not _UNSAFE.search(value)
    }
