"""Turns a text into a Scan: every reading, idioms taken out, split and glued words mended.

Compound splitting and the joining of split words are hand-written (a word-break over
the policy's own vocabulary): no kept library splits into a custom list this cheaply.
"""

from __future__ import annotations

from functools import lru_cache

from shared.policy import normalize
from shared.policy.lexicon import Scan, fold

_MIN_PIECE = 3  # shorter pieces make too many accidental compounds ('cum|in')
_MAX_JOIN_PIECE = 4  # split words are short fragments: 'na ked', 'sch ool girl'


class Reader:
    def __init__(self, exemptions: list[str], core: frozenset[str], fillers: frozenset[str]) -> None:
        # Exempt phrases (idioms, non-sexual senses) are cut out of a reading before matching.
        self.exemptions = tuple(sorted({" ".join(fold(e)) for e in exemptions if fold(e)}, key=len, reverse=True))
        self.core = core  # listed minor/sexual single words
        self.vocab = core | fillers
        self.split = lru_cache(maxsize=8192)(self._split)

    def scan(self, raw: str, readings: list[str] | None = None) -> Scan:
        readings = normalize.readings(raw) if readings is None else readings
        lists: list[tuple[str, ...]] = []
        for reading in readings:
            tokens = self._unexempt([normalize.singular(w) for w in normalize.words(reading)])
            if tokens not in lists:
                lists.append(tokens)
            mended = self._mended(tokens, reading)
            if mended and mended not in lists:
                lists.append(mended)
        return Scan(normalize.base(raw), tuple(lists))

    def _unexempt(self, tokens: list[str]) -> tuple[str, ...]:
        if not self.exemptions:
            return tuple(tokens)
        joined = f" {' '.join(tokens)} "
        for phrase in self.exemptions:
            if f" {phrase} " in joined:
                joined = joined.replace(f" {phrase} ", " | ")
        return tuple(t for t in joined.split() if t != "|") if "|" in joined else tuple(tokens)

    def _mended(self, tokens: tuple[str, ...], reading: str) -> tuple[str, ...]:
        """Words glued together split apart, words split apart joined, spaced letters joined."""
        out: list[str] = []
        short = [len(t) <= _MAX_JOIN_PIECE for t in tokens] + [False, False]
        for i, token in enumerate(tokens):
            if len(token) >= 2 * _MIN_PIECE and token not in self.vocab:
                out.extend(self.split(token) or ())
            if short[i] and short[i + 1]:
                for width in (2, 3) if short[i + 2] else (2,):
                    glued = normalize.singular("".join(tokens[i : i + width]))
                    if glued in self.core and len(glued) >= 4:
                        out.append(glued)
        for run in normalize.spaced_runs(reading):
            run = normalize.singular(run)
            out.extend([run] if run in self.core else self.split(run) or ())
        return tuple(out)

    def _split(self, token: str) -> tuple[str, ...] | None:
        """`token` as a run of vocabulary words with at least one listed term, or None."""
        best: dict[int, tuple[str, ...]] = {0: ()}
        for start in range(len(token)):
            if start not in best:
                continue
            for end in range(start + _MIN_PIECE, len(token) + 1):
                piece = normalize.singular(token[start:end])
                if piece in self.vocab and end not in best:
                    best[end] = (*best[start], piece)
        pieces = best.get(len(token))
        if pieces and len(pieces) > 1 and any(p in self.core for p in pieces):
            return pieces
        return None
