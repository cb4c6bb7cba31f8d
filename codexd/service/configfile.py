"""The starter configuration file ``codexd install`` writes when none exists: every key, commented out.

Generated from ``codexd.settings.KEYS`` so it never misses a key. An api key from the installing shell's
``CODEXD_API_KEY`` is written for real (the service does not see the shell's environment), and then the
file is private (0600).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codexd.service.files import write_atomic
from codexd.settings import KEYS

HEADER = """\
# codexd configuration (TOML). Every key is optional; the commented values are the defaults.
# Environment variables override this file, and command-line flags override both: see codexd.toml(5).
# `codexd config set KEY VALUE` edits this file and keeps its comments.
"""


def toml_value(value: Any) -> str:
    """``value`` written as TOML."""
    import tomlkit

    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        table.update(value)
        return str(table.as_string())
    return str(tomlkit.item(value).as_string())


def default_config_text(api_key: str = "") -> str:
    """The commented starter file; ``api_key`` (if any) is set as ``server.api_key``."""
    lines = [HEADER]
    section = ""
    for key in KEYS:
        table, name = key.name.rsplit(".", 1)
        if table != section:
            lines.append(f"\n[{table}]\n")
            section = table
        env = f" (env {', '.join(key.env)})" if key.env else ""
        lines.append(f"# {key.help or name}{env}\n")
        if key.name == "server.api_key" and api_key:
            lines.append(f"{name} = {toml_value(api_key)}\n")
        else:
            lines.append(f"# {name} = {toml_value(key.default)}\n")
    return "".join(lines)


def ensure_config(path: Path, env: Mapping[str, str]) -> bool:
    """Create ``path`` with the starter text unless it exists; True when it was created."""
    if path.exists():
        return False
    api_key = env.get("CODEXD_API_KEY", "")
    write_atomic(path, default_config_text(api_key), 0o600 if api_key else 0o644)
    return True
