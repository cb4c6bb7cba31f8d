"""Finds the service templates (``codexd.service``, ``codexd.socket``, ``codexd.plist``) and fills placeholders.

Installed wheels carry them as package data ``codexd/service-templates/``; a source checkout has them in the
repository's top-level ``service-templates/``. Placeholders are ``@NAME@``; filling is a single pass, so a value
that happens to contain ``@X@`` is never re-read, and a placeholder without a value is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from codexd.errors import CodexdError, ErrorKind

TEMPLATE_DIR = "service-templates"
_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def template_bytes(name: str) -> bytes:
    """The raw template ``name``, from the installed package or else the source checkout."""
    try:
        packaged = resources.files("codexd").joinpath(TEMPLATE_DIR).joinpath(name)
        if packaged.is_file():
            return packaged.read_bytes()
    except (ModuleNotFoundError, OSError):
        pass
    checkout = Path(__file__).resolve().parents[2] / TEMPLATE_DIR / name
    try:
        return checkout.read_bytes()
    except OSError:
        raise CodexdError(
            ErrorKind.INTERNAL, f"service template {name} not found in the codexd package nor in {checkout.parent}"
        ) from None


def template_text(name: str) -> str:
    """The template ``name`` as text."""
    return template_bytes(name).decode("utf-8")


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``@NAME@`` with ``values[NAME]``; an unknown placeholder raises ``CodexdError``."""

    def value(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise CodexdError(ErrorKind.INTERNAL, f"service template: no value for @{match.group(1)}@") from None

    return _PLACEHOLDER.sub(value, template)


def placeholders(template: str) -> set[str]:
    """The placeholder names a template uses."""
    return set(_PLACEHOLDER.findall(template))
