"""``codexd doctor``: one line per check, ``OK|WARN|FAIL <what> — <fix>``; exit 1 when any check fails.

Checks the configuration, the ChatGPT/Codex credentials (no network), the service files against what
``install`` would write now, the service manager's state, the port, ``/health`` and ``/ready``, and with
``--online`` whether the upstream answers. A check that cannot run (say, no user manager) is a FAIL line,
never a traceback.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codexd.errors import CodexdError

if TYPE_CHECKING:
    from codexd.service import Backend
    from codexd.service.runner import Runner
    from codexd.service.spec import ServiceStatus
    from codexd.settings import Settings


@dataclass(frozen=True, slots=True)
class Check:
    """The result of one check."""

    level: str  # OK, WARN or FAIL
    what: str
    fix: str = ""

    def line(self) -> str:
        """The printed line (always one line: a tool's multi-line message is joined)."""
        text = f"{self.level:<4} {self.what}" + (f" — {self.fix}" if self.fix else "")
        return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def run(
    be: Backend,
    runner: Runner,
    directory: Path,
    home: Path,
    *,
    config: Path | None,
    online: bool,
    out: Callable[[str], object] = print,
) -> int:
    """Run every check, print each line as it is known; 0 when nothing failed."""
    failed = False
    for check in checks(be, runner, directory, home, config, online):
        out(check.line())
        failed = failed or check.level == "FAIL"
    return 1 if failed else 0


def checks(
    be: Backend, runner: Runner, directory: Path, home: Path, config: Path | None, online: bool
) -> Iterator[Check]:
    """The checks in order; later ones use what earlier ones found."""
    from codexd.settings import default_config_path, load_settings

    path = Path(os.path.abspath(config or default_config_path()))
    try:
        settings = load_settings(env={k: v for k, v in os.environ.items() if k == "CODEX_HOME"}, path=path)
    except CodexdError as err:
        yield Check("FAIL", f"config: {err.message}", f"fix the file ({path}), or see codexd.toml(5)")
        return
    yield _config_check(path, settings)
    yield _trust_check(settings)
    yield _credentials_check(settings)
    yield from _service_checks(be, runner, directory, path, settings)
    status = _guard(lambda: be.status(runner, directory))
    yield from [status] if isinstance(status, Check) else _state_checks(status)
    if be.NAME == "systemd":
        yield _linger_check(runner)
    yield from _endpoint_checks(settings)
    if online:
        yield _upstream_check(settings)


def _guard(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except CodexdError as err:
        hinted = "login session" in err.message  # the runner already explained the usual cause
        return Check("FAIL", f"service manager: {err.message}", "" if hinted else "is your service manager running?")


def _config_check(path: Path, settings: Settings) -> Check:
    if not path.exists():
        return Check("OK", f"config {path} absent: defaults apply", "")
    mode = stat.S_IMODE(path.stat().st_mode)
    if settings.api_key and mode & 0o077:
        return Check("WARN", f"config {path} holds an api key but is readable by others", f"chmod 600 '{path}'")
    return Check("OK", f"config {path} is valid")


def _trust_check(settings: Settings) -> Check:
    """The CAs upstream requests are verified against: configured ones that cannot verify anything fail
    every request."""
    from codexd.upstream.trust import trust_problem, trusted

    problem = trust_problem(settings)
    if problem is not None:
        return Check("FAIL", *problem)
    return Check("OK", f"TLS to the backend trusts {trusted(settings)}")


def _credentials_check(settings: Settings) -> Check:
    from codexd.credentials import Credentials

    async def no_network(url: str, form: dict[str, Any]) -> tuple[int, bytes]:
        raise AssertionError("doctor never refreshes tokens")

    info = Credentials(settings.auth_path, settings.refresh_url, no_network).describe()
    where = str(settings.auth_path)
    if not info.get("ok"):
        error = str(info.get("error"))
        return Check("FAIL", f"credentials {where}: {error}", "" if "codex login" in error else "run `codex login`")
    expires = info.get("expires_in")
    account = f", account {info['account_id']}" if info.get("account_id") else ""
    what = f"credentials {where}: {info.get('mode')}{account}"
    if expires is None:
        return Check("OK", what)
    if expires <= 0:
        return Check("WARN", f"{what}; access token expired {_duration(-expires)} ago", "codexd refreshes it on use")
    return Check("OK", f"{what}; access token expires in {_duration(expires)}")


def _duration(seconds: float) -> str:
    minutes = int(seconds) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _service_checks(be: Backend, runner: Runner, directory: Path, config: Path, settings: Settings) -> Iterator[Check]:
    """The files on disk against what ``install`` would render now."""
    from codexd.service.spec import SOCKET_UNIT, build_spec

    socket = be.NAME == "systemd" and (directory / SOCKET_UNIT).exists()
    spec = build_spec(
        config, host=settings.host, port=settings.port, drain_timeout=settings.drain_timeout, socket=socket
    )
    for name, text in be.render_files(spec).items():
        path = directory / name
        try:
            installed = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            yield Check("WARN", f"{name} is not installed", "run `codexd install --user`")
            continue
        except OSError as exc:
            yield Check("FAIL", f"{path}: {exc}", "check the file's owner and mode")
            continue
        if installed != text:
            yield Check("WARN", f"{path} differs from what this codexd would write", "run `codexd install --user`")
        else:
            yield Check("OK", f"{path} is current")


def _state_checks(status: ServiceStatus) -> Iterator[Check]:
    if status.need_reload:
        yield Check("WARN", "unit files changed on disk since the last daemon-reload", "systemctl --user daemon-reload")
    yield _state_check(status)


def _state_check(status: ServiceStatus) -> Check:
    if not status.installed:
        return Check("WARN", f"service not loaded ({status.state})", "run `codexd install --user`")
    if status.active:
        return Check("OK", f"service {status.state}" + (f", pid {status.pid}" if status.pid else ""))
    details = status.details
    if details.get("Result") == "start-limit-hit":
        fix = "fix the cause (codexd logs), then `systemctl --user reset-failed codexd` and `codexd start`"
    elif details.get("ExecMainStatus") == "78":
        fix = "the configuration file is invalid: see `codexd logs`, fix it, then `codexd start`"
    else:
        fix = "run `codexd start`; see `codexd logs` if it stops again"
    return Check("FAIL", f"service {status.state}", fix)


def _linger_check(runner: Runner) -> Check:
    import getpass

    from codexd.service import systemd

    user = os.environ.get("USER") or getpass.getuser()
    try:
        lingering = systemd.linger(runner, user)
    except CodexdError:
        lingering = None
    if lingering:
        return Check("OK", f"lingering on for {user}: the service runs without a login session")
    if lingering is None:
        return Check("WARN", "cannot tell whether lingering is on (loginctl failed)", "loginctl show-user $USER")
    return Check(
        "WARN", "lingering off: the service stops when you log out", "codexd install --linger (loginctl enable-linger)"
    )


def _endpoint_checks(settings: Settings) -> Iterator[Check]:
    from codexd.service import probe

    url = probe.base_url(settings.host, settings.port)
    health = probe.get(f"{url}/health", api_key=settings.api_key)
    ours = health.ok and isinstance(health.body, dict) and health.body.get("status") == "ok"
    if probe.port_free(settings.host, settings.port):
        yield Check("OK", f"port {settings.port} is free (nothing listens on {settings.host})")
    elif ours:
        yield Check("OK", f"port {settings.port} is codexd's")
    else:
        yield Check("FAIL", f"port {settings.port} is used by another program", "stop it, or set server.port")
    if not ours:
        yield Check("FAIL", f"{url}/health does not answer ({health.error or health.status})", "run `codexd start`")
        return
    yield Check("OK", f"{url}/health answers")
    ready = probe.get(f"{url}/ready", api_key=settings.api_key)
    if ready.ok:
        yield Check("OK", f"{url}/ready answers: ready")
    else:
        reason = ready.body.get("credentials", {}).get("error") if isinstance(ready.body, dict) else None
        yield Check("FAIL", f"{url}/ready: not ready ({reason or ready.error or ready.status})", "run `codex login`")


def _upstream_check(settings: Settings) -> Check:
    """Any HTTP answer (even 401 or 404) proves the network path, proxy and TLS work."""
    import ssl
    import urllib.error
    import urllib.request

    url = settings.chatgpt_base_url
    handlers: list[Any] = []
    if settings.proxy:
        handlers.append(urllib.request.ProxyHandler({"https": settings.proxy, "http": settings.proxy}))
    context = ssl.create_default_context(cafile=settings.ca_bundle or None, capath=settings.ca_dir or None)
    handlers.append(urllib.request.HTTPSHandler(context=context))
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=settings.connect_timeout) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(
            "FAIL",
            f"upstream {url} unreachable: {reason}",
            "check the network, upstream.proxy, upstream.ca_bundle, upstream.ca_dir",
        )
    return Check("OK", f"upstream {url} reachable (HTTP {code})")
