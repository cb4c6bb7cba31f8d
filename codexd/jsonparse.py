"""Request bodies parsed from JSON, with the large values clients resend unchanged taken from before (pure).

Claude Code sends the same tool list (about 40 KB of schemas in many small objects) with every request of a
session. Parsing that list, checking its depth and finding its translation again took about 0.3 ms of the
0.8 ms codexd spent on an 83 KB request (in-process, warm). A body of a few KiB or more is therefore read one
top-level member at a time: when the text at a watched key (``tools``) starts with the text of a list
remembered from an earlier body, that list is used as it is, the same ``SharedList`` object, not parsed
again, and the translators' memo (``translate/recent.py``) finds its translation by identity. Nobody may
change a ``SharedList`` or what it holds: later requests get the same objects.

Clients also resend the whole conversation (``messages``; ``input`` on ``/v1/responses``) with every request,
with a message or two more at the end and small changes near it (Claude Code moves its cache marks to the
newest messages). Such a list is read one item at a time: an item whose text is the text of the item at the
same place in a remembered conversation is that item, the same object, not parsed again, and the translators
find their work on it by identity (``translate/progress.py``). The list itself is a new ``SharedItems`` each
time; nobody may change the items it holds. Comparing item by item still cost about 0.8 us an item (0.6 ms
for a 650 KB session of 800 messages), so the settled part of a conversation (all but its newest items) is
kept in pieces of at least ``_PIECE`` characters, each compared whole: one comparison of memory for the part
that did not change, then item by item for the rest.

The result is always what ``json.loads`` returns for the same bytes, and so are the errors: anything the
member-by-member reading does not expect is handed to ``json.loads``.
"""

from __future__ import annotations

import json
import json.scanner
import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100  # far beyond real requests (tool schemas nest a dozen levels)
WATCHED = frozenset({"tools"})  # top-level keys whose values clients resend unchanged
GROWING = frozenset({"messages", "input"})  # top-level lists clients resend with more at the end (conversations)
_SMALL_BODY = 8 * 1024  # bytes; smaller bodies go to json.loads whole
_SMALL_VALUE = 2 * 1024  # characters; shorter values are cheap to parse again
_LARGE_VALUE = 1024 * 1024  # characters; longer ones are not kept (eight, parsed too, would be tens of MB)
# Tool lists remembered, here and (translated) by the translators: a session's main agent and each kind of
# sub-agent it runs send lists of their own, in turn, as many as the conversations kept (with four, a fifth list
# in the rotation pushed out the next one due: 0.76 instead of 0.19 ms a request, 40 KB lists). About 250 KiB
# each with its translation.
TOOL_LISTS = 8
# Conversations remembered, newest first: Claude Code's main agent and the sub-agents it runs at once each send
# their own, in turn, so a limit below what they come to together means none is ever found again (a 640 KB
# main conversation and three sub-agents' of 200-290 KB: 9.8 and 3.4 ms a request instead of 0.4 and 0.3 with a
# limit of 1 MiB). With the parsed messages and the translators' work on them, a conversation holds about five
# times its text, so the budget (characters of text, all together) costs up to about 20 MB while clients work.
_CONVERSATIONS = 8
_CONVERSATION_BUDGET = 4 * 1024 * 1024
_PIECE = 16 * 1024  # characters: the settled part of a conversation is compared in pieces of at least this size
_UNSETTLED = 4  # the newest items, which clients still change (cache marks), are compared one at a time

# The scanner json.loads uses (its C version): the value at a position and where it ends.
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, as json.decoder skips it
_NEXT = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")  # after a list item: its separator, and the next item


class SharedList(list):  # type: ignore[type-arg]
    """A parsed list that later bodies with the same text share (see the module docstring)."""

    __slots__ = ()


class Remembered:
    """A remembered conversation: its items parsed and their text. The same object stands for the conversation
    from turn to turn; translators keep their work on its items keyed by it, weakly, so that work goes when the
    parser forgets the conversation.

    The text is kept once, cut where items start: ``pieces[k]`` is the text of ``items[bounds[k]:bounds[k + 1]]``
    up to the next item's start (separators included), ``rest`` that of the items after the last piece, up to
    the last one's end. ``starts`` and ``ends`` place each item, counted from the first one's start."""

    __slots__ = ("__weakref__", "bounds", "ends", "items", "pieces", "rest", "size", "starts", "used")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.pieces: list[str] = []
        self.bounds: list[int] = [0]
        self.rest = ""
        self.size = 0  # characters of text, the whole list's
        self.used = 0.0  # when a body last brought it (the parser's clock)

    def text(self, n: int) -> str:
        """The text of item ``n``."""
        k = bisect_right(self.bounds, n) - 1
        whole = self.pieces[k] if k < len(self.pieces) else self.rest
        base = self.starts[self.bounds[k]]
        return whole[self.starts[n] - base : self.ends[n] - base]


class SharedItems(list):  # type: ignore[type-arg]
    """A parsed list whose items later bodies may share (see the module docstring): nobody may change them.
    ``conversation`` is the remembered conversation it was read as."""

    __slots__ = ("conversation",)

    def __init__(self, items: list[Any], conversation: Remembered | None = None) -> None:
        super().__init__(items)
        self.conversation = conversation if conversation is not None else Remembered()


class TooDeep(Exception):
    """The body nests lists and objects deeper than ``MAX_DEPTH``."""


def nesting_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` has lists or objects nested more than ``limit`` deep (no recursion used).

    One level at a time, each gathered by a comprehension: on an 83 KB Claude Code request 89-107 us, where a
    stack of (node, depth) pairs took 217-249 us."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        if not level:
            return False
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list))
        ]
    return bool(level)


def _skip(text: str, i: int) -> int:
    """The position after any whitespace at ``i``."""
    return _SPACE.match(text, i).end()  # type: ignore[union-attr]  # it matches the empty string too


class _Unexpected(Exception):
    """Something the member-by-member reading leaves to ``json.loads``."""


class BodyParser:
    """Parses request bodies, remembering the last few large values seen at the watched keys by their text."""

    def __init__(
        self,
        keys: frozenset[str] = WATCHED,
        keep: int = TOOL_LISTS,
        growing: frozenset[str] = GROWING,
        conversations: int = _CONVERSATIONS,
        budget: int = _CONVERSATION_BUDGET,
        piece: int = _PIECE,
        unsettled: int = _UNSETTLED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.keep = keep
        self.growing = growing
        self.conversations = conversations
        self.budget = budget
        self.piece = piece
        self.unsettled = max(unsettled, 1)  # the last item is never in a piece: a piece ends where an item starts
        self.clock = clock
        self._seen: list[tuple[str, SharedList]] = []  # (text, parsed list), newest first; within MAX_DEPTH
        self._conversations: list[Remembered] = []  # newest first; items within MAX_DEPTH

    def forget_conversations(self, unused_for: float | None = None) -> None:
        """Let go of the remembered conversations: all of them (when clients have gone quiet), or those no body
        has brought for ``unused_for`` seconds (a sub-agent that finished its task, while the others work on)."""
        if unused_for is None:
            self._conversations.clear()
        else:
            since = self.clock() - unused_for
            self._conversations = [c for c in self._conversations if c.used >= since]

    def parse(self, raw: bytes) -> Any:
        """``json.loads(raw)``: an equal value (large watched lists as ``SharedList``), or the same exception
        (``ValueError``, ``RecursionError``); ``TooDeep`` when the value nests deeper than ``MAX_DEPTH``."""
        if len(raw) >= _SMALL_BODY:
            text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads decodes bytes
            try:
                return self._members(text)
            except (_Unexpected, StopIteration, ValueError, RecursionError):
                pass  # json.loads below gives the canonical error, or the value after all
        body = json.loads(raw)
        if nesting_exceeds(body, MAX_DEPTH):
            raise TooDeep
        return body

    def _members(self, text: str) -> dict[str, Any]:
        """A JSON object read one member at a time; the watched values' texts are looked up first."""
        i = _skip(text, 0)
        if text[i : i + 1] != "{":
            raise _Unexpected
        body: dict[str, Any] = {}
        too_deep = False  # raised once the whole body has been read, as json.loads reports bad syntax first
        i = _skip(text, i + 1)
        if text[i : i + 1] == "}":
            i += 1
        else:
            while True:
                if text[i : i + 1] != '"':
                    raise _Unexpected
                key, i = _scan(text, i)
                i = _skip(text, i)
                if text[i : i + 1] != ":":
                    raise _Unexpected
                i = _skip(text, i + 1)
                known = self._recall(text, i) if key in self.keys else None
                value: Any
                if known is not None:
                    value, i = known
                elif key in self.growing and text[i : i + 1] == "[":
                    value, i, deep = self._conversation(text, i)
                    too_deep = too_deep or deep
                else:
                    start = i
                    value, i = _scan(text, i)
                    if nesting_exceeds(value, MAX_DEPTH - 1):  # the body itself is one level more
                        too_deep = True
                    elif key in self.keys and _SMALL_VALUE <= i - start <= _LARGE_VALUE and isinstance(value, list):
                        value = SharedList(value)
                        self._seen.insert(0, (text[start:i], value))
                        del self._seen[self.keep :]
                body[key] = value
                i = _skip(text, i)
                separator = text[i : i + 1]
                i += 1
                if separator == "}":
                    break
                if separator != ",":
                    raise _Unexpected
                i = _skip(text, i)
        if _skip(text, i) != len(text):
            raise _Unexpected
        if too_deep:
            raise TooDeep
        return body

    def _recall(self, text: str, at: int) -> tuple[SharedList, int] | None:
        """The remembered list whose text starts at ``at`` (it moves to the front), and where its text ends.
        A complete JSON array is never the start of a longer one: a matching start is the whole value."""
        for n, (seen, value) in enumerate(self._seen):
            if text.startswith(seen, at):
                if n:
                    self._seen.insert(0, self._seen.pop(n))
                return value, at + len(seen)
        return None

    def _conversation(self, text: str, at: int) -> tuple[list[Any], int, bool]:
        """The list whose ``[`` is at ``at``, where it ends, and whether an item nests too deeply. An item whose
        text is that of the item at the same place in a remembered conversation is taken from it; so are the
        items of each of its pieces while the text goes on as they do."""
        i = _skip(text, at + 1)
        if text[i : i + 1] == "]":
            return [], i + 1, False
        first = i
        seen = self._match(text, i)
        k = 0  # the remembered pieces found again, in order from the first
        for piece in seen.pieces:
            if not text.startswith(piece, i):
                break
            i += len(piece)
            k += 1
        n = seen.bounds[k]
        items, starts, ends = seen.items[:n], seen.starts[:n], seen.ends[:n]
        deep = False
        while True:
            part = seen.text(n) if n < len(seen.items) else ""
            # A complete JSON value at the start of the text is all of it when a separator follows (a number
            # could go on: "1" starts "12").
            after = _NEXT.match(text, i + len(part)) if part and text.startswith(part, i) else None
            if after is not None:
                value, end = seen.items[n], i + len(part)
            else:
                value, end = _scan(text, i)
                deep = deep or nesting_exceeds(value, MAX_DEPTH - 2)  # the body and the list are two levels
                after = _NEXT.match(text, end)
                if after is None:
                    raise _Unexpected
            items.append(value)
            starts.append(i - first)
            ends.append(end - first)
            n += 1
            i = after.end()
            if after.group(1) == "]":
                break
        if deep or not _SMALL_VALUE <= i - at <= self.budget:
            return items, i, deep
        self._settle(seen, text, first, k, starts, ends)
        seen.items, seen.starts, seen.ends, seen.size, seen.used = items, starts, ends, i - at, self.clock()
        self._remember(seen)
        return SharedItems(items, seen), i, False

    def _settle(self, seen: Remembered, text: str, first: int, kept: int, starts: list[int], ends: list[int]) -> None:
        """Cut ``seen``'s text anew for the list just read (its first item at ``first`` in ``text``, ``starts``
        and ``ends`` its items): the first ``kept`` pieces stay, then the items after them are put in new pieces
        as long as enough of them are left, all but the newest ``unsettled``."""
        pieces, bounds = seen.pieces[:kept], seen.bounds[: kept + 1]
        done = bounds[-1]
        last = len(starts) - self.unsettled  # the first item no piece may hold
        while done < last:
            cut = bisect_left(starts, starts[done] + self.piece, done + 1, last + 1)
            if cut > last:
                break
            pieces.append(text[first + starts[done] : first + starts[cut]])
            bounds.append(cut)
            done = cut
        seen.pieces, seen.bounds, seen.rest = pieces, bounds, text[first + starts[done] : first + ends[-1]]

    def _match(self, text: str, at: int) -> Remembered:
        """The remembered conversation whose first item's text starts at ``at`` (no longer remembered until the
        list being read replaces its items), or a new one."""
        for n, conversation in enumerate(self._conversations):
            if text.startswith(conversation.text(0), at):
                del self._conversations[n]
                return conversation
        return Remembered()

    def _remember(self, conversation: Remembered) -> None:
        """Keep a conversation as the newest, and older ones as far as the budget goes."""
        kept = [conversation]
        size = conversation.size
        for older in self._conversations[: self.conversations - 1]:
            size += older.size
            if size > self.budget:
                break
            kept.append(older)
        self._conversations = kept
