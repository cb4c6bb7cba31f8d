"""systemd user units: render ``codexd.service`` / ``codexd.socket`` (pure), install, uninstall and control them.

Same shape as ``launchd.py``. Rendering quotes ``ExecStart=`` words for systemd's parser (double quotes with C
escapes) and escapes ``%`` (specifiers) and ``$`` (variable expansion). ``install`` is the only function that
writes files (atomically, 0644) and it rolls back to the previous files when a ``systemctl`` command fails.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from codexd.errors import CodexdError, ErrorKind
from codexd.service.files import read_text_or_none, restore, write_atomic
from codexd.service.runner import Runner, command_error
from codexd.service.spec import SERVICE_UNIT, SOCKET_UNIT, ServiceSpec, ServiceStatus
from codexd.service.templates import fill, template_text

NAME = "systemd"
UNITS = (SERVICE_UNIT, SOCKET_UNIT)
_SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
SYSTEMCTL = ("systemctl", "--user")
SHOW_PROPERTIES = (
    "LoadState,UnitFileState,ActiveState,SubState,Result,StatusText,MainPID,NRestarts,ExecMainStatus,"
    "NeedDaemonReload,FragmentPath"
)


def _quoted(text: str) -> str:
    inner = "".join(_ESCAPES.get(ch, f"\\x{ord(ch):02x}" if ord(ch) < 0x20 or ch == "\x7f" else ch) for ch in text)
    return f'"{inner}"'


def exec_word(arg: str, *, executable: bool = False) -> str:
    """One ``ExecStart=`` word: quoted unless plainly safe; ``%`` -> ``%%`` and ``$`` -> ``$$``.

    The executable path itself is not subject to variable expansion, so its ``$`` stays single.
    """
    word = (arg if _SAFE_WORD.fullmatch(arg) else _quoted(arg)).replace("%", "%%")
    return word if executable else word.replace("$", "$$")


def exec_line(argv: Sequence[str]) -> str:
    """The value of ``ExecStart=`` for ``argv``."""
    if any(ch in "\"'\\" or ord(ch) < 0x20 or ch == "\x7f" for ch in argv[0]):
        # systemd refuses such executable paths ("contains special characters"), however they are quoted.
        raise CodexdError(
            ErrorKind.CONFIG,
            f"systemd cannot run a program whose path has quotes, backslashes or control characters: {argv[0]!r}; "
            "install codexd under another directory",
        )
    return " ".join(exec_word(arg, executable=i == 0) for i, arg in enumerate(argv))


def env_line(name: str, value: str) -> str:
    """An ``Environment=`` line; specifiers are expanded there but ``$`` is not."""
    if not _ENV_NAME.fullmatch(name):
        raise CodexdError(ErrorKind.CONFIG, f"invalid environment variable name for the unit: {name!r}")
    return "Environment=" + _quoted(f"{name}={value}").replace("%", "%%")


def _path_value(path: Path) -> str:
    text = str(path)
    if any(ord(ch) < 0x20 for ch in text):
        raise CodexdError(ErrorKind.CONFIG, f"path with control characters cannot go in a unit: {text!r}")
    return text.replace("%", "%%")  # a path setting takes the rest of the line verbatim (no quoting)


def render_service(spec: ServiceSpec) -> str:
    """The text of ``codexd.service`` for ``spec``."""
    values = {
        "EXEC_START": exec_line(spec.argv),
        "RESTART_SEC": str(spec.restart_sec),
        "START_TIMEOUT": str(spec.start_timeout),
        "STOP_TIMEOUT": str(spec.stop_timeout),
        "WATCHDOG_SEC": str(spec.watchdog_sec),
        "ENVIRONMENT": "\n".join(env_line(k, v) for k, v in sorted(spec.env.items())),
        "ENVIRONMENT_FILE": _path_value(spec.environment_file),
    }
    return fill(template_text("codexd.service"), values)


def render_socket(spec: ServiceSpec) -> str:
    """The text of ``codexd.socket`` for ``spec``."""
    return fill(template_text("codexd.socket"), {"LISTEN": spec.listen.replace("%", "%%")})


def render_files(spec: ServiceSpec) -> dict[str, str]:
    """File name -> text of every unit this spec installs."""
    files = {SERVICE_UNIT: render_service(spec)}
    if spec.socket:
        files[SOCKET_UNIT] = render_socket(spec)
    return files


def target_dir(env: Mapping[str, str], home: Path) -> Path:
    """``$XDG_CONFIG_HOME/systemd/user`` (only an absolute XDG_CONFIG_HOME counts), else ``~/.config/...``."""
    config_home = env.get("XDG_CONFIG_HOME", "")
    base = Path(config_home) if os.path.isabs(config_home) else home / ".config"
    return base / "systemd" / "user"


def _units(directory: Path) -> list[str]:
    """Installed units, socket first (it must be listening before the service starts)."""
    return [unit for unit in (SOCKET_UNIT, SERVICE_UNIT) if (directory / unit).exists()]


def install(spec: ServiceSpec, runner: Runner, directory: Path, *, start: bool = True) -> list[Path]:
    """Write the units, daemon-reload, enable (and start, or restart when updating a running service)."""
    probe = runner.run([*SYSTEMCTL, "is-active", SERVICE_UNIT], check=False)
    if probe.returncode not in (0, 3):  # 3 = inactive or unknown; anything else: no user manager
        raise command_error(probe)
    was_active = probe.returncode == 0
    previous = {directory / unit: read_text_or_none(directory / unit) for unit in UNITS}
    fresh = previous[directory / SERVICE_UNIT] is None
    files = {directory / name: text for name, text in render_files(spec).items()}
    units = [u for u in (SOCKET_UNIT, SERVICE_UNIT) if directory / u in files]
    try:
        if previous[directory / SOCKET_UNIT] is not None and not spec.socket:
            runner.run([*SYSTEMCTL, "disable", "--now", SOCKET_UNIT])  # switching socket activation off
            (directory / SOCKET_UNIT).unlink()
        for path, text in files.items():
            write_atomic(path, text, 0o644)
        runner.run([*SYSTEMCTL, "daemon-reload"])
        runner.run([*SYSTEMCTL, "enable", *(["--now"] if start else []), *units])
        if start and was_active:
            runner.run([*SYSTEMCTL, "restart", *units])  # enable --now leaves a running old process alone
    except (CodexdError, OSError):
        _rollback(runner, previous, units if fresh else [])
        raise
    return list(files)


def _rollback(runner: Runner, previous: Mapping[Path, str | None], disable: list[str]) -> None:
    """Put the previous unit files back (or remove new ones); best effort, the first error is what counts."""
    if disable:
        _quiet(runner, [*SYSTEMCTL, "disable", "--now", *disable])
    for path, text in previous.items():
        restore(path, text, 0o644)
    _quiet(runner, [*SYSTEMCTL, "daemon-reload"])
    if disable:
        _quiet(runner, [*SYSTEMCTL, "reset-failed", SERVICE_UNIT])


def _quiet(runner: Runner, argv: list[str]) -> None:
    with contextlib.suppress(CodexdError):
        runner.run(argv, check=False)


def uninstall(runner: Runner, directory: Path) -> list[Path]:
    """Stop and disable, remove the units, daemon-reload; nothing is removed when systemctl fails."""
    units = _units(directory)
    if not units:
        return []
    runner.run([*SYSTEMCTL, "disable", "--now", *units])
    for unit in units:
        (directory / unit).unlink(missing_ok=True)
    runner.run([*SYSTEMCTL, "daemon-reload"])
    _quiet(runner, [*SYSTEMCTL, "reset-failed", SERVICE_UNIT])
    return [directory / unit for unit in units]


def control(runner: Runner, directory: Path, action: str) -> None:
    """``start``, ``stop``, ``restart`` or ``reload`` the service (start/stop include the socket if installed)."""
    if action in ("start", "stop"):
        units = _units(directory) or [SERVICE_UNIT]
    elif action in ("restart", "reload"):
        units = [SERVICE_UNIT]  # a restart keeps the socket listening: connections queue meanwhile
    else:
        raise ValueError(action)
    runner.run([*SYSTEMCTL, action, *units])


def show(runner: Runner, unit: str = SERVICE_UNIT, properties: str = SHOW_PROPERTIES) -> dict[str, str]:
    """``systemctl --user show`` as a dict."""
    out = runner.run([*SYSTEMCTL, "show", unit, "-p", properties]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def status(runner: Runner, directory: Path) -> ServiceStatus:
    """The service's state from ``systemctl --user show``."""
    props = show(runner)
    pid = int(props.get("MainPID", "0") or 0)
    restarts = props.get("NRestarts", "")
    active = props.get("ActiveState", "unknown")
    state = f"{active} ({props.get('SubState', '?')})"
    if props.get("Result", "success") != "success":
        state += f", result {props['Result']}"
    return ServiceStatus(
        installed=props.get("LoadState") == "loaded",
        active=active in ("active", "reloading"),
        state=state,
        pid=pid or None,
        text=props.get("StatusText", ""),
        restarts=int(restarts) if restarts.isdigit() else None,
        need_reload=props.get("NeedDaemonReload") == "yes",
        details=props,
    )


def logs_argv(lines: int, follow: bool) -> list[str]:
    """The journalctl command that shows codexd's log."""
    argv = ["journalctl", "--user", "-u", SERVICE_UNIT, "-o", "short-iso", "--no-pager", "-n", str(lines)]
    return [*argv, "-f"] if follow else argv


def log_hint(home: Path) -> str:
    """Where the logs are, for messages."""
    return f"codexd logs  (journalctl --user -u {SERVICE_UNIT})"


def linger(runner: Runner, user: str) -> bool | None:
    """Whether lingering is on for ``user`` (None when logind cannot tell)."""
    proc = runner.run(["loginctl", "show-user", user, "-p", "Linger", "--value"], check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() == "yes"


def enable_linger(runner: Runner, user: str) -> None:
    """Keep the user manager (and codexd) running without a login session, and start it at boot."""
    runner.run(["loginctl", "enable-linger", user])
