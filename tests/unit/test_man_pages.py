"""The man pages: lint-clean for mandoc and groff, and complete (every command, option and config key)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from codexd.settings import KEYS, Key

MAN = Path(__file__).resolve().parents[2] / "man"
PAGES = ("codexd.1", "codexd.toml.5")
TYPE_WORDS = {str: "String", int: "Integer", float: "Number", bool: "Boolean", list: "Array of strings",
              dict: "Table of strings"}  # fmt: skip


def plain(text: str) -> str:
    """roff source with the escapes used in our pages turned into the characters they print."""
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\(dq", '"').replace("\\(em", "—").replace("\\&", "")


def source(name: str) -> str:
    return plain((MAN / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES)
def test_mandoc_lint_is_clean(page: str) -> None:
    if shutil.which("mandoc") is None:
        pytest.skip("mandoc is not installed (apt-get install mandoc)")
    proc = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(MAN / page)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


@pytest.mark.parametrize("page", PAGES)
def test_groff_has_no_warnings(page: str) -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (apt-get install groff)")
    proc = subprocess.run(["groff", "-ww", "-z", "-man", str(MAN / page)], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")  # groff exits 0 even on unknown macros: stderr tells


def entry(page: str, name: str) -> str:
    """The text of the ``.TP`` entry whose tag is ``.B name``, macros dropped."""
    lines = page.splitlines()
    start = next(i + 1 for i, line in enumerate(lines[:-1]) if line == ".TP" and lines[i + 1] == f".B {name}")
    body: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith((".TP", ".SS", ".SH")):
            break
        body.append(re.sub(r"^\.[A-Z]{1,2} ?", "", line).replace('"', "") if line.startswith(".") else line)
    return " ".join(body)


def default_text(key: Key) -> str:
    value = key.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return "[]" if isinstance(value, list) else "{}"
    if isinstance(value, str):
        return value or '""'
    return str(value)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.name)
def test_every_config_key_is_documented_with_type_default_and_environment(key: Key) -> None:
    page = source("codexd.toml.5")
    assert f".TP\n.B {key.name}\n" in page, f"{key.name} is missing from codexd.toml.5"
    text = entry(page, key.name)
    assert text.startswith(f"{TYPE_WORDS[key.type]}; default {default_text(key)}"), text
    for var in key.env + key.fallback_env:
        assert var in text, f"{key.name}: environment variable {var} is not named"


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command name, such as ``install`` or ``config get``, with its parser."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(commands(sub, f"{prefix}{name} "))
    return found


def test_every_command_and_option_is_in_codexd_1() -> None:
    from codexd.cli import build_parser  # needs every command module; fails loudly until they all exist

    parser = build_parser()
    page = source("codexd.1")
    subcommands = commands(parser)
    assert {"serve", "config", "install", "uninstall", "start", "stop", "restart", "reload", "status", "logs",
            "doctor"} <= set(subcommands)  # fmt: skip
    for name, sub in {"": parser, **subcommands}.items():
        if name:
            assert re.search(rf"^\.B[IR]* \"?{re.escape(name)}\b", page, re.MULTILINE), f"command {name!r}"
        for action in sub._actions:
            for option in action.option_strings:
                assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", page), f"{name or 'codexd'} {option}"


def test_codexd_1_names_every_environment_variable() -> None:
    page = source("codexd.1")
    section = page.split(".SH ENVIRONMENT", 1)[1].split(".SH ", 1)[0]
    expected = {var for key in KEYS for var in key.env + key.fallback_env}
    expected |= {"CODEXD_CONFIG", "CODEX_HOME", "NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS"}
    assert not {var for var in expected if not re.search(rf"\b{var}\b", section)}


def test_codexd_1_has_the_sections_users_look_for() -> None:
    page = source("codexd.1")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "ENDPOINTS", "SIGNALS", "ENVIRONMENT", "FILES",
                    "EXIT STATUS", "EXAMPLES", "SEE ALSO"):  # fmt: skip
        assert f".SH {section}\n" in page
    endpoints = ("POST /v1/chat/completions", "POST /v1/responses", "POST /v1/messages", "GET /v1/models",
                 "POST /v1/messages/count_tokens", "GET /health", "GET /ready", "GET /metrics")  # fmt: skip
    for endpoint in endpoints:
        assert f".B {endpoint}\n" in page
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:8765\n" in page
    assert "OPENAI_BASE_URL=http://127.0.0.1:8765/v1\n" in page
    assert "io.github.codexd" in page  # the launchd label users see in launchctl
