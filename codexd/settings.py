"""Settings: one frozen dataclass built from flags > environment > TOML file > defaults.

The schema below is the single list of configuration keys: it drives validation, ``codexd config
get|set`` and the test that every key is documented in ``codexd.toml(5)``. Settings are read with the
standard library's tomllib; ``config set`` reads and writes the document with tomlkit, which keeps the user's
comments and formatting (importing tomlkit cost ``codexd serve`` 0.6 MB of RSS and 10 ms of start-up).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codexd.errors import CodexdError, ErrorKind


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key: its dotted TOML name, type, default and environment variables."""

    name: str  # "server.port"
    type: type
    default: Any
    env: tuple[str, ...] = ()
    help: str = ""
    # Machine-wide variables other programs read too (HTTPS_PROXY, SSL_CERT_FILE): they stand in for the
    # default, but the user's own file, codexd's variables and flags win over them.
    fallback_env: tuple[str, ...] = ()

    @property
    def attr(self) -> str:
        """The Settings attribute that holds this key (``server.port`` -> ``port``)."""
        return _ATTR.get(self.name, self.name.split(".")[-1])


# Attributes whose last name component would clash or read badly.
_ATTR = {
    "models.default": "default_model",
    "models.small": "small_model",
    "models.aliases": "aliases",
    "log.level": "log_level",
    "log.format": "log_format",
}

KEYS: tuple[Key, ...] = (
    Key("server.host", str, "127.0.0.1", ("CODEXD_HOST",), "address to listen on"),
    Key("server.port", int, 8765, ("CODEXD_PORT",), "TCP port to listen on"),
    Key("server.api_key", str, "", ("CODEXD_API_KEY",), "key local clients must send; empty means none"),
    Key("server.allowed_hosts", list, [], (), "extra Host header names accepted besides loopback"),
    Key("server.allowed_origins", list, [], (), "browser origins allowed to call the API"),
    Key("server.max_body_size", int, 64 * 1024 * 1024, (), "largest request body in bytes (413 above)"),
    Key("server.drain_timeout", float, 30.0, (), "seconds SIGTERM waits for in-flight requests"),
    Key("server.ping_interval", float, 15.0, (), "seconds between Anthropic ping events on a silent stream"),
    Key("upstream.chatgpt_base_url", str, "https://chatgpt.com/backend-api/codex", ("CODEXD_CHATGPT_BASE_URL",)),
    Key("upstream.openai_base_url", str, "https://api.openai.com/v1", ("CODEXD_OPENAI_BASE_URL",)),
    Key("upstream.refresh_url", str, "https://auth.openai.com/oauth/token", ("CODEX_REFRESH_TOKEN_URL_OVERRIDE",)),
    Key("upstream.proxy", str, "", ("CODEXD_HTTPS_PROXY",), "proxy URL", ("HTTPS_PROXY", "https_proxy")),
    Key("upstream.ca_bundle", str, "", ("CODEXD_CA_BUNDLE",), "PEM file of trusted CAs", ("SSL_CERT_FILE",)),
    Key("upstream.ca_dir", str, "", ("CODEXD_CA_DIR",), "directory of trusted CAs named by hash", ("SSL_CERT_DIR",)),
    Key("upstream.compress", bool, True, (), "zstd-compress request bodies of 1 KiB or more, as the Codex CLI does"),
    Key("upstream.idle_timeout", float, 300.0, (), "seconds of upstream silence before a stream fails"),
    Key("upstream.connect_timeout", float, 10.0, (), "seconds to connect (TCP and TLS)"),
    Key("upstream.max_clients", int, 256, (), "concurrent upstream requests"),
    Key("upstream.client_version", str, "0.146.0", (), "client_version sent to the models endpoint"),
    Key("upstream.models_cache_ttl", float, 300.0, (), "seconds the model list is cached"),
    Key("models.default", str, "gpt-5.5", (), "model for claude-* ids and requests without one"),
    Key("models.small", str, "gpt-5.4-mini", (), "model for claude-*haiku* ids"),
    Key("models.reasoning_effort", str, "medium", (), "reasoning effort when the client names none"),
    Key("models.reasoning_content", bool, False, (), "stream reasoning summaries as reasoning_content (chat)"),
    Key("models.instructions", str, "You are a helpful assistant.", (), "instructions when a client sends none"),
    Key("models.aliases", dict, {}, (), "client model name -> upstream model slug"),
    Key("log.level", str, "info", ("CODEXD_LOG_LEVEL",), "debug, info, warning or error"),
    Key("log.format", str, "text", ("CODEXD_LOG_FORMAT",), "text or json"),
)
KEYS_BY_NAME = {k.name: k for k in KEYS}
SECTIONS = tuple(dict.fromkeys(k.name.partition(".")[0] for k in KEYS))
_CHOICES = {"log.level": ("debug", "info", "warning", "error"), "log.format": ("text", "json")}
_RANGES = {"server.port": (1, 65535)}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything codexd reads from its configuration, resolved and validated."""

    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str = ""
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_body_size: int = 64 * 1024 * 1024
    drain_timeout: float = 30.0
    ping_interval: float = 15.0
    chatgpt_base_url: str = "https://chatgpt.com/backend-api/codex"
    openai_base_url: str = "https://api.openai.com/v1"
    refresh_url: str = "https://auth.openai.com/oauth/token"
    proxy: str = ""
    ca_bundle: str = ""
    ca_dir: str = ""
    compress: bool = True
    idle_timeout: float = 300.0
    connect_timeout: float = 10.0
    max_clients: int = 256
    client_version: str = "0.146.0"
    models_cache_ttl: float = 300.0
    default_model: str = "gpt-5.5"
    small_model: str = "gpt-5.4-mini"
    reasoning_effort: str = "medium"
    reasoning_content: bool = False
    instructions: str = "You are a helpful assistant."
    aliases: Mapping[str, str] = field(default_factory=dict)
    log_level: str = "info"
    log_format: str = "text"
    codex_home: Path = field(default_factory=lambda: Path.home() / ".codex")
    config_path: Path | None = None

    @property
    def auth_path(self) -> Path:
        """``$CODEX_HOME/auth.json``."""
        return self.codex_home / "auth.json"

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$CODEXD_CONFIG``, else ``config.toml`` in the platform's user config directory."""
    env = os.environ if env is None else env
    if env.get("CODEXD_CONFIG"):
        return Path(env["CODEXD_CONFIG"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("codexd")) / "config.toml"


def read_document(path: Path) -> Any:
    """Parse the TOML file with tomlkit, for editing; a missing file is an empty document."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    text = _read_text(path)
    if text is None:
        return tomlkit.document()
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        raise CodexdError(ErrorKind.CONFIG, f"{path}: TOML syntax error: {exc}") from None


def read_values(path: Path) -> dict[str, Any]:
    """Parse the TOML file with tomllib, for reading; a missing file is an empty table."""
    import tomllib

    text = _read_text(path)
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CodexdError(ErrorKind.CONFIG, f"{path}: TOML syntax error: {exc}") from None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CodexdError(ErrorKind.CONFIG, f"{path}: cannot read: {exc}") from None


def file_values(doc: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """Flatten and validate a parsed document into ``{"server.port": 8765, ...}``."""
    values: dict[str, Any] = {}
    for section, table in doc.items():
        if section not in SECTIONS:
            raise CodexdError(ErrorKind.CONFIG, f"{path}: unknown key '{section}'; see codexd.toml(5)")
        if not isinstance(table, Mapping):
            raise CodexdError(ErrorKind.CONFIG, f"{path}: key '{section}': expected a table like [{section}]")
        for key, value in table.items():
            name = f"{section}.{key}"
            if name not in KEYS_BY_NAME:
                raise CodexdError(ErrorKind.CONFIG, f"{path}: unknown key '{name}'; see codexd.toml(5)")
            values[name] = coerce(KEYS_BY_NAME[name], _plain(value), f"{path}: key '{name}'")
    return values


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def coerce(key: Key, value: Any, where: str) -> Any:
    """Check ``value`` against ``key``'s type and choices; ints are accepted for floats."""
    expected = key.type
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise CodexdError(ErrorKind.CONFIG, f"{where}: expected {_type_name(expected)}, got {value!r}")
    if expected is list and not all(isinstance(v, str) for v in value):
        raise CodexdError(ErrorKind.CONFIG, f"{where}: expected a list of strings")
    if expected is dict and not all(isinstance(v, str) for v in value.values()):
        raise CodexdError(ErrorKind.CONFIG, f'{where}: expected a table of strings (name = "slug")')
    if key.name in _CHOICES and value not in _CHOICES[key.name]:
        raise CodexdError(ErrorKind.CONFIG, f"{where}: expected one of {', '.join(_CHOICES[key.name])}")
    if expected in (int, float) and not (0 <= value < math.inf):  # also refuses TOML's nan and inf
        raise CodexdError(ErrorKind.CONFIG, f"{where}: expected a non-negative number, got {value!r}")
    if key.name in _RANGES and not _RANGES[key.name][0] <= value <= _RANGES[key.name][1]:
        low, high = _RANGES[key.name]
        raise CodexdError(ErrorKind.CONFIG, f"{where}: expected {low}-{high}, got {value}")
    return value


def parse_text(key: Key, text: str, where: str = "") -> Any:
    """Turn a command-line or environment string into ``key``'s type; ``where`` names its origin in errors."""
    where = where or key.name
    if key.name in _CHOICES:
        text = text.strip().lower()  # CODEXD_LOG_LEVEL=DEBUG is meant as debug
    try:
        if key.type is int:
            return coerce(key, int(text), where)
        if key.type is float:
            return coerce(key, float(text), where)
        if key.type is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if key.type is list:
            return [part.strip() for part in text.split(",") if part.strip()]
        if key.type is dict:
            raise ValueError(text)
    except ValueError:
        raise CodexdError(ErrorKind.CONFIG, f"{where}: expected {_type_name(key.type)}, got {text!r}") from None
    return coerce(key, text, where)


def _type_name(kind: type) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}
    return names.get(kind, "a table")


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
    check_exposure: bool = True,
) -> Settings:
    """Resolve settings. ``flags`` maps key names (``server.port``) to values already typed.

    ``check_exposure=False`` skips the refusal to listen beyond loopback without an api key (for
    ``config get``, which only reads).
    """
    env = os.environ if env is None else env
    path = path or default_config_path(env)
    values: dict[str, Any] = {k.name: k.default for k in KEYS}
    for key in KEYS:
        for var in key.fallback_env:
            if env.get(var):
                values[key.name] = parse_text(key, env[var], f"environment variable {var}")
                break
    values.update(file_values(read_values(path), path))
    for key in KEYS:
        for var in key.env:
            if env.get(var):
                values[key.name] = parse_text(key, env[var], f"environment variable {var}")
                break
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = coerce(KEYS_BY_NAME[name], value, f"command-line value for {name}")
    kwargs = {KEYS_BY_NAME[name].attr: value for name, value in values.items()}
    kwargs["allowed_hosts"] = tuple(kwargs["allowed_hosts"])
    kwargs["allowed_origins"] = tuple(kwargs["allowed_origins"])
    codex_home = Path(env["CODEX_HOME"]).expanduser() if env.get("CODEX_HOME") else Path.home() / ".codex"
    settings = Settings(**kwargs, codex_home=codex_home, config_path=path)
    if check_exposure:
        refuse_exposure(settings)
    return settings


def refuse_exposure(settings: Settings) -> None:
    """Raise a CONFIG error when ``settings`` would listen beyond this machine without an api key."""
    if not is_loopback(settings.host) and not settings.api_key:
        raise CodexdError(
            ErrorKind.CONFIG,
            f"refusing to listen on {settings.host} without an api key: set server.api_key "
            "(or CODEXD_API_KEY / --api-key), or listen on 127.0.0.1",
        )


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    import ipaddress

    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
