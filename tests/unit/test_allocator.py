"""When ``codexd serve`` executes itself again on glibc's malloc, and when it leaves the process as it is."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from codexd import allocator
from codexd.cli import main

PYTHON = "/usr/bin/python3"


def argv_for(tmp_path: Path, **overrides: Any) -> list[str] | None:
    script = tmp_path / "codexd"
    script.write_text("", encoding="utf-8")
    given: dict[str, Any] = {
        "platform": "linux",
        "glibc": True,
        "gil_free": False,
        "executable": PYTHON,
        "orig_argv": ["python3", "-X", "importtime", str(script), "serve", "--port", "9000"],
        "script": str(script),
    }
    return allocator.restart_argv(**{**given, **overrides})


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    """A Linux process on glibc, PYTHONMALLOC unset, running a script: where codexd restarts. The execs it
    attempts are recorded instead of made."""
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    monkeypatch.setattr(allocator, "has_glibc", lambda: True)
    monkeypatch.setattr(allocator, "free_threaded", lambda: False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, __file__, "serve"])
    monkeypatch.setattr(sys, "argv", [__file__, "serve"])
    monkeypatch.setattr(allocator.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    return calls


def test_linux_with_glibc_restarts_with_the_same_command_line(tmp_path: Path) -> None:
    assert argv_for(tmp_path) == [PYTHON, "-X", "importtime", str(tmp_path / "codexd"), "serve", "--port", "9000"]


@pytest.mark.parametrize("value", ["malloc", "pymalloc", "debug", ""])
def test_a_pythonmalloc_already_set_is_kept_so_it_restarts_at_most_once(
    execs: list[tuple[str, list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PYTHONMALLOC", value)
    allocator.use_system_allocator()
    assert execs == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"platform": "darwin"},
        {"glibc": False},  # musl: no malloc_trim to hand pages back
        {"gil_free": True},  # a free-threaded Python accepts only mimalloc: it would not start
        {"executable": ""},  # an embedded interpreter
        {"script": "-c"},  # code given on the command line, or "-" for standard input: it cannot be read again
        {"orig_argv": ["python3"]},
    ],
    ids=["macos", "musl", "free-threaded", "no-interpreter", "not-a-file", "no-arguments"],
)
def test_stays_as_it_is_where_a_restart_may_not_pay_or_work(tmp_path: Path, overrides: dict[str, Any]) -> None:
    assert argv_for(tmp_path, **overrides) is None


def test_this_interpreter_is_told_apart_from_a_free_threaded_one() -> None:
    assert allocator.free_threaded() == ("free-threading" in sys.version)


def test_the_restart_sets_the_variable_and_keeps_the_environment(
    execs: list[tuple[str, list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_HOME", "/somewhere")
    allocator.use_system_allocator()
    [(path, argv, env)] = execs
    assert (path, argv) == (sys.executable, [sys.executable, __file__, "serve"])
    assert env["PYTHONMALLOC"] == "malloc"
    assert env["CODEX_HOME"] == "/somewhere"


def test_a_failed_exec_leaves_codexd_running_as_it_is(
    execs: list[tuple[str, list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: str, argv: list[str], env: dict[str, str]) -> None:
        execs.append((path, argv, env))
        raise PermissionError("execve blocked")

    monkeypatch.setattr(allocator.os, "execve", refuse)
    assert allocator.use_system_allocator() is None
    assert len(execs) == 1  # the exec was tried, and its failure did not escape


def test_only_serve_from_the_process_own_command_line_restarts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A caller's argument list (tests, embedding) never replaces the calling process, nor does another command."""
    restarts: list[int] = []
    monkeypatch.setattr(allocator, "use_system_allocator", lambda: restarts.append(1))
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    monkeypatch.setattr(sys, "argv", ["codexd", "config", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert restarts == []
    monkeypatch.setattr(sys, "argv", ["codexd", "serve", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert restarts == [1]
    assert "usage: codexd serve" in capsys.readouterr().out


def test_an_interpreter_that_ignores_python_variables_is_not_restarted(
    execs: list[tuple[str, list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``-E`` or ``-I`` the new interpreter would ignore PYTHONMALLOC too: 30 ms for nothing."""
    monkeypatch.setattr(sys, "flags", type("Flags", (), {"ignore_environment": 1})())
    allocator.use_system_allocator()
    assert execs == []


def test_the_restarted_program_decides_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the variable set (after the exec), nothing is looked up: not even which build this Python is."""
    monkeypatch.setenv("PYTHONMALLOC", "malloc")

    def unexpected() -> bool:
        raise AssertionError("looked up after the decision was made")

    monkeypatch.setattr(allocator, "free_threaded", unexpected)
    monkeypatch.setattr(allocator, "has_glibc", unexpected)
    assert allocator.use_system_allocator() is None
