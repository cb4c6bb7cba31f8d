"""Runs the service manager's commands (systemctl, launchctl, loginctl, journalctl) for the installer.

The only place in ``codexd.service`` that starts processes; tests replace it with a fake or put fake
executables first on ``PATH``. A failing command becomes a ``CodexdError`` that carries the command's own
stderr, plus a hint for the common "no user manager here" case.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

from codexd.errors import CodexdError, ErrorKind

# What systemctl --user prints when there is no user manager for this session (sudo/su, ssh without lingering).
_NO_MANAGER = (
    "Failed to connect to bus",
    "No medium found",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_RUNTIME_DIR",
    "Connection refused",
)
_NO_MANAGER_HINT = (
    "no systemd user manager is reachable: run this from your own login session (not via sudo or su), "
    "or enable lingering with `loginctl enable-linger $USER`"
)


class Runner:
    """Runs a command and returns its result; raises ``CodexdError`` when it fails and ``check`` is set."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout

    def run(self, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` with captured text output."""
        args = list(argv)
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise CodexdError(ErrorKind.INTERNAL, f"{args[0]}: command not found") from None
        except subprocess.TimeoutExpired:
            raise CodexdError(
                ErrorKind.INTERNAL, f"`{shlex.join(args)}` did not finish in {self.timeout:g} s"
            ) from None
        if check and proc.returncode != 0:
            raise command_error(proc)
        return proc


def command_error(proc: subprocess.CompletedProcess[str]) -> CodexdError:
    """The error for a failed command: the command, its status and its own stderr (or stdout)."""
    args = [str(a) for a in proc.args]
    detail = (proc.stderr or proc.stdout or "").strip() or "(no output)"
    message = f"`{shlex.join(args)}` failed with exit status {proc.returncode}: {detail}"
    if args and args[0] == "systemctl" and any(marker in detail for marker in _NO_MANAGER):
        message += f"\n{_NO_MANAGER_HINT}"
    return CodexdError(ErrorKind.INTERNAL, message)
