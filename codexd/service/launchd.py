"""launchd agents (macOS): render the plist (pure, via plistlib), install, uninstall and control the agent.

Same shape as ``systemd.py``. The template ``codexd.plist`` is loaded with plistlib, filled and dumped, so the
output is always valid XML whatever the paths contain. Commands use the modern ``launchctl`` syntax
(``bootstrap``/``bootout`` in the ``gui/<uid>`` domain); ``install`` rolls back the plist when one fails.
"""

from __future__ import annotations

import contextlib
import os
import plistlib
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codexd.errors import CodexdError, ErrorKind
from codexd.service.files import read_text_or_none, restore, write_atomic
from codexd.service.runner import Runner
from codexd.service.spec import LABEL, ServiceSpec, ServiceStatus
from codexd.service.templates import template_bytes

NAME = "launchd"
LOG_FILE = "codexd.log"  # written by the daemon's rotating handler, read by `codexd logs`
EINPROGRESS = 36  # launchctl bootout: "operation now in progress" while the job is still exiting


def render(spec: ServiceSpec) -> str:
    """The text of the agent's plist for ``spec``."""
    data: dict[str, Any] = plistlib.loads(template_bytes("codexd.plist"))
    env = dict(data.get("EnvironmentVariables", {}))
    env.update(spec.env)
    data.update(
        Label=spec.label,
        ProgramArguments=list(spec.argv),
        ThrottleInterval=spec.throttle_interval,
        ExitTimeOut=spec.stop_timeout,
        WorkingDirectory=str(spec.home),
        EnvironmentVariables=dict(sorted(env.items())),
        SoftResourceLimits={**data.get("SoftResourceLimits", {}), "NumberOfFiles": spec.nofile},
        StandardErrorPath=str(spec.log_dir / "launchd.err.log"),
    )
    try:
        return plistlib.dumps(data, sort_keys=False).decode("utf-8")
    except ValueError as exc:  # control characters cannot be represented in a plist
        raise CodexdError(ErrorKind.CONFIG, f"cannot write the launchd plist: {exc}") from None


def render_files(spec: ServiceSpec) -> dict[str, str]:
    """File name -> text of the plist."""
    return {f"{spec.label}.plist": render(spec)}


def target_dir(env: Mapping[str, str], home: Path) -> Path:
    """``~/Library/LaunchAgents``."""
    return home / "Library" / "LaunchAgents"


def domain() -> str:
    """The per-user GUI domain, ``gui/<uid>``."""
    return f"gui/{os.getuid()}"


def _target(label: str) -> str:
    return f"{domain()}/{label}"


def loaded(runner: Runner, label: str = LABEL) -> bool:
    """Whether launchd currently has the agent loaded."""
    return runner.run(["launchctl", "print", _target(label)], check=False).returncode == 0


def install(spec: ServiceSpec, runner: Runner, directory: Path, *, start: bool = True) -> list[Path]:
    """Write the plist and (unless ``start`` is False) boot it out if loaded, enable and bootstrap it."""
    path = directory / f"{spec.label}.plist"
    previous = read_text_or_none(path)
    was_loaded = loaded(runner, spec.label)
    spec.log_dir.mkdir(parents=True, exist_ok=True)  # launchd does not create StandardErrorPath's directory
    try:
        if start and was_loaded:
            _bootout(runner, spec.label)
        write_atomic(path, render(spec), 0o644)  # launchd refuses group- or world-writable plists
        if start:
            runner.run(["launchctl", "enable", _target(spec.label)])
            runner.run(["launchctl", "bootstrap", domain(), str(path)])
    except (CodexdError, OSError):
        restore(path, previous, 0o644)
        if start and was_loaded and previous is not None:
            _quiet(runner, ["launchctl", "bootstrap", domain(), str(path)])  # put the old agent back
        raise
    return [path]


def _bootout(runner: Runner, label: str) -> None:
    """``launchctl bootout``, retried while launchd says the job is still stopping."""
    for _ in range(20):
        proc = runner.run(["launchctl", "bootout", _target(label)], check=False)
        if proc.returncode != EINPROGRESS:
            break
        time.sleep(0.5)
    if proc.returncode != 0 and loaded(runner, label):
        runner.run(["launchctl", "bootout", _target(label)])  # raises with launchctl's own message


def _quiet(runner: Runner, argv: list[str]) -> None:
    with contextlib.suppress(CodexdError):
        runner.run(argv, check=False)


def uninstall(runner: Runner, directory: Path, label: str = LABEL) -> list[Path]:
    """Boot the agent out and remove the plist; nothing is removed when launchctl fails."""
    path = directory / f"{label}.plist"
    if loaded(runner, label):
        _bootout(runner, label)
    if not path.exists():
        return []
    path.unlink()
    return [path]


def control(runner: Runner, directory: Path, action: str, label: str = LABEL) -> None:
    """``start`` (bootstrap or kickstart), ``stop`` (bootout), ``restart`` (kickstart -k) or ``reload`` (SIGHUP)."""
    target = _target(label)
    if action == "start":
        if loaded(runner, label):
            runner.run(["launchctl", "kickstart", target])
        else:
            runner.run(["launchctl", "bootstrap", domain(), str(directory / f"{label}.plist")])
    elif action == "stop":
        _bootout(runner, label)
    elif action == "restart":
        runner.run(["launchctl", "kickstart", "-k", target])
    elif action == "reload":
        runner.run(["launchctl", "kill", "SIGHUP", target])
    else:
        raise ValueError(action)


def status(runner: Runner, directory: Path, label: str = LABEL) -> ServiceStatus:
    """The agent's state from ``launchctl print`` (a human format: parsed defensively)."""
    installed = (directory / f"{label}.plist").exists()
    proc = runner.run(["launchctl", "print", _target(label)], check=False)
    if proc.returncode != 0:
        return ServiceStatus(installed=installed, active=False, state="not loaded")
    fields = dict(re.findall(r"^\s*(state|pid|last exit code) = (.+?)\s*$", proc.stdout, re.MULTILINE))
    pid = fields.get("pid", "")
    state = fields.get("state", "unknown")
    exit_code = fields.get("last exit code", "")
    return ServiceStatus(
        installed=installed,
        active=state == "running",
        state=state,
        pid=int(pid) if pid.isdigit() else None,
        text=f"last exit code {exit_code}" if exit_code else "",
        details=fields,
    )


def log_path(home: Path) -> Path:
    """The daemon's own log file on macOS."""
    return home / "Library" / "Logs" / "codexd" / LOG_FILE


def log_hint(home: Path) -> str:
    """Where the logs are, for messages."""
    return f"codexd logs  ({log_path(home)})"
