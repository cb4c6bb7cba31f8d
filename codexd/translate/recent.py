"""Translations of what clients resend unchanged with every request (their tool lists), kept for reuse (pure).

Claude Code sends the same tools (about 40 KB of schemas) with every request of a session, as do agents on
Chat Completions. Translating such a list and encoding the result took several hundred microseconds per
request; the last few are kept. A ``SharedList`` from the body parser (large tool lists resent with the
same text) is found again by identity; other values by their pickle: unlike ``==``, a pickle tells ``true``
from ``1`` and ``1.0``; pickling an 18-tool list takes about 45 us.

Clients resend the conversation too; what is kept of that is in ``progress.py``.
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
