"""A real ``systemd --user`` and journald (os-service.md §5.4): install, READY, /health, reload, stop, journal.

Needs root, the systemd package and a writable cgroup file system; it creates a throw-away user, starts
journald and a user manager for it, and removes all of that afterwards. It changes machine-wide state
(``/run/systemd/system``, a tmpfs on ``/run/log``), so it runs only when asked: ``CODEXD_SYSTEMD_LAB=1``
as root, in a disposable VM or container.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import site
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.tokens import auth_document
from tests.processes import environ_of

ROOT = Path(__file__).resolve().parents[2]
USER = "codexdci"
# The interpreter the lab user runs codexd with: this one, unless it is unreadable for other users (a
# pyenv under /root, say); then CODEXD_LAB_PYTHON names another build of the same Python version.
PYTHON = os.environ.get("CODEXD_LAB_PYTHON") or sys.executable
IMPORT_PATH = ":".join([str(ROOT), *site.getsitepackages()])
SYSTEMD = Path("/lib/systemd/systemd")
JOURNALD = Path("/lib/systemd/systemd-journald")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CODEXD_SYSTEMD_LAB") != "1", reason="set CODEXD_SYSTEMD_LAB=1 (root, a VM)"),
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the systemd lab needs root"),
    pytest.mark.skipif(not SYSTEMD.exists() or shutil.which("setpriv") is None, reason="needs systemd and setpriv"),
]


def wait_for(path: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.05)


@dataclass
class Lab:
    uid: int
    home: Path
    runtime: Path

    def env(self) -> list[str]:
        path = f"{Path(PYTHON).parent}:/usr/local/bin:/usr/bin:/bin"
        return ["env", "-i", f"HOME={self.home}", f"USER={USER}", f"LOGNAME={USER}", f"PATH={path}",
                f"XDG_RUNTIME_DIR={self.runtime}", "LANG=C.UTF-8"]  # fmt: skip

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command as the lab user, in a clean login-like environment."""
        prefix = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", *self.env()]
        return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout, cwd=self.home)

    def codexd(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.run("env", f"PYTHONPATH={IMPORT_PATH}", PYTHON, "-m", "codexd", *argv)

    def write(self, path: Path, text: str, mode: int = 0o644) -> None:
        """Create ``path`` (and its parents) owned by the lab user."""
        for parent in reversed([p for p in path.parents if self.home in p.parents]):
            if not parent.exists():
                parent.mkdir()
                os.chown(parent, self.uid, self.uid)
        path.write_text(text, encoding="utf-8")
        os.chmod(path, mode)
        os.chown(path, self.uid, self.uid)


def journald_running() -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect("/run/systemd/journal/stdout")  # a socket file can outlive its journald
        except OSError:
            return False
    return True


def machine_id() -> str:
    return Path("/etc/machine-id").read_text().strip()


def cgroup_dirs(uid: int) -> list[Path]:
    base = Path("/sys/fs/cgroup")
    roots = [base] if (base / "cgroup.controllers").exists() else [base / "systemd", base / "unified"]
    # The name matters: journald attributes entries to the unit only under user@UID.service.
    return [r / "user.slice" / f"user-{uid}.slice" / f"user@{uid}.service" for r in roots if r.is_dir()]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    cleanup: list[tuple[str, object]] = []
    try:
        if subprocess.run(["id", USER], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-m", USER], check=True)
            cleanup.append(("userdel", USER))
        entry = pwd.getpwnam(USER)
        uid, home = entry.pw_uid, Path(entry.pw_dir)
        if not journald_running():
            for leftover in (Path("/run/systemd/journal"), Path(f"/var/log/journal/{machine_id()}")):
                if not leftover.exists():
                    cleanup.append(("rmtree", leftover))  # journald creates these; remove them again
            if not os.path.ismount("/run/log"):
                Path("/run/log").mkdir(exist_ok=True)
                subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run/log"], check=True)
                cleanup.append(("umount", "/run/log"))
            Path("/var/log/journal").mkdir(exist_ok=True)  # persistent storage gives per-user journal files
            journald = subprocess.Popen([str(JOURNALD)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cleanup.append(("kill", journald))
            wait_for(Path("/run/systemd/journal/stdout"))
            subprocess.run(["journalctl", "--flush"], capture_output=True, timeout=30)
        if not Path("/run/systemd/system").exists():
            Path("/run/systemd/system").mkdir(parents=True)  # sd_booted(): systemd --user refuses to run without it
            cleanup.append(("rmdir", "/run/systemd/system"))
        runtime = Path(f"/run/user/{uid}")
        subprocess.run(["install", "-d", "-m", "700", "-o", USER, "-g", USER, str(runtime)], check=True)
        cleanup.append(("rmtree", runtime))
        groups = cgroup_dirs(uid)
        for group in groups:
            group.mkdir(parents=True, exist_ok=True)
            subprocess.run(["chown", "-R", f"{USER}:{USER}", str(group)], check=True)
            cleanup.append(("rmcgroup", group))
        lab = Lab(uid, home, runtime)
        enter = " ".join(f"echo $$ > '{g}/cgroup.procs';" for g in groups)
        manager_cmd = " ".join(["exec", "setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups",
                                *lab.env(), str(SYSTEMD), "--user"])  # fmt: skip
        manager = subprocess.Popen(["sh", "-c", f"{enter} {manager_cmd}"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        cleanup.append(("manager", manager))
        wait_for(runtime / "systemd" / "private")
        if lab.run("env", f"PYTHONPATH={IMPORT_PATH}", PYTHON, "-c", "import tornado, pycurl").returncode != 0:
            pytest.skip(f"the lab user cannot run {PYTHON} with codexd's dependencies; set CODEXD_LAB_PYTHON")
        yield lab
    finally:
        for kind, item in reversed(cleanup):
            with contextlib.suppress(Exception):
                _undo(kind, item)


def _undo(kind: str, item: object) -> None:
    if kind == "manager" or kind == "kill":
        assert isinstance(item, subprocess.Popen)
        item.terminate()
        item.wait(15)
    elif kind == "umount":
        subprocess.run(["umount", str(item)], check=False)
    elif kind == "rmdir":
        os.rmdir(str(item))
    elif kind == "rmtree":
        shutil.rmtree(str(item), ignore_errors=True)
    elif kind == "rmcgroup":
        for directory in sorted(Path(str(item)).rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                os.rmdir(directory)
        os.rmdir(str(item))
    elif kind == "userdel":
        subprocess.run(["userdel", "-r", str(item)], capture_output=True, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except OSError:
        return 0


@pytest.fixture
def installed(lab: Lab) -> Iterator[tuple[Lab, int, Path]]:
    """codexd's files in the lab user's home; a config in a directory whose name needs escaping."""
    port = free_port()
    config = lab.home / ".config" / "codexd 100% $HOME" / "config.toml"
    lab.write(config, f'[server]\nport = {port}\n[upstream]\nchatgpt_base_url = "http://127.0.0.1:9/none"\n')
    lab.write(lab.home / ".codex" / "auth.json", json.dumps(auth_document()), 0o600)
    # Local changes go in a drop-in, which survives re-installs: here, where to import codexd from.
    dropin = lab.home / ".config" / "systemd" / "user" / "codexd.service.d" / "pythonpath.conf"
    lab.write(dropin, f'[Service]\nEnvironment="PYTHONPATH={IMPORT_PATH}"\n')
    yield lab, port, config
    lab.codexd("uninstall", "--user")


def test_install_start_reload_stop_under_a_real_user_manager(installed: tuple[Lab, int, Path]) -> None:
    lab, port, config = installed
    proc = lab.codexd("install", "--user", "--config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"http://127.0.0.1:{port} (health OK)" in proc.stdout  # the quoted --config reached the daemon
    show = lab.run(
        "systemctl", "--user", "show", "codexd.service", "-p", "ActiveState,SubState,StatusText,WatchdogUSec,MainPID"
    )
    props = dict(line.split("=", 1) for line in show.stdout.splitlines())
    assert props["ActiveState"] == "active" and props["SubState"] == "running"  # Type=notify: READY=1 arrived
    assert props["StatusText"].startswith("serving on")
    assert props["WatchdogUSec"] == "30s"
    # The unit's process executed itself again on glibc's malloc (allowed by its system call filter), and it
    # is still the main process systemd started, the one whose notifications it accepts.
    assert environ_of(int(props["MainPID"])).get("PYTHONMALLOC") == "malloc"
    assert get(f"http://127.0.0.1:{port}/health") == 200

    status = lab.codexd("status")
    assert status.returncode == 0 and "active (running)" in status.stdout, status.stdout + status.stderr
    doctor = lab.codexd("doctor", "--config", str(config))
    assert "OK   " in doctor.stdout and "codexd.service is current" in doctor.stdout, doctor.stdout

    assert lab.codexd("reload").returncode == 0
    deadline = time.monotonic() + 10
    while "reloaded" not in lab.run("systemctl", "--user", "show", "codexd", "-p", "StatusText").stdout:
        assert time.monotonic() < deadline, "no RELOADING=1 ... READY=1 round"
        time.sleep(0.1)
    assert get(f"http://127.0.0.1:{port}/health") == 200

    assert lab.codexd("stop").returncode == 0
    assert lab.run("systemctl", "--user", "is-active", "codexd").stdout.strip() == "inactive"
    assert get(f"http://127.0.0.1:{port}/health") == 0

    journal = lab.run("journalctl", "--user", "-u", "codexd.service", "-o", "json", "--no-pager")
    entries = [json.loads(line) for line in journal.stdout.splitlines() if line.startswith("{")]
    ours = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "codexd"]
    assert ours, journal.stdout + journal.stderr
    priorities = {e["PRIORITY"] for e in ours}
    assert "6" in priorities  # info lines carry their priority (and no "<6>" text)
    assert not any(str(e.get("MESSAGE", "")).startswith("<") for e in ours)
    assert any("listening on" in str(e.get("MESSAGE", "")) for e in ours)

    assert lab.codexd("uninstall", "--user").returncode == 0
    assert not (lab.home / ".config" / "systemd" / "user" / "codexd.service").exists()


def test_socket_activation_keeps_connections_through_a_restart(installed: tuple[Lab, int, Path]) -> None:
    lab, port, config = installed
    proc = lab.codexd("install", "--user", "--socket", "--config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.run("systemctl", "--user", "is-active", "codexd.socket").stdout.strip() == "active"
    assert lab.codexd("restart").returncode == 0
    assert get(f"http://127.0.0.1:{port}/health") == 200  # the socket never closed
    journal = lab.run("journalctl", "--user", "-u", "codexd.service", "-o", "cat", "--no-pager").stdout
    assert "listening on" in journal
