"""``codexd config path|get|set``: read and edit the TOML file, keeping the user's comments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``config`` command group."""
    p = sub.add_parser("config", help="show or change the configuration file")
    p.add_argument("--config", type=Path, help="configuration file (default: the platform's config dir)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("path", help="print the configuration file's path").set_defaults(func=path_cmd)
    get = actions.add_parser("get", help="print the effective value of KEY (e.g. server.port)")
    get.add_argument("key")
    get.set_defaults(func=get_cmd)
    put = actions.add_parser("set", help="write KEY = VALUE into the file, keeping comments")
    put.add_argument("key")
    put.add_argument("value")
    put.set_defaults(func=set_cmd)


def _path(args: argparse.Namespace) -> Path:
    from codexd.settings import default_config_path

    return args.config or default_config_path()


def _key(name: str) -> Any:
    from codexd.errors import CodexdError, ErrorKind
    from codexd.settings import KEYS_BY_NAME

    if name.startswith("models.aliases.") and len(name) > len("models.aliases."):
        return None
    if name not in KEYS_BY_NAME:
        raise CodexdError(ErrorKind.BAD_REQUEST, f"unknown key '{name}'; see codexd.toml(5) for the list")
    return KEYS_BY_NAME[name]


def path_cmd(args: argparse.Namespace) -> int:
    """Print the path (whether or not the file exists)."""
    print(_path(args))
    return 0


def get_cmd(args: argparse.Namespace) -> int:
    """Print the effective value (file, then environment, then default)."""
    from codexd.settings import load_settings

    key = _key(args.key)
    settings = load_settings(path=_path(args), check_exposure=False)
    if key is None:
        value: Any = settings.aliases.get(args.key.removeprefix("models.aliases."), "")
    else:
        value = getattr(settings, key.attr)
    if isinstance(value, bool):
        print("true" if value else "false")
    elif isinstance(value, (list, tuple)):
        print(",".join(value))
    elif isinstance(value, dict):
        print("\n".join(f"{k} = {v}" for k, v in value.items()))
    else:
        print(value)
    return 0


def set_cmd(args: argparse.Namespace) -> int:
    """Set one key with tomlkit so comments and layout survive; validate before writing."""
    import tomlkit

    from codexd.errors import CodexdError, ErrorKind
    from codexd.settings import file_values, parse_text, read_document

    path = _path(args)
    doc = read_document(path)
    key = _key(args.key)
    section, _, name = args.key.partition(".")
    if key is None:  # models.aliases.NAME
        section, name = "models", "aliases"
        alias = args.key.removeprefix("models.aliases.")
        table = doc.setdefault("models", tomlkit.table()).setdefault("aliases", tomlkit.table())
        table[alias] = args.value
    else:
        if key.type is dict:
            raise CodexdError(ErrorKind.BAD_REQUEST, f"set entries one by one: {key.name}.NAME VALUE")
        value = parse_text(key, args.value, args.key)
        if section not in doc:
            doc[section] = tomlkit.table()
        doc[section][name] = value
    file_values(doc, path)  # refuse to write a file codexd would then reject
    _write(path, tomlkit.dumps(doc), secret=args.key == "server.api_key")
    return 0


def _write(path: Path, text: str, secret: bool) -> None:
    from codexd.service.files import write_atomic

    mode = 0o600 if secret or (path.exists() and path.stat().st_mode & 0o077 == 0) else 0o644
    write_atomic(path, text, mode)
    print(f"wrote {path}", file=sys.stderr)
