"""``codexd serve``: run the proxy in the foreground."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codexd.errors import CodexdError
    from codexd.settings import Settings


def register(sub: Any) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser("serve", help="run the proxy in the foreground")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 8765)")
    p.add_argument("--config", type=Path, help="configuration file (default: the platform's config dir)")
    p.add_argument("--api-key", help="require this key from clients (Authorization: Bearer or x-api-key)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument("--log-format", choices=("text", "json"))
    p.set_defaults(func=run)


def flags_of(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line values as settings keys (None means not given)."""
    return {
        "server.host": args.host,
        "server.port": args.port,
        "server.api_key": args.api_key,
        "log.level": args.log_level,
        "log.format": args.log_format,
    }


def run(args: argparse.Namespace) -> int:
    """Load settings (exit 78 on a bad file) and serve until SIGTERM."""
    import asyncio

    from codexd.server.lifecycle import serve
    from codexd.settings import load_settings, refuse_exposure

    settings = load_settings(flags_of(args), path=args.config)
    raise_open_files_limit()

    def reload() -> Settings:
        new = load_settings(flags_of(args), path=args.config)
        # A reload cannot move the listening socket: judge the new api key against the address in use.
        refuse_exposure(new.replace(host=settings.host))
        return new

    try:
        return asyncio.run(serve(settings, reload))
    except OSError as exc:  # only binding raises one out of the serve loop
        raise listen_error(settings, exc) from None


def raise_open_files_limit(want: int = 65536) -> int:
    """Lift the soft open-files limit towards the hard one: each stream holds two sockets, and the
    common default soft limit of 1024 would cap codexd near 500 concurrent streams."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            return soft
    return soft


def listen_error(settings: Settings, exc: OSError) -> CodexdError:
    """One line for a failed bind: a port in use may free up (exit 1), a wrong address will not (exit 78)."""
    from codexd.errors import CodexdError, ErrorKind

    where = f"{settings.host}:{settings.port}"
    if exc.errno == errno.EADDRINUSE:
        return CodexdError(ErrorKind.UNAVAILABLE, f"cannot listen on {where}: the port is in use (another codexd?)")
    reason = exc.strerror or str(exc)
    return CodexdError(ErrorKind.CONFIG, f"cannot listen on {where}: {reason}; check server.host and server.port")
