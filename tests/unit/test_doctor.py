"""``codexd doctor``: one ``OK|WARN|FAIL`` line per check and exit 1 on any failure, with fake service tools."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from codexd.cli import main
from tests.fakes.service_tools import Box, health_server, make_box
from tests.fakes.tokens import auth_document, make_jwt, write_auth

LINE = re.compile(r"^(OK  |WARN|FAIL) \S.*$")


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Box:
    box = make_box(tmp_path, monkeypatch)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))
    monkeypatch.setenv("FAKE_LINGER", "yes")
    write_auth(tmp_path / "codex" / "auth.json", auth_document(expires_in=2 * 3600 + 120))
    return box


def doctor(capsys: pytest.CaptureFixture[str], box: Box, port: int, *extra: str) -> tuple[int, list[str]]:
    box.config.parent.mkdir(parents=True, exist_ok=True)
    if not box.config.exists():
        box.config.write_text(f"[server]\nport = {port}\n")
    code = main(["doctor", "--platform", "systemd", *extra])
    out = capsys.readouterr().out.splitlines()
    assert all(LINE.match(line) for line in out), out
    return code, out


def line(lines: list[str], fragment: str) -> str:
    (found,) = [entry for entry in lines if fragment in entry]
    return found


def test_a_healthy_installation(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    with health_server() as port:
        box.config.parent.mkdir(parents=True)
        box.config.write_text(f"[server]\nport = {port}\n")
        assert main(["install", "--no-start", "--platform", "systemd"]) == 0
        capsys.readouterr()
        code, lines = doctor(capsys, box, port)
    assert code == 0, lines
    assert line(lines, "credentials").startswith("OK")
    assert re.search(r"expires in 2h0[12]m", line(lines, "credentials"))
    assert "acct-1234567890abcdef" not in "\n".join(lines)  # the account id is masked
    assert line(lines, "codexd.service is current").startswith("OK")
    assert line(lines, "service active (running), pid 4242").startswith("OK")
    assert line(lines, "lingering on").startswith("OK")
    assert line(lines, f"port {port} is codexd's").startswith("OK")
    assert line(lines, "/health answers").startswith("OK")
    assert line(lines, "/ready answers").startswith("OK")


def test_problems_are_failures_with_a_fix(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "codex" / "auth.json").unlink()
    monkeypatch.setenv("FAKE_STATE", "failed")
    monkeypatch.setenv("FAKE_LINGER", "no")
    with health_server(ready=False) as port:
        box.units.mkdir(parents=True)
        (box.units / "codexd.service").write_text("[Service]\nExecStart=/old/venv/bin/codexd serve\n")
        code, lines = doctor(capsys, box, port)
    assert code == 1
    assert line(lines, "credentials").startswith("FAIL") and "run `codex login`" in line(lines, "credentials")
    assert line(lines, "differs from what this codexd would write").startswith("WARN")
    assert line(lines, "service failed").startswith("FAIL")
    assert line(lines, "lingering off").startswith("WARN")
    assert line(lines, "/ready: not ready").startswith("FAIL")


def test_configured_cas_that_cannot_verify_anything_fail_with_a_fix(
    box: Box, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A CA bundle that is not a readable file, or a CA directory without the hash names OpenSSL looks CAs up
    by, would fail every upstream request: doctor names the setting and the fix. Usable ones are named too."""
    unhashed = tmp_path / "cas"
    unhashed.mkdir()
    (unhashed / "corp.pem").write_text("")
    hashed = tmp_path / "hashed"
    hashed.mkdir()
    (hashed / "5ad8a5d6.0").write_text("")
    cases = {
        f'ca_bundle = "{tmp_path / "absent.pem"}"': ("FAIL", "is not a readable file"),
        f'ca_dir = "{unhashed}"': ("FAIL", f"run `openssl rehash {unhashed}`"),
        f'ca_dir = "{unhashed}:{hashed}"': ("OK  ", f"TLS to the backend trusts the CAs in {unhashed}:{hashed}"),
    }
    with health_server() as port:
        for setting, (level, words) in cases.items():
            box.config.parent.mkdir(parents=True, exist_ok=True)
            box.config.write_text(f"[server]\nport = {port}\n[upstream]\n{setting}\n")
            code, lines = doctor(capsys, box, port)
            found = line(lines, "upstream.ca_" if level == "FAIL" else "TLS to the backend trusts")
            assert found.startswith(level) and words in found, (setting, found)
            assert (code == 1) == (level == "FAIL")


def test_a_foreign_program_on_the_port(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]
        code, lines = doctor(capsys, box, port)
    assert code == 1
    assert line(lines, f"port {port} is used by another program").startswith("FAIL")
    assert line(lines, "/health does not answer").startswith("FAIL")


def test_an_expired_access_token_with_a_refresh_token_is_a_warning(
    box: Box, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_auth(tmp_path / "codex" / "auth.json", auth_document(access_token=make_jwt(exp=time.time() - 600)))
    with health_server() as port:
        _, lines = doctor(capsys, box, port)
    assert line(lines, "credentials").startswith("WARN") and "expired 10m ago" in line(lines, "credentials")


def test_a_broken_config_file_is_reported(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    box.config.parent.mkdir(parents=True)
    box.config.write_text("[server]\nprot = 1\n")
    code, lines = doctor(capsys, box, 1)
    assert code == 1
    assert lines[0].startswith("FAIL config:") and "server.prot" in lines[0]


def test_no_user_manager_is_a_failed_check_not_a_crash(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL", "systemctl --user show*")
    monkeypatch.setenv("FAKE_STDERR", "Failed to connect to bus: No medium found")
    with health_server() as port:
        code, lines = doctor(capsys, box, port)
    assert code == 1
    assert "No medium found" in line(lines, "service manager") and "login session" in line(lines, "service manager")


def test_a_pending_daemon_reload_is_a_warning(
    box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NEED_RELOAD", "yes")
    with health_server() as port:
        _, lines = doctor(capsys, box, port)
    assert line(lines, "since the last daemon-reload").startswith("WARN")
    assert line(lines, "service active (running)").startswith("OK")


def test_online_checks_the_upstream(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    with health_server() as port:
        box.config.parent.mkdir(parents=True)
        box.config.write_text(f'[server]\nport = {port}\n[upstream]\nchatgpt_base_url = "http://127.0.0.1:{port}/x"\n')
        _, lines = doctor(capsys, box, port, "--online")
        assert line(lines, "upstream").startswith("OK") and "HTTP 404" in line(lines, "upstream")  # any answer will do
        _, offline = doctor(capsys, box, port)
        assert not [entry for entry in offline if "upstream" in entry]  # only with --online
    box.config.write_text(f'[upstream]\nchatgpt_base_url = "http://127.0.0.1:{port}/x"\n')
    code, lines = doctor(capsys, box, port, "--online")
    assert code == 1 and line(lines, "unreachable").startswith("FAIL")


def test_doctor_on_launchd(box: Box, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LOADED", "1")
    with health_server() as port:
        box.config.parent.mkdir(parents=True)
        box.config.write_text(f"[server]\nport = {port}\n")
        assert main(["install", "--no-start", "--platform", "launchd"]) == 0
        capsys.readouterr()
        code = main(["doctor", "--platform", "launchd"])
        lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert line(lines, "io.github.codexd.plist is current").startswith("OK")
    assert line(lines, "service running, pid 4242").startswith("OK")
    assert not [entry for entry in lines if "linger" in entry]  # a systemd notion
