"""``codexd install|uninstall|start|stop|restart|reload|status|logs|doctor``: codexd as a per-user OS service.

Every import of ``codexd.service`` happens inside the command functions, and nothing here imports Tornado,
so ``codexd status`` starts fast. Failures of systemctl/launchctl arrive as ``CodexdError`` carrying the
command's own stderr; ``codexd.cli.main`` prints them and exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codexd.service import Backend
    from codexd.service.runner import Runner

HEALTH_WAIT = 10.0  # seconds install waits for /health after starting the service
EXIT_NOT_RUNNING = 3  # `codexd status` when the service is not running (as systemctl status / LSB)


def register(sub: Any) -> None:
    """Add the service commands to the ``codexd`` subparsers."""
    p = sub.add_parser("install", help="install and start codexd as a per-user service")
    p.add_argument("--user", action="store_true", help="per-user service (the only kind; accepted for clarity)")
    _platform_option(p)
    _config_option(p)
    p.add_argument("--print", action="store_true", help="print the service file(s) and change nothing")
    p.add_argument("--no-start", action="store_true", help="install and enable, but do not start now")
    p.add_argument("--socket", action="store_true", help="systemd: also install codexd.socket (socket activation)")
    p.add_argument("--linger", action="store_true", help="systemd: keep the service running without a login")
    p.set_defaults(func=install_cmd)

    p = sub.add_parser("uninstall", help="stop the service and remove its files (the config stays)")
    p.add_argument("--user", action="store_true", help="per-user service (the only kind; accepted for clarity)")
    _platform_option(p)
    p.set_defaults(func=uninstall_cmd)

    for action, text in (
        ("start", "start the installed service"),
        ("stop", "stop the service (it stays installed)"),
        ("restart", "restart the service"),
        ("reload", "reload the configuration without a restart (SIGHUP)"),
    ):
        p = sub.add_parser(action, help=text)
        _platform_option(p)
        p.set_defaults(func=control_cmd, action=action)

    p = sub.add_parser("status", help="show whether the service runs (exit 3 when it does not)")
    _platform_option(p)
    p.set_defaults(func=status_cmd)

    p = sub.add_parser("logs", help="show the service's log")
    _platform_option(p)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="how many recent lines (default 50)")
    p.set_defaults(func=logs_cmd)

    p = sub.add_parser("doctor", help="check credentials, config, service and endpoints")
    _platform_option(p)
    _config_option(p)
    p.add_argument("--online", action="store_true", help="also check that the upstream is reachable")
    p.set_defaults(func=doctor_cmd)


def _platform_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--platform", choices=("systemd", "launchd"), help="service manager (default: from the OS)")


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, metavar="PATH", help="configuration file (default: see codexd config path)")


def context(args: argparse.Namespace) -> tuple[Backend, Runner, Path, Path]:
    """The platform backend, a runner, the service file directory and the home directory."""
    from codexd.service import backend, detect_platform
    from codexd.service.runner import Runner

    be = backend(args.platform or detect_platform())
    home = Path(os.environ.get("HOME") or Path.home())
    return be, Runner(), be.target_dir(os.environ, home), home


def install_cmd(args: argparse.Namespace) -> int:
    """Render, write, enable and start the service, then wait for /health."""
    from codexd.service import probe
    from codexd.service.configfile import ensure_config
    from codexd.service.spec import build_spec
    from codexd.settings import default_config_path, load_settings

    be, runner, directory, home = context(args)
    config_path = Path(os.path.abspath(args.config or default_config_path()))
    # The service sees the file, not this shell: validate exactly what it will read.
    service_env = {name: os.environ[name] for name in ("CODEX_HOME",) if os.environ.get(name)}
    settings = load_settings(env=service_env, path=config_path)
    spec = build_spec(
        config_path, host=settings.host, port=settings.port, drain_timeout=settings.drain_timeout, socket=args.socket
    )
    if args.print:
        sys.stdout.write("\n".join(be.render_files(spec).values()))
        return 0
    if args.socket and be.NAME != "systemd":
        print("codexd: --socket is for systemd; ignored", file=sys.stderr)
    if args.linger:
        _linger(be, runner)
    created = ensure_config(config_path, os.environ)
    try:
        paths = be.install(spec, runner, directory, start=not args.no_start)
    except BaseException:
        if created:
            config_path.unlink(missing_ok=True)
        raise
    if created:
        print(f"wrote {config_path} (commented defaults; see codexd.toml(5))")
    for path in paths:
        print(f"installed {path}")
    if args.no_start:
        print("not started (--no-start): run `codexd start` to start it now")
        return 0
    url = probe.base_url(settings.host, settings.port)
    answer = probe.wait_healthy(
        f"{url}/health",
        HEALTH_WAIT,
        settings.api_key or (os.environ.get("CODEXD_API_KEY", "") if created else ""),
        still_starting=lambda: not be.status(runner, directory).state.startswith("failed"),
    )
    if not answer.ok:
        state = be.status(runner, directory)
        print(
            f"codexd: the service is installed but {url}/health did not answer ({answer.error or answer.status}); "
            f"service state: {state.state}. See the log: {be.log_hint(home)}",
            file=sys.stderr,
        )
        return 1
    print(f"codexd is running on {url} (health OK)")
    print(f"logs: {be.log_hint(home)}")
    return 0


def _linger(be: Backend, runner: Runner) -> None:
    if be.NAME != "systemd":
        print("codexd: --linger is for systemd; ignored", file=sys.stderr)
        return
    from codexd.service import systemd

    systemd.enable_linger(runner, _user())
    print("lingering enabled: the service keeps running after you log out and starts at boot")


def _user() -> str:
    import getpass

    return os.environ.get("USER") or getpass.getuser()


def uninstall_cmd(args: argparse.Namespace) -> int:
    """Stop, disable and remove the service files."""
    be, runner, directory, _ = context(args)
    removed = be.uninstall(runner, directory)
    if not removed:
        print(f"codexd is not installed as a service (nothing in {directory})")
    for path in removed:
        print(f"removed {path}")
    return 0


def control_cmd(args: argparse.Namespace) -> int:
    """start, stop, restart or reload."""
    be, runner, directory, _ = context(args)
    be.control(runner, directory, args.action)
    return 0


def status_cmd(args: argparse.Namespace) -> int:
    """One line of state, and the daemon's own status line when it has one."""
    be, runner, directory, _ = context(args)
    st = be.status(runner, directory)
    if not st.installed:
        print(f"codexd is not installed as a service ({st.state}); run `codexd install --user`")
        return EXIT_NOT_RUNNING
    parts = [f"codexd: {st.state}"]
    if st.pid:
        parts.append(f"pid {st.pid}")
    if st.restarts:
        parts.append(f"{st.restarts} restart(s)")
    print(", ".join(parts))
    if st.text:
        print(f"  {st.text}")
    if st.need_reload:
        print("  the unit file changed on disk: run `systemctl --user daemon-reload`")
    return 0 if st.active else EXIT_NOT_RUNNING


def logs_cmd(args: argparse.Namespace) -> int:
    """journalctl on Linux (replaces this process); the log file on macOS."""
    from codexd.errors import CodexdError, ErrorKind

    be, _, _, home = context(args)
    if be.NAME == "systemd":
        from codexd.service import systemd

        argv = systemd.logs_argv(args.lines, args.follow)
        sys.stdout.flush()
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            raise CodexdError(ErrorKind.INTERNAL, f"cannot run journalctl: {exc}") from None
    from codexd.service import launchd, logtail

    path = launchd.log_path(home)
    if not path.exists():
        raise CodexdError(ErrorKind.INTERNAL, f"no log file yet at {path}; is the service installed and started?")
    try:
        logtail.tail(path, args.lines, sys.stdout.write, follow=args.follow)
    finally:
        sys.stdout.flush()
    return 0


def doctor_cmd(args: argparse.Namespace) -> int:
    """Run the checks; exit 1 when one fails."""
    from codexd.cli import doctor

    be, runner, directory, home = context(args)
    return doctor.run(be, runner, directory, home, config=args.config, online=args.online)
