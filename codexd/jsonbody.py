"""Compact JSON for upstream request bodies, with lists that bring their own encoding (pure).

Claude Code sends the same tool list (about 40 KB of schemas in many small objects) with every request;
encoding it took about 330 us of the 560 us spent encoding an 83 KB upstream body. The translator keeps such
a list's JSON text from the first time it saw the list and hands the list over as an ``EncodedList``;
``dumps_body`` splices that text in instead of encoding the list again. A remembered conversation's input
comes the same way, as the JSON texts of its messages (``translate/progress.py``); those are copied once, into
the body, not joined first (joining a 650 KB conversation's texts and bracketing the result took two copies,
about 0.1 ms each on the benchmark's VM).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable
from typing import Any


def compact(value: Any) -> bytes:
    """``value`` as compact JSON bytes (non-ASCII escaped, as the upstream body has always been sent)."""
    return json.dumps(value, separators=(",", ":")).encode()


class EncodedList(list):  # type: ignore[type-arg]
    """A list and the JSON text of its items, as chunks that make the text when joined. The text counts only
    while the list holds the same item objects it was made with (whoever shares the items must not change
    them)."""

    __slots__ = ("_items", "chunks")

    def __init__(self, items: Iterable[Any], text: bytes | None = None, *, chunks: list[bytes] | None = None) -> None:
        super().__init__(items)
        self._items = tuple(self)
        self.chunks = chunks if chunks is not None else [compact(self._items) if text is None else text]

    @property
    def text(self) -> bytes:
        """The JSON text of the items."""
        return b"".join(self.chunks)

    def intact(self) -> bool:
        """Whether the list still holds exactly the items its text was made from."""
        return len(self) == len(self._items) and all(map(operator.is_, self, self._items))


def inner(items: list[Any]) -> bytes:
    """The JSON text of ``items`` as it stands inside a list, without the brackets: a piece for ``joined``."""
    return compact(items)[1:-1]


def joined(items: list[Any], pieces: Iterable[bytes]) -> EncodedList:
    """``items`` with their JSON text put together from ``pieces``, the ``inner`` texts of consecutive runs of
    them, in order (empty pieces, runs of no items, are skipped). The pieces are not copied here: they become
    the list's chunks, with the brackets and commas between them, and are copied once, into the body."""
    texts = list(filter(None, pieces))
    if not texts:
        return EncodedList(items, b"[]")
    chunks = [b","] * (2 * len(texts) + 1)
    chunks[1::2] = texts
    chunks[0], chunks[-1] = b"[", b"]"
    return EncodedList(items, chunks=chunks)


def dumps_body(body: dict[str, Any]) -> bytes:
    """``compact(body)``, with the text of each intact ``EncodedList`` at its top level spliced in (those
    keys come last; a JSON object's order carries no meaning): their chunks are copied once, here."""
    spliced = {key: value.chunks for key, value in body.items() if type(value) is EncodedList and value.intact()}
    if not spliced:
        return compact(body)
    rest = compact({key: value for key, value in body.items() if key not in spliced})
    parts = [rest[:-1]]
    comma = len(rest) > 2
    for key, chunks in spliced.items():
        parts += [b"," if comma else b"", compact(key), b":"]
        parts += chunks
        comma = True
    parts.append(b"}")
    return b"".join(parts)
