"""A conversation's messages translated one after another, and where each remembered conversation's last turn
stood (pure).

Clients resend the whole conversation with every request, one message or two longer each time. The body
parser hands a conversation it remembers over as ``SharedItems``: the messages the previous turn already had
are that turn's very objects. The chat and messages translators fill a ``Progress`` message by message and
keep it with the conversation (``Resumable``); the next turn takes the part it shares with the previous one in
one step (list slices), and of the rest translates only the messages it has not seen: one translated last
turn is taken as it was when it is the same object and its translation depends on nothing that changed.

The ``/v1/responses`` normaliser does the same with a Responses conversation's input items.

A turn may only resume after a message where the conversation was *closed*: every tool call so far (function
or custom) answered by a later output, every output answering an earlier call, no call id used twice. The
pairing the translators do (the backend rejects unanswered calls and stray outputs) then keeps every earlier
item whatever follows, so the kept part stands as it is; and if the whole conversation is closed, pairing
keeps everything and the input can go upstream as the messages' JSON texts joined (``jsonbody.joined``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress, count
from operator import is_not
from typing import Any
from weakref import WeakKeyDictionary

from codexd.jsonbody import inner, joined
from codexd.jsonparse import Remembered, SharedItems

Item = dict[str, Any]
# A message, its upstream items, their JSON text (``jsonbody.inner``) and its texts.
Done = tuple[Any, list[Item], bytes, Sequence[str]]
# The items that call a tool, and those that answer one (by the call's ``call_id``), by type.
CALLS = frozenset({"function_call", "custom_tool_call"})
OUTPUTS = {"function_call_output": "function_call", "custom_tool_call_output": "custom_tool_call"}
Call = tuple[str, str]  # a call's type and id


@dataclass(slots=True)
class Progress:
    """The messages translated so far (one entry per message in each list), and what continuing needs."""

    context: Any  # what every message's translation depends on besides the message (an equal one will do)
    encode: bool = True  # keep each message's JSON text (for a conversation that is kept)
    before: list[Done | None] = field(default_factory=list)  # the previous turn's messages, to take again
    done: list[Done | None] = field(default_factory=list)  # None: a message that is translated every time
    ends: list[int] = field(default_factory=list)  # how many items the messages up to this one make
    closed: list[bool] = field(default_factory=list)  # whether the conversation is closed after this message
    items: list[Item] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)
    texts: list[Sequence[str]] = field(default_factory=list)
    leading: list[str] = field(default_factory=list)  # the system texts before the first item
    calls: dict[Call, int] = field(default_factory=dict)  # call -> its message's index, in order
    pending: set[Call] = field(default_factory=set)  # calls since the resumption point not yet answered
    broken: bool = False  # since the resumption point: a stray output or a call id used twice

    def fits(self, context: Any) -> bool:
        """Whether its messages' translations hold in this context (the same object, or an equal one)."""
        return self.context is context or self.context == context

    def resumed(self, same: int, context: Any) -> Progress:
        """A new progress for a turn whose first ``same`` messages are this one's, holding them, or fewer: up
        to the last message after which the conversation was closed. None are held when the context differs,
        or when no item came of them (``leading`` may then take the texts of system messages after them)."""
        before = self.done if self.fits(context) else []
        same = min(same, len(self.ends))
        while same and not self.closed[same - 1]:
            same -= 1
        if not same or not self.ends[same - 1] or not before:
            return Progress(context, before=before)
        calls = self.calls.copy()
        while calls and calls[next(reversed(calls))] >= same:
            calls.popitem()
        return Progress(
            context,
            True,
            before,
            self.done[:same],
            self.ends[:same],
            self.closed[:same],
            self.items[: self.ends[same - 1]],
            self.encoded[:same],
            self.texts[:same],
            self.leading,  # complete: system texts join it only before the first item
            calls,
        )

    def take(self, message: Any, *, settled: bool = True) -> bool:
        """Add the next message as the previous turn translated it, when that is this very message and its
        translation was kept; False when it must be translated. ``settled`` as for ``add``."""
        at = len(self.done)
        known = self.before[at] if at < len(self.before) else None
        if known is None or known[0] is not message:
            return False
        self._add(known, known, settled)
        return True

    def add(self, message: Any, items: list[Item], texts: Sequence[str], *, again: bool, settled: bool = True) -> None:
        """Add the next message's translation: its items and texts. ``again``: it holds only where the message
        stands (it is translated every time). ``settled``: False while the translator holds state of its own
        that later messages depend on (legacy function calls awaiting their result): no turn resumes there."""
        done = (message, items, inner(items) if self.encode else b"", texts)
        self._add(done, None if again else done, settled)

    def _add(self, done: Done, kept: Done | None, settled: bool) -> None:
        at = len(self.done)
        self.done.append(kept)
        self.items += done[1]
        self.encoded.append(done[2])
        self.texts.append(done[3])
        self.ends.append(len(self.items))
        for item in done[1]:
            kind = item.get("type")
            if kind in CALLS:
                call = (kind, item["call_id"])
                if call in self.calls:
                    self.broken = True
                else:
                    self.calls[call] = at
                    self.pending.add(call)
            elif kind in OUTPUTS:
                call = (OUTPUTS[kind], item["call_id"])
                if call in self.pending:
                    self.pending.remove(call)
                else:
                    self.broken = True
        self.closed.append(settled and not self.broken and not self.pending)

    def upstream(self, paired: Callable[[list[Item]], list[Item]]) -> list[Item]:
        """The input items, calls and outputs ``paired``. For a kept conversation (texts kept), pairing runs
        only when the conversation is not closed, and the items come with their JSON text joined (an
        ``EncodedList``) when it dropped nothing; a plain list is paired as a whole, as it always was."""
        if not self.encode:
            return paired(self.items)
        kept = self.items if self.closed[-1] else paired(self.items)
        return joined(kept, self.encoded) if len(kept) == len(self.items) else kept


class Resumable:
    """Each remembered conversation's ``Progress`` at the end of its last turn, held weakly by the
    conversation, so that it goes when the body parser forgets the conversation."""

    def __init__(self) -> None:
        self._kept: WeakKeyDictionary[Remembered, tuple[list[Any], Progress]] = WeakKeyDictionary()

    def start(self, messages: SharedItems, context: Any) -> Progress:
        """A progress for translating ``messages`` in ``context``: holding what the conversation's last turn
        shares with it (the same objects in the same places), or empty."""
        kept = self._kept.get(messages.conversation)
        if kept is None:
            return Progress(context)
        before, progress = kept
        # The first place holding another object, found without a Python loop (about 15 us for 800 items).
        same = next(compress(count(), map(is_not, messages, before)), min(len(messages), len(before)))
        return progress.resumed(same, context)

    def keep(self, messages: SharedItems, progress: Progress) -> None:
        """Keep the progress after translating all of ``messages`` (it replaces the previous turn's)."""
        self._kept[messages.conversation] = (list(messages), progress)  # a plain list: no way back to the key
