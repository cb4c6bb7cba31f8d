"""Fake systemctl, launchctl, journalctl and loginctl for installer tests, a temporary HOME, a tiny /health server.

Each fake appends ``<name> <args>`` to ``$FAKE_LOG`` and answers like the real tool for the calls codexd
makes. Behaviour is steered by environment variables:

- ``FAKE_FAIL``: a shell pattern matched against ``"<name> <args>"``; a match prints ``$FAKE_STDERR``
  (default ``fake failure``) to stderr and exits 1.
- ``FAKE_ACTIVE=1``: ``systemctl is-active`` says active (exit 0), else inactive (exit 3).
- ``FAKE_STATE``: the ``ActiveState`` ``systemctl show`` reports (default ``active``).
- ``FAKE_NEED_RELOAD=yes``: ``systemctl show`` says the unit files changed since the last daemon-reload.
- ``FAKE_LOADED=1``: ``launchctl print`` finds the agent.
- ``FAKE_LINGER``: what ``loginctl show-user -p Linger --value`` prints (default ``no``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codexd.cli import service_cmd
from codexd.service import systemd
from codexd.service.spec import build_spec

SCRIPT = r"""#!/bin/sh
name=$(basename "$0")
printf '%s %s\n' "$name" "$*" >> "$FAKE_LOG"
case "$name $*" in
  $FAKE_FAIL) echo "${FAKE_STDERR:-fake failure}" >&2; exit 1 ;;
esac
case "$name $*" in
  "systemctl --user is-active"*)
    if [ -n "$FAKE_ACTIVE" ]; then echo active; exit 0; fi
    echo inactive; exit 3 ;;
  "systemctl --user show"*)
    state=${FAKE_STATE:-active}
    printf 'LoadState=loaded\nUnitFileState=enabled\nActiveState=%s\nSubState=running\nResult=success\n' "$state"
    printf 'StatusText=serving on 127.0.0.1\nMainPID=4242\nNRestarts=0\nExecMainStatus=0\n'
    printf 'NeedDaemonReload=%s\n' "${FAKE_NEED_RELOAD:-no}" ;;
  "launchctl print"*)
    if [ -n "$FAKE_LOADED" ]; then printf '\tstate = running\n\tpid = 4242\n\tlast exit code = 0\n'; exit 0; fi
    echo "Could not find service" >&2; exit 113 ;;
  "loginctl show-user"*) echo "${FAKE_LINGER:-no}" ;;
esac
exit 0
"""

TOOLS = ("systemctl", "launchctl", "journalctl", "loginctl")


def install_fakes(bin_dir: Path) -> None:
    """Write the fake tools (and a stand-in ``codexd`` executable) into ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(SCRIPT)
        path.chmod(0o755)
    codexd = bin_dir / "codexd"
    codexd.write_text("#!/bin/sh\nexit 0\n")
    codexd.chmod(0o755)


def calls(log: Path) -> list[str]:
    """The recorded commands, in order."""
    return log.read_text().splitlines() if log.exists() else []


@dataclass
class Box:
    """A temporary HOME with the fake tools first on PATH."""

    home: Path
    bin: Path
    log: Path
    config: Path
    units: Path
    agents: Path

    def calls(self) -> list[str]:
        return calls(self.log)

    def spec_text(self, port: int = 8765, socket: bool = False) -> str:
        """The unit text install should write for this box."""
        spec = build_spec(self.config, port=port, socket=socket, executable=[str(self.bin / "codexd")])
        return systemd.render_service(spec)


def make_box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Box:
    """HOME, XDG_* and PATH in ``tmp_path``; sys.argv[0] is a stand-in codexd; install waits 1 s for health."""
    home = tmp_path / "home of Zoë"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    install_fakes(bin_dir)
    for name in list(os.environ):
        if name.startswith(("CODEXD_", "FAKE_")) or name in ("CODEX_HOME", "NOTIFY_SOCKET"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("USER", "zoe")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setattr(sys, "argv", [str(bin_dir / "codexd")])
    monkeypatch.setattr(service_cmd, "HEALTH_WAIT", 1.0)
    return Box(
        home=home,
        bin=bin_dir,
        log=tmp_path / "calls.log",
        config=home / ".config" / "codexd" / "config.toml",
        units=home / ".config" / "systemd" / "user",
        agents=home / "Library" / "LaunchAgents",
    )


class _Health(BaseHTTPRequestHandler):
    ready = True

    def do_GET(self) -> None:
        if self.path == "/health":
            status, body = 200, {"status": "ok", "version": "test"}
        elif self.path == "/ready":
            status = 200 if self.ready else 503
            body = {"ready": self.ready, "credentials": {"ok": self.ready, "error": None if self.ready else "no"}}
        else:
            status, body = 404, {}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def health_server(ready: bool = True) -> Iterator[int]:
    """A codexd-like /health and /ready on 127.0.0.1; yields the port."""
    handler = type("Handler", (_Health,), {"ready": ready})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
