"""End-to-end fixtures: codexd and the fake backend on a background loop, for blocking SDK clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Stack, threaded_stack


@pytest.fixture
def live(codex_home: Path) -> Iterator[Stack]:
    """A running codexd (in a thread) in front of the fake backend."""
    with threaded_stack(codex_home) as stack:
        yield stack
