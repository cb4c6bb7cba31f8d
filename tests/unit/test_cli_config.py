"""``codexd config path|get|set`` and ``codexd --version``: what the user types and sees, and the file left behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import platformdirs
import pytest

from codexd import __version__
from codexd.cli import EXIT_CONFIG, main
from codexd.settings import KEYS

COMMENTED = """\
# codexd configuration -- my notes stay here
[server]
# the port my editor plugin expects
port = 9000  # do not change without telling the team
host = "127.0.0.1"

[models]
default = "gpt-5.5"   # aligned on purpose

[models.aliases]
fast = "gpt-5.4-mini"  # quick answers
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CODEXD_* or proxy variables from the developer's shell; a private XDG config dir."""
    for key in KEYS:
        for var in key.env:
            monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("CODEXD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "config.toml"
    path.parent.mkdir()
    path.write_text(COMMENTED, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def cli(path: Path, *argv: str) -> list[str]:
    return ["config", "--config", str(path), *argv]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- path and get ------------------------------------------------------------------------------------


def test_path_prints_the_platform_location(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "config", "path") == (0, f"{Path(platformdirs.user_config_dir('codexd'))}/config.toml\n", "")


def test_path_follows_codexd_config_and_the_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CODEXD_CONFIG", str(tmp_path / "env.toml"))
    assert run(capsys, "config", "path")[1] == f"{tmp_path / 'env.toml'}\n"
    assert run(capsys, "config", "--config", str(tmp_path / "flag.toml"), "path")[1] == f"{tmp_path / 'flag.toml'}\n"


def test_get_prints_the_effective_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, config: Path
) -> None:
    assert run(capsys, *cli(config, "get", "server.port"))[:2] == (0, "9000\n")
    assert run(capsys, *cli(config, "get", "models.small"))[1] == "gpt-5.4-mini\n"  # a default
    assert run(capsys, *cli(config, "get", "models.aliases.fast"))[1] == "gpt-5.4-mini\n"
    assert run(capsys, *cli(config, "get", "models.aliases"))[1] == "fast = gpt-5.4-mini\n"
    assert run(capsys, *cli(config, "get", "models.reasoning_content"))[1] == "false\n"
    monkeypatch.setenv("CODEXD_PORT", "9999")
    assert run(capsys, *cli(config, "get", "server.port"))[1] == "9999\n"


def test_get_of_a_missing_file_shows_defaults(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, *cli(tmp_path / "absent.toml", "get", "models.default"))[:2] == (0, "gpt-5.5\n")
    assert not (tmp_path / "absent.toml").exists()


def test_get_of_an_unknown_key_fails_with_a_message(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    status, out, err = run(capsys, *cli(config, "get", "server.prot"))
    assert (status, out) == (1, "")
    assert "unknown key 'server.prot'" in err


def test_get_works_on_a_file_serve_would_refuse_to_start_with(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Listening on 0.0.0.0 without a key stops ``serve``, but the user must still be able to inspect it."""
    path = tmp_path / "c.toml"
    path.write_text('[server]\nhost = "0.0.0.0"\n', encoding="utf-8")
    assert run(capsys, *cli(path, "get", "server.host"))[:2] == (0, "0.0.0.0\n")


def test_get_of_a_broken_file_exits_78(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = 'x'\n", encoding="utf-8")
    status, _, err = run(capsys, *cli(path, "get", "server.port"))
    assert status == EXIT_CONFIG == 78
    assert str(path) in err and "server.port" in err and "expected an integer" in err


# --- set ----------------------------------------------------------------------------------------------


def test_set_changes_only_the_value_and_keeps_comments(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    status, _, err = run(capsys, *cli(config, "set", "server.port", "9001"))
    assert status == 0
    assert str(config) in err
    assert config.read_text(encoding="utf-8") == COMMENTED.replace("port = 9000", "port = 9001")
    assert run(capsys, *cli(config, "get", "server.port"))[1] == "9001\n"


def test_set_adds_keys_and_tables_without_losing_anything(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    for argv in (
        ("models.small", "gpt-5.4-nano"),
        ("upstream.idle_timeout", "12"),
        ("models.aliases.big", "gpt-5.5"),
        ("server.allowed_hosts", "a.example, b.example"),
        ("models.reasoning_content", "yes"),
    ):
        assert run(capsys, *cli(config, "set", *argv))[0] == 0
    text = config.read_text(encoding="utf-8")
    for line in COMMENTED.splitlines():
        assert line in text
    doc = tomllib.loads(text)
    assert doc["models"]["small"] == "gpt-5.4-nano"
    assert doc["upstream"]["idle_timeout"] == 12.0
    assert doc["models"]["aliases"] == {"fast": "gpt-5.4-mini", "big": "gpt-5.5"}
    assert doc["server"]["allowed_hosts"] == ["a.example", "b.example"]
    assert doc["models"]["reasoning_content"] is True


def test_set_creates_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    assert run(capsys, *cli(path, "set", "models.default", "gpt-5.4"))[0] == 0
    assert tomllib.loads(path.read_text(encoding="utf-8")) == {"models": {"default": "gpt-5.4"}}


@pytest.mark.parametrize(
    ("key", "value", "status", "fragment"),
    [
        ("server.port", "eighty", 78, "expected an integer"),
        ("server.port", "0", 78, "expected 1-65535"),
        ("server.port", "65536", 78, "expected 1-65535"),
        ("upstream.idle_timeout", "-3", 78, "expected a non-negative number"),
        ("log.level", "loud", 78, "expected one of debug, info, warning, error"),
        ("models.reasoning_content", "maybe", 78, "expected true or false"),
        ("server.prot", "1", 1, "unknown key 'server.prot'"),
        ("models.aliases", "x", 1, "models.aliases.NAME"),
    ],
)
def test_set_refuses_invalid_values_and_leaves_the_file_alone(
    capsys: pytest.CaptureFixture[str], config: Path, key: str, value: str, status: int, fragment: str
) -> None:
    before = config.read_bytes()
    got, _, err = run(capsys, *cli(config, "set", key, value))
    assert got == status
    assert fragment in err
    assert config.read_bytes() == before
    assert [p.name for p in config.parent.iterdir()] == [config.name]  # no temporary file left behind


def test_set_refuses_to_rewrite_a_file_that_is_already_invalid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("# mine\n[server]\nprot = 1\n", encoding="utf-8")
    status, _, err = run(capsys, *cli(path, "set", "server.port", "9001"))
    assert status == 78
    assert "unknown key 'server.prot'" in err
    assert path.read_text(encoding="utf-8") == "# mine\n[server]\nprot = 1\n"


def test_setting_the_api_key_makes_the_file_private(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    os.chmod(config, 0o644)
    assert run(capsys, *cli(config, "set", "server.api_key", "k-0123456789"))[0] == 0
    assert mode(config) == 0o600
    assert run(capsys, *cli(config, "set", "server.port", "9002"))[0] == 0  # later edits keep it private
    assert mode(config) == 0o600
    assert tomllib.loads(config.read_text(encoding="utf-8"))["server"]["api_key"] == "k-0123456789"
    assert "# the port my editor plugin expects" in config.read_text(encoding="utf-8")


def test_a_new_file_without_secrets_is_readable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    assert run(capsys, *cli(path, "set", "server.port", "9001"))[0] == 0
    assert mode(path) == 0o644
    assert run(capsys, *cli(path, "set", "server.api_key", "k-0123456789"))[0] == 0
    assert mode(path) == 0o600


# --- speed: no server code for these commands ---------------------------------------------------------


def test_version_and_config_path_run_as_commands(tmp_path: Path) -> None:
    env = {**os.environ, "CODEXD_CONFIG": str(tmp_path / "c.toml")}
    version = subprocess.run(
        [sys.executable, "-m", "codexd", "--version"], capture_output=True, text=True, timeout=30, env=env
    )
    assert (version.returncode, version.stdout) == (0, f"codexd {__version__}\n")
    path = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "codexd", "config", "path"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert (path.returncode, path.stdout) == (0, f"{tmp_path / 'c.toml'}\n")
    imported = {line.split("|")[-1].strip() for line in path.stderr.splitlines() if line.startswith("import time:")}
    assert "codexd.cli" in imported
    assert not {m for m in imported if m.split(".")[0] in ("tornado", "pycurl", "prometheus_client", "tomlkit")}
