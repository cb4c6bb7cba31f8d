"""``codexd install|uninstall|start|stop|restart|reload|status|logs`` against fake service tools on PATH.

HOME and XDG_* point into a temporary directory; fake systemctl/launchctl/journalctl/loginctl record their
arguments (tests/fakes/service_tools.py), so the exact command sequences, files and modes are checked.
"""

from __future__ import annotations

import os
import plistlib
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from codexd.cli import main
from codexd.service import launchd, logtail, systemd
from codexd.service.spec import LABEL, build_spec
from codexd.settings import load_settings
from tests.fakes.service_tools import Box, health_server, make_box

ROOT = Path(__file__).resolve().parents[2]
SC = "systemctl --user"


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Box:
    return make_box(tmp_path, monkeypatch)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_config(box: Box, port: int) -> None:
    box.config.parent.mkdir(parents=True, exist_ok=True)
    box.config.write_text(f"# mine\n[server]\nport = {port}\n")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_no_start_writes_unit_and_commented_config(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "install", "--user", "--no-start", "--platform", "systemd")
    assert code == 0
    unit = box.units / "codexd.service"
    assert unit.read_text() == box.spec_text()
    assert mode(unit) == 0o644
    assert sorted(p.name for p in box.units.iterdir()) == ["codexd.service"]  # no temporary files left
    assert box.calls() == [f"{SC} is-active codexd.service", f"{SC} daemon-reload", f"{SC} enable codexd.service"]
    text = box.config.read_text()
    assert "# port = 8765" in text and "# drain_timeout = 30.0" in text
    assert mode(box.config) == 0o644
    assert load_settings(env={}, path=box.config).port == 8765  # all commented out: valid, every default
    assert f"installed {unit}" in out and "codexd start" in out


def test_install_starts_and_waits_for_health(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    with health_server() as port:
        write_config(box, port)
        code, out, err = run(capsys, "install", "--user", "--platform", "systemd")
    assert (code, err) == (0, "")
    assert box.calls()[:3] == [
        f"{SC} is-active codexd.service",
        f"{SC} daemon-reload",
        f"{SC} enable --now codexd.service",
    ]
    assert f"http://127.0.0.1:{port} (health OK)" in out
    assert "journalctl --user -u codexd.service" in out  # says where the logs are
    assert box.config.read_text() == f"# mine\n[server]\nport = {port}\n"  # an existing config is never touched
    assert (box.units / "codexd.service").read_text() == box.spec_text(port)


def test_install_reports_a_service_that_never_answers(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    with health_server() as port:
        pass  # now nothing listens on that port
    write_config(box, port)
    code, _, err = run(capsys, "install", "--platform", "systemd")
    assert code == 1
    assert f"http://127.0.0.1:{port}/health did not answer" in err and "codexd logs" in err


def test_reinstall_updates_in_place_and_restarts_a_running_service(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(box, 9001)
    assert run(capsys, "install", "--no-start", "--platform", "systemd")[0] == 0
    write_config(box, 9002)
    box.log.unlink()
    monkeypatch.setenv("FAKE_ACTIVE", "1")
    with health_server() as port:
        write_config(box, port)
        assert run(capsys, "install", "--platform", "systemd")[0] == 0
    assert (box.units / "codexd.service").read_text() == box.spec_text(port)
    assert box.calls()[:4] == [
        f"{SC} is-active codexd.service",
        f"{SC} daemon-reload",
        f"{SC} enable --now codexd.service",
        f"{SC} restart codexd.service",  # enable --now alone would keep the old process running
    ]


def test_print_shows_the_files_and_touches_nothing(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "install", "--user", "--print", "--socket", "--platform", "systemd")
    assert code == 0
    spec = build_spec(box.config, socket=True, executable=[str(box.bin / "codexd")])
    assert out == systemd.render_service(spec) + "\n" + systemd.render_socket(spec)
    assert list(box.home.iterdir()) == [] and box.calls() == []


def test_print_launchd_plist(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "install", "--print", "--platform", "launchd")
    assert code == 0
    assert plistlib.loads(out.encode())["ProgramArguments"] == [
        str(box.bin / "codexd"),
        "serve",
        "--config",
        str(box.config),
    ]
    assert list(box.home.iterdir()) == []


def test_a_failing_command_leaves_nothing_behind(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL", "systemctl --user enable*")
    monkeypatch.setenv("FAKE_STDERR", "Failed to enable unit: Unit file codexd.service is masked.")
    code, _, err = run(capsys, "install", "--platform", "systemd")
    assert code == 1
    assert "`systemctl --user enable --now codexd.service` failed with exit status 1" in err
    assert "Unit file codexd.service is masked." in err  # the tool's own message
    assert not (box.units / "codexd.service").exists()
    assert list(box.units.iterdir()) == []
    assert not box.config.exists()  # the config file this run created is gone too
    assert box.calls()[-3:] == [
        f"{SC} disable --now codexd.service",
        f"{SC} daemon-reload",
        f"{SC} reset-failed codexd.service",
    ]


def test_a_failing_update_puts_the_previous_unit_back(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(box, 9001)
    assert run(capsys, "install", "--no-start", "--platform", "systemd")[0] == 0
    before = (box.units / "codexd.service").read_text()
    write_config(box, 9002)
    monkeypatch.setenv("FAKE_FAIL", "systemctl --user daemon-reload")
    assert run(capsys, "install", "--no-start", "--platform", "systemd")[0] == 1
    assert (box.units / "codexd.service").read_text() == before
    assert "disable" not in " ".join(box.calls())  # an update that fails does not disable the old service


def test_no_user_manager_is_explained_and_nothing_is_written(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL", "systemctl --user is-active*")
    monkeypatch.setenv("FAKE_STDERR", "Failed to connect to bus: No medium found")
    code, _, err = run(capsys, "install", "--platform", "systemd")
    assert code == 1
    assert "No medium found" in err and "your own login session" in err
    assert not box.units.exists()
    assert not box.config.exists()


def test_bad_config_exits_78_before_touching_anything(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    box.config.parent.mkdir(parents=True)
    box.config.write_text("[server]\nport = 'x'\n")
    code, _, err = run(capsys, "install", "--platform", "systemd")
    assert code == 78 and "server.port" in err
    assert box.calls() == []


def test_socket_activation_install_and_switching_it_off(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    write_config(box, 9100)
    assert run(capsys, "install", "--socket", "--no-start", "--platform", "systemd")[0] == 0
    assert "ListenStream=127.0.0.1:9100\n" in (box.units / "codexd.socket").read_text()
    assert box.calls()[-1] == f"{SC} enable codexd.socket codexd.service"
    assert run(capsys, "install", "--no-start", "--platform", "systemd")[0] == 0
    assert not (box.units / "codexd.socket").exists()
    assert box.calls()[-4:] == [
        f"{SC} is-active codexd.service",
        f"{SC} disable --now codexd.socket",
        f"{SC} daemon-reload",
        f"{SC} enable codexd.service",
    ]


def test_linger_runs_first(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "install", "--linger", "--no-start", "--platform", "systemd")[0] == 0
    assert box.calls()[0] == "loginctl enable-linger zoe"


def test_an_api_key_from_the_environment_makes_the_new_config_private(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEXD_API_KEY", "k-123")
    assert run(capsys, "install", "--no-start", "--platform", "systemd")[0] == 0
    assert mode(box.config) == 0o600
    assert load_settings(env={}, path=box.config).api_key == "k-123"


def test_uninstall(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "install", "--socket", "--no-start", "--platform", "systemd")[0] == 0
    box.log.unlink()
    code, out, _ = run(capsys, "uninstall", "--user", "--platform", "systemd")
    assert code == 0
    assert box.calls() == [
        f"{SC} disable --now codexd.socket codexd.service",
        f"{SC} daemon-reload",
        f"{SC} reset-failed codexd.service",
    ]
    assert list(box.units.iterdir()) == []
    assert box.config.exists()  # the configuration stays
    assert f"removed {box.units / 'codexd.service'}" in out


def test_uninstall_keeps_the_files_when_disable_fails(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "install", "--no-start", "--platform", "systemd")[0] == 0
    monkeypatch.setenv("FAKE_FAIL", "systemctl --user disable*")
    assert run(capsys, "uninstall", "--platform", "systemd")[0] == 1
    assert (box.units / "codexd.service").exists()


def test_uninstall_when_not_installed(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "uninstall", "--platform", "systemd")
    assert code == 0 and "not installed" in out and box.calls() == []


@pytest.mark.parametrize(
    ("action", "socket", "expected"),
    [
        ("start", False, f"{SC} start codexd.service"),
        ("start", True, f"{SC} start codexd.socket codexd.service"),
        ("stop", True, f"{SC} stop codexd.socket codexd.service"),
        ("restart", True, f"{SC} restart codexd.service"),  # the socket keeps listening meanwhile
        ("reload", False, f"{SC} reload codexd.service"),
    ],
)
def test_control_commands(
    box: Box, capsys: pytest.CaptureFixture[str], action: str, socket: bool, expected: str
) -> None:
    assert run(capsys, "install", "--no-start", "--platform", "systemd", *(["--socket"] if socket else []))[0] == 0
    assert run(capsys, action, "--platform", "systemd")[0] == 0
    assert box.calls()[-1] == expected


def test_status(box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, "status", "--platform", "systemd")
    assert code == 0
    assert out == "codexd: active (running), pid 4242\n  serving on 127.0.0.1\n"
    monkeypatch.setenv("FAKE_STATE", "inactive")
    assert run(capsys, "status", "--platform", "systemd")[0] == 3


def test_status_does_not_import_the_server() -> None:
    code = (
        "import sys; from codexd.cli import main; main(['status']);"
        "print(sorted(m for m in ('tornado', 'pycurl', 'tomlkit', 'prometheus_client') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr


def test_logs_runs_journalctl(box: Box) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "codexd", "logs", "-f", "-n", "20", "--platform", "systemd"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert box.calls() == ["journalctl --user -u codexd.service -o short-iso --no-pager -n 20 -f"]


def test_logs_on_macos_prints_the_log_file(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    path = launchd.log_path(box.home)
    code, _, err = run(capsys, "logs", "--platform", "launchd")
    assert code == 1 and str(path) in err
    path.parent.mkdir(parents=True)
    path.write_text("one\ntwo\nthree\n")
    assert run(capsys, "logs", "-n", "2", "--platform", "launchd") == (0, "two\nthree\n", "")


def test_log_tail_follows_rotation(tmp_path: Path) -> None:
    path = tmp_path / "codexd.log"
    path.write_text("old\n")
    seen: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=logtail.tail,
        args=(path, 1, seen.append),
        kwargs={"follow": True, "poll": 0.02, "should_stop": stop.is_set},
    )
    thread.start()
    try:
        time.sleep(0.1)
        with path.open("a") as fh:
            fh.write("appended\n")
        time.sleep(0.2)
        path.rename(tmp_path / "codexd.log.1")  # what RotatingFileHandler does
        path.write_text("after rotation\n")
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(5)
    assert seen == ["old\n", "appended\n", "after rotation\n"]


def test_launchd_install_uninstall(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = os.getuid()
    target = f"gui/{uid}/{LABEL}"
    plist = box.agents / f"{LABEL}.plist"
    with health_server() as port:
        write_config(box, port)
        assert run(capsys, "install", "--platform", "launchd")[0] == 0
        assert box.calls() == [
            f"launchctl print {target}",
            f"launchctl enable {target}",
            f"launchctl bootstrap gui/{uid} {plist}",
        ]
        assert mode(plist) == 0o644
        assert plistlib.loads(plist.read_bytes())["Label"] == LABEL
        assert (box.home / "Library" / "Logs" / "codexd").is_dir()  # StandardErrorPath's directory exists
        box.log.unlink()
        monkeypatch.setenv("FAKE_LOADED", "1")
        assert run(capsys, "install", "--platform", "launchd")[0] == 0
        assert box.calls()[:4] == [
            f"launchctl print {target}",
            f"launchctl bootout {target}",  # bootstrap of a loaded label fails, so boot it out first
            f"launchctl enable {target}",
            f"launchctl bootstrap gui/{uid} {plist}",
        ]
    assert run(capsys, "reload", "--platform", "launchd")[0] == 0
    assert box.calls()[-1] == f"launchctl kill SIGHUP {target}"
    box.log.unlink()
    assert run(capsys, "uninstall", "--platform", "launchd")[0] == 0
    assert box.calls() == [f"launchctl print {target}", f"launchctl bootout {target}"]
    assert not plist.exists()


def test_launchd_failed_bootstrap_removes_the_new_plist(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL", "launchctl bootstrap*")
    monkeypatch.setenv("FAKE_STDERR", "Bootstrap failed: 5: Input/output error")
    code, _, err = run(capsys, "install", "--platform", "launchd")
    assert code == 1 and "Bootstrap failed: 5: Input/output error" in err
    assert not (box.agents / f"{LABEL}.plist").exists()
