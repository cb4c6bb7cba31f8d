"""Translations of what clients resend unchanged with every request (their tool lists), kept for reuse (pure).

Claude Code sends the same tools (about 40 KB of schemas) with every request of a session, as do agents on
Chat Completions. Translating such a list and encoding the result took several hundred microseconds per
request; the last few are kept. A ``SharedList`` from the body parser (large tool lists resent with the
same text) is found again by identity; other values by their pickle: unlike ``==``, a pickle tells ``true``
from ``1`` and ``1.0``; pickling an 18-tool list takes about 45 us.

Clients resend the conversation too, one message or two longer each time. ``PerItem`` keeps the translation
of each message of a conversation the body parser remembered (``SharedItems``), found by identity.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from codexd.jsonparse import SharedList

T = TypeVar("T")


class Recent(Generic[T]):
    """The last ``size`` results of translating client values, newest first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: list[tuple[Any, bytes, T]] = []  # (client value, its pickle, result)

    def get(self, value: Any, make: Callable[[Any], T]) -> T:
        """``make(value)``, or its result for the same shared list or an identical earlier value. A value
        ``make`` refuses (raises) is never kept, so it is refused every time; one that cannot be pickled is
        translated every time."""
        if type(value) is SharedList:
            for seen_value, _, item in self._items:
                if seen_value is value:
                    return item
        try:
            key: bytes | None = pickle.dumps(value, protocol=5)
        except (pickle.PicklingError, RecursionError, TypeError):
            key = None
        for _, seen, item in self._items:
            if seen == key:
                return item
        item = make(value)
        if key is not None:
            self._items.insert(0, (value, key, item))
            del self._items[self.size :]
        return item


class PerItem(Generic[T]):
    """Results of translating the items of ``SharedItems`` lists (the messages of a conversation, which later
    bodies share), found by the item's identity and an equal context (whatever else the result depends on).
    The entries that the last ``calls`` translations used or made are kept."""

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self._generations: list[dict[int, tuple[Any, Any, T]]] = [{}]  # newest first; id -> (item, context, result)
        _PER_ITEM.append(self)

    def begin(self) -> None:
        """Start translating a list: what it uses or makes is kept for ``calls`` lists."""
        self._generations.insert(0, {})
        del self._generations[self.calls :]

    def get(self, item: Any, context: Any) -> T | None:
        """The result kept for this very item in an equal context, or None."""
        for generation in self._generations:
            entry = generation.get(id(item))
            if entry is not None and entry[0] is item and (entry[1] is context or entry[1] == context):
                self._generations[0][id(item)] = entry
                return entry[2]
        return None

    def put(self, item: Any, context: Any, result: T) -> None:
        """Keep ``result`` for ``item`` (the item is kept too, so its identity stays its own)."""
        self._generations[0][id(item)] = (item, context, result)

    def clear(self) -> None:
        """Let go of every result."""
        self._generations = [{}]


_PER_ITEM: list[PerItem[Any]] = []  # every one made, for ``forget_conversations``


def forget_conversations() -> None:
    """Let go of every ``PerItem``'s results (when clients have gone quiet)."""
    for memo in _PER_ITEM:
        memo.clear()
