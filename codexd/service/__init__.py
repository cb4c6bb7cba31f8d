"""The installer: runs codexd as a per-user OS service (systemd user unit on Linux, launchd agent on macOS).

``spec`` says what runs; ``systemd`` and ``launchd`` have the same shape (pure ``render_files``, then
``install``/``uninstall``/``control``/``status``); ``runner`` runs their commands. Detection of the platform
is here, apart from rendering, so any platform's files can be rendered (and tested) anywhere.
Imports nothing of ``codexd.server`` (nor Tornado): ``codexd status`` must start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from codexd.service.runner import Runner
from codexd.service.spec import ServiceSpec, ServiceStatus

PLATFORMS = ("systemd", "launchd")


class Backend(Protocol):
    """What ``codexd.service.systemd`` and ``codexd.service.launchd`` both provide."""

    NAME: str

    def render_files(self, spec: ServiceSpec) -> dict[str, str]: ...
    def target_dir(self, env: Mapping[str, str], home: Path) -> Path: ...
    def install(self, spec: ServiceSpec, runner: Runner, directory: Path, *, start: bool = True) -> list[Path]: ...
    def uninstall(self, runner: Runner, directory: Path) -> list[Path]: ...
    def control(self, runner: Runner, directory: Path, action: str) -> None: ...
    def status(self, runner: Runner, directory: Path) -> ServiceStatus: ...
    def log_hint(self, home: Path) -> str: ...


def detect_platform(platform: str | None = None) -> str:
    """``launchd`` on macOS, ``systemd`` elsewhere."""
    return "launchd" if (platform or sys.platform) == "darwin" else "systemd"


def backend(name: str) -> Backend:
    """The module for platform ``name``."""
    if name == "launchd":
        from codexd.service import launchd

        return launchd
    if name == "systemd":
        from codexd.service import systemd

        return systemd
    raise ValueError(f"unknown service platform {name!r}")
