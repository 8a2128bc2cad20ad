"""Holding a streamed reply back until the output policy has judged it.

A delta leaves only when the reply so far, judged with the input as the final check judges
it, passes; and only up to a point that no later text can reach back across to complete a
refused term. That point is, at the same time:
- at least `holdback_chars` (from the policy: its longest term, spelt out) before the end of
  the judged text, and at least `HOLDBACK_WORDS` whitespace-separated words before it (a
  phrase, an age padded with any amount of whitespace, 'sleep with' and its object);
- right after whitespace, so a word disguised inside itself (zero-width characters, accents,
  stretched letters, leetspeak) leaves whole or not at all;
- before any trailing run of one-letter tokens, which may be a word being spelt out ('s e x');
- at the start of a clause (after `;:?()[]`, a line break, or a sentence's period), so a clause
  the contact rule refuses as a whole ('a 12 year old girl, who ..., kissing an older man') leaves
  nothing before it is whole and judged; in a clause longer than `clause_words` words, at least
  that many words before the end (no rule reads further: contact.REACH).
The judged text stops at the last word boundary: a half-written word is judged once it is
whole ('kid' of 'kidney' is not a word yet).

Written here rather than taken from a library: it is a policy-specific release rule.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from shared.policy import normalize
from shared.policy.contact import CLAUSE_END, REACH

log = logging.getLogger("chat.stream")

# A number, its unit, 'of age' and the word it describes ('15 years of age girl'), a phrase of up to
# three words, or 'sleep with' and the words after it read for its object's age (policy._OBJECT_WORDS,
# 8, plus 3), cannot span more whitespace-separated tokens than this.
HOLDBACK_WORDS = 11
# In a clause longer than this, text is released up to this many words before the end: no rule reads
# further back within a clause (the contact rule's reach: minor side, verb, partner side).
CLAUSE_WORDS = REACH

_TOKEN = re.compile(r"\S+")


def _wordish(char: str) -> bool:
    # Marks and format characters (Mn/Me/Cf, zero-width joiners included) are dropped by the
    # policy's normalisation, so they are part of the word around them, never a boundary.
    return char.isalnum() or normalize.invisible(char)


class StreamGuard:
    """Feed it the engine's deltas; it returns what may be sent now (possibly "")."""

    def __init__(
        self,
        judge: Callable[[list[str]], object],
        holdback_chars: int,
        holdback_words: int = HOLDBACK_WORDS,
        clause_words: int = CLAUSE_WORDS,
    ) -> None:
        self._judge = judge  # judges the reply so far, given in pieces; raises PolicyViolation to stop
        self._chars, self._words, self._clause = holdback_chars, holdback_words, clause_words
        self.text = ""  # everything the engine produced so far
        self.released = ""  # what has been sent
        self._sent = 0  # index into `text` where the unsent part starts
        self._judged = 0  # length of the prefix of `text` judged last
        self._sealed: list[str] = []  # judged pieces of the reply, see _seal
        self._tail = 0  # where the piece after them starts
        self.checks = 0

    def feed(self, delta: str) -> str:
        self.text += delta
        if not self.released:  # the reply is sent stripped, as the engine's final text is
            self._sent = len(self.text) - len(self.text.lstrip())
        end = self._word_end()
        if end <= self._judged:
            return ""
        self._judge([*self._sealed, self.text[self._tail : end]])
        self.checks += 1
        self._judged = end
        cut = self._safe_end(end)
        if cut <= self._sent:
            return ""
        self._seal(end, cut)
        out = self.text[self._sent : cut]
        self.released += out
        self._sent = cut
        return out

    def finish(self, final: str) -> str:
        """The held-back tail of the engine's final text, once the final check has passed it."""
        if final.startswith(self.released):
            return final[len(self.released) :]
        log.warning("final text does not continue the streamed deltas; tail not sent")
        return ""

    def _seal(self, end: int, cut: int) -> None:
        """Keep a check's cost flat as the reply grows: a judged piece is kept as it is (the policy
        caches what it found per text) and the next piece starts at `cut`, so it overlaps the last
        one by the hold-back window. No term reaches back across `cut` (that is why it may be sent),
        so every match lies whole inside one piece."""
        if end - self._tail >= 3 * self._chars:
            self._sealed.append(self.text[self._tail : end])
            self._tail = cut

    def _word_end(self) -> int:
        """Length of `text` up to its last word boundary."""
        end = len(self.text)
        while end > self._judged and _wordish(self.text[end - 1]):
            end -= 1
        return end

    def _safe_end(self, end: int) -> int:
        """The furthest token start (so: right after whitespace) that may be sent now."""
        starts = [m.start() for m in _TOKEN.finditer(self.text, self._sent, end)]
        if len(starts) <= self._words:
            return self._sent
        i = bisect.bisect_right(starts, min(end - self._chars, starts[-self._words])) - 1
        while i > 0 and sum(c.isalnum() for c in self.text[starts[i - 1] : starts[i]]) <= 1:
            i -= 1  # a one-letter token may be a word being spelt out: keep it back
        while i > 0 and len(starts) - i < self._clause and not CLAUSE_END.search(self.text, starts[i - 1], starts[i]):
            i -= 1  # inside a clause: keep all of it back (up to the words a rule can read across)
        return starts[i] if i > 0 else self._sent


async def close_stream(stream: AsyncIterator[Any]) -> None:
    """Close an engine's (or a layer's) async generator now, so the work behind it stops at once."""
    if isinstance(stream, AsyncGenerator):
        await stream.aclose()
