"""The ``codexd`` command line: argparse, one module per command group, each command returns an exit code.

Imports stay lazy (inside command functions) so that ``codexd --version`` and ``codexd status`` start fast.
Errors are turned into a message and an exit status here and nowhere else in the CLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from codexd import __version__
from codexd.errors import CodexdError, ErrorKind

EXIT_CONFIG = 78  # EX_CONFIG: systemd's RestartPreventExitStatus=78 stops a restart loop on bad config


def build_parser() -> argparse.ArgumentParser:
    """The full parser; each command group module adds its subcommands."""
    from codexd.cli import config_cmd, serve_cmd, service_cmd

    parser = argparse.ArgumentParser(prog="codexd", description="Serve your ChatGPT/Codex login as local APIs.")
    parser.add_argument("--version", action="version", version=f"codexd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_cmd.register(sub)
    config_cmd.register(sub)
    service_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list in (["--version"], ["-V"]):  # fast path: no parser, no imports
        print(f"codexd {__version__}")
        return 0
    if argv is None and args_list[:1] == ["serve"]:  # this process's own command line, not a caller's list
        from codexd.allocator import use_system_allocator

        use_system_allocator()  # may execute the program again, before anything is done
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except CodexdError as err:
        print(f"codexd: {err.message}", file=sys.stderr)
        return EXIT_CONFIG if err.kind is ErrorKind.CONFIG else 1
    except KeyboardInterrupt:
        return 130
