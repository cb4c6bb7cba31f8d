"""The import direction of ARCHITECTURE.md, checked on the source (ast), and the CLI's lazy imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "codexd"
PURE = (
    "codexd.translate",
    "codexd.dialects",
    "codexd.sse",
    "codexd.models",
    "codexd.errors",
    "codexd.jsonbody",
    "codexd.jsonparse",
    "codexd.content_coding",
)
IMPURE_LIBRARIES = ("tornado", "pycurl", "prometheus_client", "tomlkit")
IMPURE_PACKAGES = ("codexd.server", "codexd.upstream", "codexd.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (lazy imports inside functions included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # ``from codexd import server`` imports the subpackage codexd.server
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(importers: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in MODULES.items()
        if within(module, importers)
        for target in targets
        if within(target, forbidden)
    )


def test_the_walker_sees_the_package() -> None:
    assert "codexd.translate.protocol" in MODULES
    assert "codexd.server.lifecycle" in MODULES
    assert "tornado.httpserver" in MODULES["codexd.server.lifecycle"]
    assert "codexd.settings" in MODULES["codexd.cli.serve_cmd"]  # a lazy import inside a function counts
    assert "codexd.__main__ imports codexd.cli" in violations(("codexd",), ("codexd.cli",))


@pytest.mark.parametrize("pure", PURE)
def test_pure_modules_import_no_io_library(pure: str) -> None:
    assert violations((pure,), IMPURE_LIBRARIES) == []


@pytest.mark.parametrize("pure", PURE)
def test_pure_modules_import_no_server_upstream_or_cli(pure: str) -> None:
    assert violations((pure,), IMPURE_PACKAGES) == []


def test_service_imports_nothing_of_server() -> None:
    assert violations(("codexd.service",), ("codexd.server",)) == []


def test_nothing_imports_cli() -> None:
    found = violations(("codexd",), ("codexd.cli",))
    allowed = ("codexd.cli", "codexd.__main__")
    assert [line for line in found if not within(line.split()[0], allowed)] == []


def test_importing_the_cli_loads_no_tornado() -> None:
    """``codexd --version`` and ``codexd config path`` must not pay for tornado's import."""
    code = "import codexd.cli, sys; print(sorted(m for m in sys.modules if m.startswith('tornado')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == "[]"


def test_building_the_parser_loads_no_server_code() -> None:
    code = (
        "import sys; from codexd.cli import build_parser; build_parser();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tornado', 'pycurl', 'prometheus_client')"
        " or m.startswith('codexd.server')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == "[]"


def test_reading_the_settings_loads_no_tomlkit(tmp_path: Path) -> None:
    """``codexd serve`` reads its file with tomllib; tomlkit (0.6 MB of RSS, 10 ms) is for ``config set``."""
    config = tmp_path / "config.toml"
    config.write_text("# mine\n[server]\nport = 9911\n", encoding="utf-8")
    code = (
        "import sys; from pathlib import Path; from codexd.settings import load_settings;"
        f"s = load_settings(env={{}}, path=Path({str(config)!r}));"
        "print(s.port, sorted(m for m in sys.modules if m.startswith('tomlkit')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == "9911 []"
