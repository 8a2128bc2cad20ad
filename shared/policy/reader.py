"""Turns a text into a Scan: every reading, idioms taken out, split and glued words mended.

Compound splitting and the joining of split words are hand-written (a word-break over
the policy's own vocabulary): no kept library splits into a custom list this cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from shared.policy import normalize
from shared.policy.lexicon import CJK, Scan, fold

_MIN_PIECE = 3  # shorter pieces make too many accidental compounds ('cum|in')
_MAX_JOIN_PIECE = 4  # split words are short fragments: 'na ked', 'sch ool girl'
_MAX_JOIN_WORDS = 4  # a word split into up to this many fragments: 'scho ol gi rl'
# A spaced run takes in one-letter words beside it ('a c h i l d' reads 'achild', 'u t e e n'):
# up to this many letters may be left over at either end of a spaced run.
_END_SLACK = 2
# Longer runs and glued words are read in overlapping windows of this many letters (at least
# 4 longest words), each free to start and end inside a word: the work stays linear in length.
_WINDOW = 64


class Reader:
    def __init__(
        self,
        exemptions: list[str],
        core: frozenset[str],
        fillers: frozenset[str],
        activity: Sequence[str] = (),
        education: Sequence[str] = (),
        spellings: dict[str, str] | None = None,
        costumes: Sequence[str] = (),
        roles: Sequence[str] = (),
    ) -> None:
        # Exempt phrases (idioms, non-sexual senses) are cut out of a reading before matching;
        # `activity` senses ('sex ed', 'explicit about') are not cut out where a minor is named.
        self.exemptions = _phrases(exemptions)
        self.thing_exemptions = _phrases(set(exemptions) - set(activity))
        # Sex education stays a subject beside a minor unless a cue makes it an act.
        self.firm_exemptions = _phrases(set(exemptions) - set(activity) - set(education))
        # A costume ('schoolgirl costume') is cut out only where the text states an adult wearer.
        self.costumes = _phrases(costumes)
        # An adult's job named by a school word ('homeroom teacher'): cut where a minor term is found.
        self.roles = _phrases(roles)
        # Idioms in scripts matched without word boundaries ('소녀시대', a pop group) are cut from the base.
        self.cjk_exemptions = tuple(e for e in self.exemptions if CJK.search(e))
        self.spellings = spellings or {}  # text-speak words read as the word meant: 'yung' -> 'young'
        self.core = core  # listed minor/sexual single words
        self.vocab = core | fillers
        self.longest = max(map(len, self.vocab), default=_MIN_PIECE) + 1  # +1: a plural 's'
        self.window = max(_WINDOW, 4 * self.longest)
        self.split = lru_cache(maxsize=8192)(self._split)

    def scan(
        self,
        raw: str,
        readings: list[str] | None = None,
        exempt: bool = True,
        education: bool = True,
        costume: bool = False,
        roles: bool = False,
    ) -> Scan:
        """`exempt=False` keeps the activity senses in: what the text says when a minor is named;
        `education=False` keeps the sex-education senses in too (a cue made them an act);
        `costume=True` also cuts out costumes (the caller checked that an adult wears them);
        `roles=True` also cuts out adults' school jobs ('homeroom teacher')."""
        readings = normalize.readings(raw) if readings is None else readings
        lists: list[tuple[str, ...]] = []
        exempted = False
        cut = self._exemptions(exempt, education) + (self.costumes if costume else ()) + (self.roles if roles else ())
        for reading in readings:
            words = [self.spelled(normalize.singular(w)) for w in normalize.words(reading)]
            tokens = self._unexempt(words, cut)
            exempted = exempted or len(tokens) != len(words)
            if tokens not in lists:
                lists.append(tokens)
            mended = self._mended(tokens, reading)
            if mended and mended not in lists:
                lists.append(mended)
        base = normalize.base(raw)
        for idiom in self.cjk_exemptions:
            base = base.replace(idiom, " ")
        return Scan(base, tuple(lists), exempted)

    def spelled(self, word: str) -> str:
        """A text-speak word as the word meant ('gurl' -> 'girl')."""
        return self.spellings.get(word, word)

    def respelled(self, reading: str) -> str:
        """A reading with its text-speak words as the words meant: what the age rules read."""
        if not self.spellings:
            return reading
        return normalize.WORD.sub(lambda m: self.spellings.get(m.group(0), m.group(0)), reading)

    def _exemptions(self, exempt: bool, education: bool) -> tuple[str, ...]:
        if exempt:
            return self.exemptions
        return self.thing_exemptions if education else self.firm_exemptions

    def _unexempt(self, tokens: list[str], exemptions: tuple[str, ...]) -> tuple[str, ...]:
        if not exemptions:
            return tuple(tokens)
        joined = f" {' '.join(tokens)} "
        for phrase in exemptions:
            if f" {phrase} " in joined:
                joined = joined.replace(f" {phrase} ", " | ")
        return tuple(t for t in joined.split() if t != "|") if "|" in joined else tuple(tokens)

    def _mended(self, tokens: tuple[str, ...], reading: str) -> tuple[str, ...]:
        """Words glued together split apart, words split apart joined, spaced letters joined."""
        out: list[str] = []
        short = [len(t) <= _MAX_JOIN_PIECE for t in tokens] + [False] * _MAX_JOIN_WORDS
        for i, token in enumerate(tokens):
            if len(token) >= 2 * _MIN_PIECE and token not in self.vocab:
                out.extend(self._read_run(token, 0, 2))
            width = 1
            while width < _MAX_JOIN_WORDS and short[i + width - 1] and short[i + width]:
                width += 1  # 'na ked', 'sch ool girl', 'scho ol gi rl'
                glued = normalize.singular("".join(tokens[i : i + width]))
                if glued in self.core and len(glued) >= 4:
                    out.append(glued)
        for run in normalize.spaced_runs(reading):
            out.extend(self._read_run(run, _END_SLACK, 1))
        return tuple(dict.fromkeys(out))

    def _read_run(self, run: str, slack: int, min_pieces: int) -> tuple[str, ...]:
        """The listed words a glued word or spaced run spells; a long one window by window."""
        if len(run) <= self.window:
            return self.split(run, slack, min_pieces) or ()
        step = self.window // 2
        found: dict[str, None] = {}
        for start in range(0, len(run) - step, step):
            found.update(dict.fromkeys(self.split(run[start : start + self.window], self.longest, 1) or ()))
        return tuple(found)

    def _split(self, token: str, slack: int, min_pieces: int) -> tuple[str, ...] | None:
        """`token` as a run of vocabulary words with at least one listed term, or None. Up to
        `slack` letters may be left over at either end. Word-break with back-pointers and pieces
        no longer than the longest vocabulary word: O(len × longest)."""
        n = len(token)
        back: dict[int, tuple[int, str] | None] = dict.fromkeys(range(min(slack, n) + 1))
        for start in range(n):
            if start not in back:
                continue
            for end in range(start + _MIN_PIECE, min(n, start + self.longest) + 1):
                if end not in back:
                    piece = normalize.singular(token[start:end])
                    if piece in self.vocab:
                        back[end] = (start, piece)
        for end in range(n, max(n - slack, 0) - 1, -1):
            pieces: list[str] = []
            step = back.get(end)
            while step is not None:
                pieces.append(step[1])
                step = back[step[0]]
            if len(pieces) >= min_pieces and any(p in self.core for p in pieces):
                return tuple(reversed(pieces))
        return None


def _phrases(terms: Iterable[str]) -> tuple[str, ...]:
    """Folded phrases, longest first (a longer idiom is cut before a shorter one inside it)."""
    return tuple(sorted({" ".join(fold(e)) for e in terms if fold(e)}, key=len, reverse=True))
