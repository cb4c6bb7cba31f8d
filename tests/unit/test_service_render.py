"""Rendering the systemd unit, socket and launchd plist: golden files, quoting, systemd-analyze, plistlib.

Set CODEXD_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change (then review the diff).
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexd.errors import CodexdError
from codexd.service import launchd, systemd, templates
from codexd.service.spec import LABEL, ServiceSpec, build_spec, executable_argv

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[2]
HOME = Path("/home/Zoë Doe")
CONFIG = HOME / ".config/codexd 100%/$HOME.toml"
SPEC = ServiceSpec(
    argv=(str(HOME / "my venv/bin/codexd"), "serve", "--config", str(CONFIG)),
    config_path=CONFIG,
    home=HOME,
    env={"PYTHONUNBUFFERED": "1", "CODEX_HOME": "/home/Zoë Doe/.codex 50%$x"},
    socket=True,
)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CODEXD_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; CODEXD_UPDATE_GOLDEN=1 rewrites it"


def test_service_unit_matches_golden() -> None:
    check_golden("codexd.service", systemd.render_service(SPEC))


def test_socket_unit_matches_golden() -> None:
    check_golden("codexd.socket", systemd.render_socket(SPEC))


def test_plist_matches_golden() -> None:
    check_golden(f"{LABEL}.plist", launchd.render(SPEC))


def test_exec_start_quotes_and_escapes_each_word() -> None:
    line = systemd.exec_line(["/opt/my $dir/codexd", "x%y", "$HOME", 'q"uote', "back\\slash", "", "plain", "Zoë"])
    # The executable path is not subject to $-expansion, the arguments are; % is a specifier everywhere.
    assert line == '"/opt/my $dir/codexd" x%%y "$$HOME" "q\\"uote" "back\\\\slash" "" plain "Zoë"'


def test_executable_paths_systemd_refuses_are_reported() -> None:
    with pytest.raises(CodexdError, match="quotes, backslashes"):
        systemd.exec_line(["/opt/it's/codexd", "serve"])


def test_control_characters_are_c_escaped() -> None:
    assert systemd.exec_word("a\nb\tc\x01") == '"a\\nb\\tc\\x01"'


def test_environment_lines_escape_specifiers_but_not_dollars() -> None:
    assert systemd.env_line("CODEX_HOME", '/a b/50%$x"') == 'Environment="CODEX_HOME=/a b/50%%$x\\""'
    with pytest.raises(CodexdError):
        systemd.env_line("BAD NAME", "x")


def ini(text: str) -> dict[str, list[tuple[str, str]]]:
    """A small reader for unit files (repeated keys kept in order)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key, value))
    return sections


def test_the_unit_says_what_a_user_manager_needs() -> None:
    unit = ini(systemd.render_service(SPEC))
    service = dict(unit["Service"])
    assert dict(unit["Install"]) == {"WantedBy": "default.target"}  # multi-user.target does not exist there
    assert {k for k, _ in unit["Unit"]} >= {"StartLimitIntervalSec", "StartLimitBurst"}
    assert not [k for k, _ in unit["Service"] if k.startswith("StartLimit")]  # silently ignored in [Service]
    assert service["ExecStart"].startswith('"/')  # absolute, quoted because of the space
    assert service["Type"] == "notify"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "78"
    assert service["KillMode"] == "mixed"
    assert service["SyslogIdentifier"] == "codexd"
    assert int(service["TimeoutStopSec"].rstrip("s")) > SPEC.drain_timeout
    assert int(service["WatchdogSec"].rstrip("s")) > 0
    # Options a user manager ignores silently or that fail without PrivateUsers= must not appear.
    ignored = {"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateUsers", "ProtectKernelTunables",
               "ProtectControlGroups", "ReadWritePaths", "CapabilityBoundingSet", "DynamicUser"}  # fmt: skip
    assert not ignored & set(service)


def test_socket_unit_listens_where_the_settings_say() -> None:
    sock = dict(ini(systemd.render_socket(SPEC))["Socket"])
    assert sock["ListenStream"] == "127.0.0.1:8765"
    ipv6 = build_spec(Path("/c.toml"), host="::1", port=9000, executable=["/bin/codexd"], env={"HOME": "/h"})
    assert dict(ini(systemd.render_socket(ipv6))["Socket"])["ListenStream"] == "[::1]:9000"


def test_socket_unit_only_with_socket_activation() -> None:
    plain = build_spec(Path("/c.toml"), executable=["/bin/codexd"], env={"HOME": "/h"})
    assert list(systemd.render_files(plain)) == ["codexd.service"]
    assert list(systemd.render_files(SPEC)) == ["codexd.service", "codexd.socket"]


@pytest.fixture
def odd_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory whose name needs every kind of escaping, holding a real executable."""
    directory = tmp_path / "Zoë dir 100%x $y"
    directory.mkdir()
    os.symlink(shutil.which("true") or "/bin/true", directory / "codexd")
    yield directory


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_rendered_units(odd_dir: Path, tmp_path: Path) -> None:
    spec = build_spec(odd_dir / "config 50% 'q' \"\\.toml", socket=True, executable=[str(odd_dir / "codexd")],
                      env={"HOME": str(tmp_path), "CODEX_HOME": str(odd_dir)})  # fmt: skip
    build = tmp_path / "build"
    build.mkdir()
    for name, text in systemd.render_files(spec).items():
        (build / name).write_text(text, encoding="utf-8")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    proc = subprocess.run(
        [
            "systemd-analyze",
            "--user",
            "--man=no",
            "--recursive-errors=yes",
            "verify",
            "codexd.service",
            "codexd.socket",
        ],
        cwd=build,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown keys only warn (exit 0), and a wrongly quoted ExecStart is "not executable": stderr must be empty.
    assert (proc.returncode, proc.stderr) == (0, "")


def test_plist_round_trips_through_plistlib() -> None:
    data = plistlib.loads(launchd.render(SPEC).encode())
    assert plistlib.loads(plistlib.dumps(data)) == data
    allowed = {"Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "ThrottleInterval", "ExitTimeOut", "ProcessType",
               "WorkingDirectory", "EnvironmentVariables", "SoftResourceLimits", "StandardErrorPath"}  # fmt: skip
    assert set(data) == allowed  # StandardOutPath is left out on purpose: logs go to codexd.log
    assert data["Label"] == LABEL == Path(next(iter(launchd.render_files(SPEC)))).stem
    assert data["ProgramArguments"] == list(SPEC.argv)
    assert data["ProgramArguments"][0].startswith("/") and "~" not in data["ProgramArguments"][0]
    assert data["KeepAlive"] == {"SuccessfulExit": False, "Crashed": True}
    assert data["RunAtLoad"] is True
    assert data["ProcessType"] == "Interactive"
    assert data["EnvironmentVariables"] == {"CODEX_HOME": "/home/Zoë Doe/.codex 50%$x", "PYTHONUNBUFFERED": "1"}
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in (data["ThrottleInterval"], data["ExitTimeOut"]))
    assert data["ExitTimeOut"] > SPEC.drain_timeout
    assert data["SoftResourceLimits"]["NumberOfFiles"] >= 4096
    assert data["StandardErrorPath"] == "/home/Zoë Doe/Library/Logs/codexd/launchd.err.log"


def test_plist_with_characters_xml_escapes() -> None:
    spec = build_spec(Path("/a&b/<c>.toml"), executable=["/x/codexd"], env={"HOME": "/h"})
    assert plistlib.loads(launchd.render(spec).encode())["ProgramArguments"][-1] == "/a&b/<c>.toml"


@pytest.mark.skipif(shutil.which("plutil") is None, reason="plutil exists only on macOS")
def test_plutil_lint(tmp_path: Path) -> None:  # pragma: no cover - macOS CI
    path = tmp_path / f"{LABEL}.plist"
    path.write_text(launchd.render(SPEC), encoding="utf-8")
    subprocess.run(["plutil", "-lint", str(path)], check=True)


def test_fill_is_single_pass_and_strict() -> None:
    assert templates.fill("a=@A@ b=@B@", {"A": "@B@", "B": "x"}) == "a=@B@ b=x"
    with pytest.raises(CodexdError, match="@MISSING@"):
        templates.fill("@MISSING@", {})


def test_templates_prefer_the_packaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = tmp_path / "codexd" / "service-templates"
    packaged.mkdir(parents=True)
    (packaged / "codexd.socket").write_text("from the wheel")
    monkeypatch.setattr(templates.resources, "files", lambda _: tmp_path / "codexd")
    assert templates.template_text("codexd.socket") == "from the wheel"
    # Not in the package: the checkout's top-level service-templates/ is used.
    assert "[Socket]" not in templates.template_text("codexd.service")
    assert "[Service]" in templates.template_text("codexd.service")


def test_every_placeholder_of_the_unit_templates_is_filled() -> None:
    for name in ("codexd.service", "codexd.socket"):
        assert templates.placeholders(templates.template_text(name))
    rendered = systemd.render_service(SPEC) + systemd.render_socket(SPEC) + launchd.render(SPEC)
    assert not templates.placeholders(rendered)


def test_executable_is_this_codexd_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "venv" / "bin" / "codexd"
    real.parent.mkdir(parents=True)
    real.write_text("#!/bin/sh\n")
    real.chmod(0o755)
    link = tmp_path / "codexd"
    link.symlink_to(real)
    assert executable_argv(str(link)) == [str(real)]
    shim = tmp_path / "shims" / "codexd"
    shim.parent.mkdir()
    shim.write_text("#!/bin/sh\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "shims"))  # only a pyenv-style shim on PATH: not usable
    assert executable_argv(str(shim)) == [os.path.abspath(sys.executable), "-m", "codexd"]
    monkeypatch.setenv("PATH", str(real.parent))
    assert executable_argv("/usr/lib/python3/dist-packages/pytest") == [str(real)]


def test_build_spec_runs_serve_with_an_absolute_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    spec = build_spec(Path("rel.toml"), executable=["/x/codexd"], env={"HOME": "/h", "CODEX_HOME": "/c"})
    assert spec.argv == ("/x/codexd", "serve", "--config", str(tmp_path / "rel.toml"))
    assert spec.env == {"PYTHONUNBUFFERED": "1", "CODEX_HOME": "/c"}
    assert spec.environment_file == tmp_path / "environment"


def test_templates_and_man_pages_ship_in_the_wheel(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("codexd-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    assert {f"codexd/service-templates/{n}" for n in ("codexd.service", "codexd.socket", "codexd.plist")} <= names
    assert any(n.endswith("/share/man/man1/codexd.1") for n in names)
    assert any(n.endswith("/share/man/man5/codexd.toml.5") for n in names)
    probe = (
        "import codexd; from codexd.service import templates;"
        "print(codexd.__file__); print(templates.template_text('codexd.socket').splitlines()[0])"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    module_file, first_line = proc.stdout.splitlines()
    assert module_file.startswith(str(tmp_path / "site"))  # the installed copy, far from any checkout
    assert first_line == templates.template_text("codexd.socket").splitlines()[0]
