"""Translations of what clients resend unchanged with every request (their tool lists), kept for reuse (pure).

Claude Code sends the same tools (about 40 KB of schemas) with every request of a session, as do agents on
Chat Completions. Translating such a list and encoding the result took several hundred microseconds per
request; the last few are kept. A ``SharedList`` from the body parser (large tool lists resent with the
same text) is found again by identity; other values by their pickle: unlike ``==``, a pickle tells ``true``
from ``1`` and ``1.0``; pickling an 18-tool list takes about 45 us.

Clients resend the conversation too, one message or two longer each time. ``PerItem`` keeps the translation
of each message of a conversation the body parser remembered (``SharedItems``), found by identity, for as long
as the parser remembers the conversation. ``Resumable`` keeps a translator's whole state at the end of a
conversation's last turn, so that the next turn takes the part it shares with that one in one step.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from itertools import compress, count
from operator import is_not
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from codexd.jsonparse import Remembered, SharedItems, SharedList

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
    bodies share), kept with their conversation: each turn finds the results of the conversation's previous
    turn by the item's identity and an equal context (whatever else a result depends on), and keeps its own
    in their place. They are held weakly by the conversation, so they go when the body parser forgets it."""

    def __init__(self) -> None:
        self._kept: WeakKeyDictionary[Remembered, dict[int, tuple[Any, Any, T]]] = WeakKeyDictionary()

    def turn(self, items: SharedItems) -> Turn[T]:
        """Start translating ``items``: the previous turn's results can be had, this turn's are kept."""
        now: dict[int, tuple[Any, Any, T]] = {}
        before = self._kept.get(items.conversation, {})
        self._kept[items.conversation] = now
        return Turn(before, now)


class Turn(Generic[T]):
    """One translation of a remembered conversation (see ``PerItem``)."""

    __slots__ = ("_before", "_now")

    def __init__(self, before: dict[int, tuple[Any, Any, T]], now: dict[int, tuple[Any, Any, T]]) -> None:
        self._before = before
        self._now = now  # id -> (item, context, result); the item is kept, so its identity stays its own

    def get(self, item: Any, context: Any) -> T | None:
        """The previous turn's result for this very item in an equal context (kept for this turn too), or None."""
        entry = self._before.get(id(item))
        if entry is not None and entry[0] is item and (entry[1] is context or entry[1] == context):
            self._now[id(item)] = entry
            return entry[2]
        return None

    def put(self, item: Any, context: Any, result: T) -> None:
        """Keep ``result`` for ``item`` with this turn."""
        self._now[id(item)] = (item, context, result)


S = TypeVar("S")


class Resumable(Generic[S]):
    """Where a translator's work on each remembered conversation stood at the end of its last turn (a state it
    defines), so that the next turn resumes after the messages it shares with that one instead of going over
    all of them. Held weakly by the conversation, so it goes when the body parser forgets it."""

    def __init__(self) -> None:
        self._kept: WeakKeyDictionary[Remembered, tuple[list[Any], S]] = WeakKeyDictionary()

    def resume(self, items: SharedItems) -> tuple[S | None, int]:
        """The state kept for ``items``' conversation (None when there is none) and how many leading items
        ``items`` shares with the turn it was kept for: the same objects, in the same places."""
        kept = self._kept.get(items.conversation)
        if kept is None:
            return None, 0
        before, state = kept
        # The first place holding another object, found without a Python loop (about 15 us for 800 items).
        return state, next(compress(count(), map(is_not, items, before)), min(len(items), len(before)))

    def keep(self, items: SharedItems, state: S) -> None:
        """Keep the state after translating ``items`` (it replaces the previous turn's)."""
        self._kept[items.conversation] = (list(items), state)  # a plain list: no way back to the key
