"""What the OS service runs: ``ServiceSpec`` and how it is derived from this process and the settings.

Pure data plus two small look-ups (the executable path and the environment to pass on); rendering lives in
``systemd.py`` / ``launchd.py``, files and commands in their ``install()``.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LABEL = "io.github.codexd"  # the launchd label (and plist file stem); chosen once, documented in codexd(1)
SERVICE_UNIT = "codexd.service"
SOCKET_UNIT = "codexd.socket"
DEFAULT_ENV: Mapping[str, str] = {"PYTHONUNBUFFERED": "1"}
PASSED_ENV = ("CODEX_HOME",)  # shell variables the service would otherwise not see (it has no login shell)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """Everything the unit, socket and plist say; rendering a spec is pure and deterministic."""

    argv: tuple[str, ...]  # absolute executable first, e.g. (".../bin/codexd", "serve", "--config", PATH)
    config_path: Path
    home: Path
    host: str = "127.0.0.1"
    port: int = 8765
    env: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ENV))
    label: str = LABEL
    drain_timeout: float = 30.0
    restart_sec: int = 2
    start_timeout: int = 30
    watchdog_sec: int = 30
    throttle_interval: int = 10
    nofile: int = 4096
    socket: bool = False

    @property
    def stop_timeout(self) -> int:
        """Seconds before SIGKILL: above the drain budget so a drain can finish."""
        return math.ceil(self.drain_timeout) + 5

    @property
    def listen(self) -> str:
        """``host:port`` as a socket unit writes it (IPv6 in brackets)."""
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def environment_file(self) -> Path:
        """Optional ``KEY=VALUE`` file beside the config (HTTPS_PROXY and the like), read by the systemd unit."""
        return self.config_path.parent / "environment"

    @property
    def log_dir(self) -> Path:
        """macOS log directory (``~/Library/Logs/codexd``)."""
        return self.home / "Library" / "Logs" / "codexd"


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """The service manager's view of codexd, the same shape on every platform."""

    installed: bool
    active: bool
    state: str  # "active (running)", "inactive (dead)", "failed (exit-code)", "not loaded"...
    pid: int | None = None
    text: str = ""  # the daemon's STATUS= line, or launchd's last exit code
    restarts: int | None = None
    need_reload: bool = False
    details: Mapping[str, str] = field(default_factory=dict)


def executable_argv(argv0: str | None = None) -> list[str]:
    """The absolute command that runs this codexd: ``sys.argv[0]`` resolved, ``which codexd``, or ``python -m``.

    Never a pyenv shim: the service manager's PATH differs from the shell's. The interpreter path is made
    absolute but not resolved, since resolving a venv's ``python`` symlink would escape the venv.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    name = os.path.basename(argv0)
    if name.startswith("codexd") and not name.endswith(".py"):
        found = argv0 if os.sep in argv0 else shutil.which(argv0)
        if found and _usable(os.path.realpath(found)):
            return [os.path.realpath(found)]
    found = shutil.which("codexd")
    if found and _usable(os.path.realpath(found)):
        return [os.path.realpath(found)]
    return [os.path.abspath(sys.executable), "-m", "codexd"]


def _usable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK) and f"{os.sep}shims{os.sep}" not in path


def build_spec(
    config_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    drain_timeout: float = 30.0,
    socket: bool = False,
    env: Mapping[str, str] | None = None,
    executable: list[str] | None = None,
) -> ServiceSpec:
    """The spec for this installation: ``<executable> serve --config <absolute config path>``."""
    env = os.environ if env is None else env
    config = Path(os.path.abspath(config_path.expanduser()))
    service_env = dict(DEFAULT_ENV)
    service_env.update({name: env[name] for name in PASSED_ENV if env.get(name)})
    argv = (*(executable or executable_argv()), "serve", "--config", str(config))
    home = Path(env.get("HOME") or Path.home())
    return ServiceSpec(
        argv=argv,
        config_path=config,
        home=home,
        host=host,
        port=port,
        env=service_env,
        drain_timeout=drain_timeout,
        socket=socket,
    )
