"""Settings: defaults, the TOML file, environment variables and ``codexd serve`` flags, in that precedence."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from codexd.cli import build_parser
from codexd.cli.serve_cmd import flags_of
from codexd.errors import CodexdError, ErrorKind
from codexd.settings import KEYS, Settings, default_config_path, is_loopback, load_settings

FULL_FILE = """\
[server]
host = "::1"
port = 9100
api_key = "file-key-123456"

[upstream]
chatgpt_base_url = "http://127.0.0.1:1/codex"
openai_base_url = "http://127.0.0.1:1/v1"
refresh_url = "http://127.0.0.1:1/oauth/token"
proxy = "http://proxy.example:3128"
ca_bundle = "/etc/ssl/corp.pem"
ca_dir = "/etc/ssl/corp-cas"
idle_timeout = 42
connect_timeout = 2.5

[models]
default = "gpt-5.4"
small = "gpt-5.4-nano"

[models.aliases]
fast = "gpt-5.4-mini"
"my model" = "gpt-5.5"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, env: dict[str, str] | None = None, **flags: Any) -> Settings:
    names = {"host": "server.host", "port": "server.port", "api_key": "server.api_key", "log_level": "log.level"}
    return load_settings({names[k]: v for k, v in flags.items()}, env=env or {}, path=path)


def config_error(path: Path, env: dict[str, str] | None = None, **flags: Any) -> str:
    with pytest.raises(CodexdError) as caught:
        load(path, env, **flags)
    assert caught.value.kind is ErrorKind.CONFIG
    return caught.value.message


# --- defaults and the file ------------------------------------------------------------------------


def test_a_missing_file_means_every_default(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    settings = load(path)
    assert settings == Settings(codex_home=Path.home() / ".codex", config_path=path)
    assert (settings.host, settings.port, settings.api_key) == ("127.0.0.1", 8765, "")
    assert (settings.default_model, settings.small_model, dict(settings.aliases)) == ("gpt-5.5", "gpt-5.4-mini", {})


def test_the_schema_and_the_dataclass_agree_on_defaults() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for key in KEYS:
        field = fields[key.attr]
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        assert default == (tuple(key.default) if key.type is list else key.default), key.name


def test_every_table_of_the_file_is_read(tmp_path: Path) -> None:
    settings = load(write(tmp_path, FULL_FILE))
    assert (settings.host, settings.port, settings.api_key) == ("::1", 9100, "file-key-123456")
    assert settings.chatgpt_base_url == "http://127.0.0.1:1/codex"
    assert settings.openai_base_url == "http://127.0.0.1:1/v1"
    assert settings.refresh_url == "http://127.0.0.1:1/oauth/token"
    assert (settings.proxy, settings.ca_bundle) == ("http://proxy.example:3128", "/etc/ssl/corp.pem")
    assert settings.ca_dir == "/etc/ssl/corp-cas"
    assert (settings.idle_timeout, settings.connect_timeout) == (42.0, 2.5)
    assert isinstance(settings.idle_timeout, float)  # an integer is fine where seconds are expected
    assert (settings.default_model, settings.small_model) == ("gpt-5.4", "gpt-5.4-nano")
    assert dict(settings.aliases) == {"fast": "gpt-5.4-mini", "my model": "gpt-5.5"}


def test_a_commented_out_file_is_all_defaults(tmp_path: Path) -> None:
    settings = load(write(tmp_path, "# [server]\n# port = 1\n"))
    assert settings.port == 8765


def test_the_file_lives_in_the_platform_config_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_config_path({}) == Path(platformdirs.user_config_dir("codexd")) / "config.toml"
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CONFIG_HOME", "/srv/xdg")
        assert default_config_path({}) == Path("/srv/xdg/codexd/config.toml")


def test_codexd_config_names_another_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9300\n")
    assert default_config_path({"CODEXD_CONFIG": str(path)}) == path
    assert load_settings(env={"CODEXD_CONFIG": str(path)}).port == 9300


# --- precedence: flag > env > file > default --------------------------------------------------------

ENV_OVERRIDES = [
    ("CODEXD_HOST", "localhost", "host", "localhost"),
    ("CODEXD_PORT", "9400", "port", 9400),
    ("CODEXD_API_KEY", "env-key-123456", "api_key", "env-key-123456"),
    ("CODEXD_LOG_LEVEL", "warning", "log_level", "warning"),
    ("CODEXD_CHATGPT_BASE_URL", "http://127.0.0.1:2/codex", "chatgpt_base_url", "http://127.0.0.1:2/codex"),
    ("CODEXD_OPENAI_BASE_URL", "http://127.0.0.1:2/v1", "openai_base_url", "http://127.0.0.1:2/v1"),
    ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", "http://127.0.0.1:2/t", "refresh_url", "http://127.0.0.1:2/t"),
    ("CODEXD_HTTPS_PROXY", "http://a.example:1", "proxy", "http://a.example:1"),
    ("CODEXD_CA_BUNDLE", "/env/ca.pem", "ca_bundle", "/env/ca.pem"),
]
# Machine-wide variables replace the default but not the user's file.
GENERIC_ENV = [
    ("HTTPS_PROXY", "http://b.example:1", "proxy", "http://b.example:1"),
    ("https_proxy", "http://c.example:1", "proxy", "http://c.example:1"),
    ("SSL_CERT_FILE", "/env/cert.pem", "ca_bundle", "/env/cert.pem"),
    ("SSL_CERT_DIR", "/env/certs", "ca_dir", "/env/certs"),
]


@pytest.mark.parametrize(("var", "text", "attr", "value"), GENERIC_ENV, ids=[e[0] for e in GENERIC_ENV])
def test_a_machine_wide_variable_beats_the_default_but_not_the_file(
    tmp_path: Path, var: str, text: str, attr: str, value: Any
) -> None:
    file_path = write(tmp_path, FULL_FILE)
    from_file = getattr(load(file_path), attr)
    assert from_file != value
    assert getattr(load(file_path, {var: text}), attr) == from_file
    assert getattr(load(tmp_path / "absent.toml", {var: text}), attr) == value


@pytest.mark.parametrize(("var", "text", "attr", "value"), ENV_OVERRIDES, ids=[e[0] for e in ENV_OVERRIDES])
def test_an_environment_variable_beats_the_file(tmp_path: Path, var: str, text: str, attr: str, value: Any) -> None:
    file_path = write(tmp_path, FULL_FILE + '\n[log]\nlevel = "error"\n')
    from_file = getattr(load(file_path), attr)
    assert from_file != value
    assert getattr(load(file_path, {var: text}), attr) == value
    assert getattr(load(tmp_path / "absent.toml", {var: text}), attr) == value  # and beats the default


def test_an_empty_environment_variable_is_ignored(tmp_path: Path) -> None:
    assert load(write(tmp_path, "[server]\nport = 9100\n"), {"CODEXD_PORT": ""}).port == 9100


def test_the_codexd_specific_variable_wins_over_the_generic_ones(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    proxies = {"CODEXD_HTTPS_PROXY": "http://a:1", "HTTPS_PROXY": "http://b:1", "https_proxy": "http://c:1"}
    assert load(path, proxies).proxy == "http://a:1"
    assert load(path, {k: v for k, v in proxies.items() if k != "CODEXD_HTTPS_PROXY"}).proxy == "http://b:1"
    cas = {"CODEXD_CA_BUNDLE": "/a.pem", "SSL_CERT_FILE": "/b.pem"}
    assert load(path, cas).ca_bundle == "/a.pem"
    assert load(path, {"CODEXD_CA_DIR": "/a", "SSL_CERT_DIR": "/b"}).ca_dir == "/a"


@pytest.mark.parametrize(
    ("flag", "file_line", "var", "env_text", "flag_value", "attr"),
    [
        ("host", 'host = "::1"', "CODEXD_HOST", "localhost", "127.0.0.2", "host"),
        ("port", "port = 9100", "CODEXD_PORT", "9200", 9300, "port"),
        ("api_key", 'api_key = "file-key-1"', "CODEXD_API_KEY", "env-key-1", "flag-key-1", "api_key"),
    ],
)
def test_a_flag_beats_the_environment_which_beats_the_file(
    tmp_path: Path, flag: str, file_line: str, var: str, env_text: str, flag_value: Any, attr: str
) -> None:
    path = write(tmp_path, f"[server]\n{file_line}\n")
    default = getattr(Settings(), attr)
    from_file = getattr(load(path), attr)
    from_env = getattr(load(path, {var: env_text}), attr)
    from_flag = getattr(load(path, {var: env_text}, **{flag: flag_value}), attr)
    assert len({default, from_file, from_env, from_flag}) == 4
    assert from_env == type(default)(env_text)
    assert from_flag == flag_value


def test_the_log_level_follows_the_same_precedence(tmp_path: Path) -> None:
    path = write(tmp_path, '[log]\nlevel = "warning"\n')
    assert load(path).log_level == "warning"
    assert load(path, {"CODEXD_LOG_LEVEL": "ERROR"}).log_level == "error"  # case does not matter in env
    assert load(path, {"CODEXD_LOG_LEVEL": "error"}, log_level="debug").log_level == "debug"


def test_codex_home_locates_auth_json(tmp_path: Path) -> None:
    settings = load(tmp_path / "absent.toml", {"CODEX_HOME": str(tmp_path / "codex")})
    assert settings.auth_path == tmp_path / "codex" / "auth.json"
    assert load(tmp_path / "absent.toml").auth_path == Path.home() / ".codex" / "auth.json"


def test_serve_flags_reach_the_settings(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--host",
            "::1",
            "--port",
            "9500",
            "--config",
            str(tmp_path / "c.toml"),
            "--api-key",
            "k-123456",
            "--log-level",
            "debug",
            "--log-format",
            "json",
        ]
    )
    assert args.config == tmp_path / "c.toml"
    settings = load_settings(flags_of(args), env={}, path=args.config)
    assert (settings.host, settings.port, settings.api_key) == ("::1", 9500, "k-123456")
    assert (settings.log_level, settings.log_format) == ("debug", "json")


def test_serve_without_flags_changes_nothing(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve"])
    assert load_settings(flags_of(args), env={}, path=tmp_path / "absent.toml") == load(tmp_path / "absent.toml")


@pytest.mark.parametrize("argv", [["--log-level", "loud"], ["--log-format", "xml"], ["--port", "http"]])
def test_serve_rejects_bad_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["serve", *argv])
    assert caught.value.code == 2
    assert argv[0] in capsys.readouterr().err


# --- refusals -----------------------------------------------------------------------------------------

BAD_FILES = [
    ("[server]\nport = \n", ["TOML syntax error", "line 2"]),
    ("[server]\nprot = 8000\n", ["unknown key 'server.prot'"]),
    ("[sever]\nport = 8000\n", ["unknown key 'sever'"]),
    ("port = 8000\n", ["unknown key 'port'"]),
    ("server = 1\n", ["key 'server'", "expected a table"]),
    ('[server]\nport = "8000"\n', ["key 'server.port'", "expected an integer", "'8000'"]),
    ("[server]\nport = true\n", ["key 'server.port'", "expected an integer"]),
    ("[server]\nport = 70000\n", ["key 'server.port'", "expected 1-65535"]),
    ("[upstream]\nidle_timeout = -1\n", ["key 'upstream.idle_timeout'", "expected a non-negative number"]),
    ("[upstream]\nidle_timeout = nan\n", ["key 'upstream.idle_timeout'", "expected a non-negative number"]),
    ('[upstream]\nproxy = ["a"]\n', ["key 'upstream.proxy'", "expected a string"]),
    ('[log]\nlevel = "loud"\n', ["key 'log.level'", "expected one of debug, info, warning, error"]),
    ('[models]\naliases = "x"\n', ["key 'models.aliases'", "expected a table"]),
    ("[models.aliases]\nfast = 5\n", ["key 'models.aliases'", "expected a table of strings"]),
    ("[server]\nallowed_hosts = [1]\n", ["key 'server.allowed_hosts'", "expected a list of strings"]),
]


@pytest.mark.parametrize(("text", "fragments"), BAD_FILES, ids=[b[1][0] for b in BAD_FILES])
def test_a_bad_file_is_one_message_naming_file_key_and_expectation(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    assert "cannot read" in config_error(tmp_path / "dir.toml")


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    message = config_error(tmp_path / "absent.toml", {"CODEXD_PORT": "eighty"})
    assert "CODEXD_PORT" in message and "expected an integer" in message and "'eighty'" in message
    assert "CODEXD_LOG_LEVEL" in config_error(tmp_path / "absent.toml", {"CODEXD_LOG_LEVEL": "loud"})


def test_a_bad_flag_value_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    message = config_error(path, port=0)
    assert "command-line" in message and "server.port" in message and "expected 1-65535" in message
    assert str(path) not in message


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "my-laptop.lan"])
def test_listening_beyond_loopback_needs_an_api_key(tmp_path: Path, host: str) -> None:
    message = config_error(tmp_path / "absent.toml", host=host)
    assert f"refusing to listen on {host} without an api key" in message
    assert "server.api_key" in message
    assert load(tmp_path / "absent.toml", {"CODEXD_API_KEY": "k-123456"}, host=host).host == host
    unchecked = load_settings({"server.host": host}, env={}, path=tmp_path / "absent.toml", check_exposure=False)
    assert unchecked.host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_api_key(host: str) -> None:
    assert is_loopback(host)


# --- what ``serve`` hands to the serve loop ---------------------------------------------------------------


def test_a_reload_cannot_remove_the_api_key_of_an_exposed_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Host is restart-only: a reload that moves it to loopback and drops the key must be refused."""
    import codexd.server.lifecycle as lifecycle

    for key in KEYS:
        for var in key.env:
            monkeypatch.delenv(var, raising=False)
    path = write(tmp_path, '[server]\nhost = "0.0.0.0"\napi_key = "k-123456"\n')
    handed: dict[str, Any] = {}

    async def fake_serve(settings: Settings, reload: Any) -> int:
        handed.update(settings=settings, reload=reload)
        return 0

    monkeypatch.setattr(lifecycle, "serve", fake_serve)
    args = build_parser().parse_args(["serve", "--config", str(path)])
    assert args.func(args) == 0
    assert (handed["settings"].host, handed["settings"].api_key) == ("0.0.0.0", "k-123456")

    path.write_text('[server]\napi_key = "k-654321"\n', encoding="utf-8")
    assert handed["reload"]().api_key == "k-654321"  # a new key is fine
    path.write_text('[server]\nhost = "127.0.0.1"\n', encoding="utf-8")
    with pytest.raises(CodexdError, match=r"refusing to listen on 0\.0\.0\.0 without an api key"):
        handed["reload"]()
