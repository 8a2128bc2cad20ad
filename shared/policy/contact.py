"""Contact with an age-gap partner: "a 12yo girl kissing an older man" is sexual content
involving a minor although no word in it is sexual.

Read one clause at a time: a contact verb (contact_verbs.txt), a partner on one side of it
(age_gap_partners.txt, an adult word, or an adult age: "a 40 year old man") and a minor on
the other side, in the same clause. Never from a minor in another clause or turn ("my son
turned 7" then "she ends up kissing an older man"); never with the speaker's family as the
object ("a grown man kissing his 6 year old daughter goodbye").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from shared.policy import normalize
from shared.policy.lexicon import Lexicon, Scan

# A clause ends at punctuation; a period only before a space, and not after a one-letter
# word ('15 y.o. girl' stays one clause). Not at a comma: an age in apposition ('a girl, 12,
# kissing an older man') belongs to the clause; conjunctions bound a side instead (_side).
_CLAUSE = re.compile(r"[;:!?()\[\]|\n]|(?<!\b\w)\.(?=\s|$)")
# Where every reading of a text keeps a clause end ('!' and '|' are letters to the leetspeak reading):
# the stream guard releases a reply only up to such a point, or REACH words back (stream_guard.py).
CLAUSE_END = re.compile(r"[;:?()\[\]\n]|(?<!\b\w)\.(?=\s|$)")
_CONJUNCTIONS = frozenset({"and", "but", "while", "then", "because", "so", "until"})
_POSSESSIVE = frozenset({"my", "our", "your", "his", "her", "their"})
_PREPOSITIONS = frozenset({"with", "on", "to", "at", "up"})
_SIDE_WORDS = 6  # how far from the verb its partner is read
_LONGEST_VERB = 3  # words in the longest contact phrase ('make out with')
_MINOR_WORDS = 40  # how far from the verb, within its clause, the minor is read
REACH = _MINOR_WORDS + _LONGEST_VERB + _SIDE_WORDS  # the most words one contact match spans


@dataclass(frozen=True)
class ContactRule:
    verbs: Lexicon
    partners: Lexicon
    adult_words: Lexicon
    adult_age: re.Pattern[str]
    family: frozenset[str]  # 'his daughter': the object is the speaker's or subject's family
    is_minor: Callable[[str], bool]  # a minor signal in a stretch of text

    def found(self, readings: list[str], spell: Callable[[str], str]) -> bool:
        for reading in readings:
            for clause in _CLAUSE.split(reading):
                words = [spell(normalize.singular(w)) for w in normalize.words(clause)]
                if any(self._at(words, i) for i in range(len(words))):
                    return True
        return False

    def _at(self, words: list[str], i: int) -> bool:
        end = self._verb_end(words, i)
        if end is None:
            return False
        before, after = _side(words[:i][::-1])[::-1], _side(words[end:])
        if self._family_object(after):
            return False
        if self._partner(after):
            return self.is_minor(" ".join(words[max(i - _MINOR_WORDS, 0) : i]))
        return self._partner(before) and self.is_minor(" ".join(words[end : end + _MINOR_WORDS]))

    def _verb_end(self, words: list[str], i: int) -> int | None:
        for width in range(_LONGEST_VERB, 0, -1):
            piece = " ".join(words[i : i + width])
            if i + width <= len(words) and (piece in self.verbs.phrases or piece in self.verbs.singles):
                return i + width
        return None

    def _family_object(self, after: list[str]) -> bool:
        """'kissing his 6 year old daughter', 'cuddle with my kids': family, not a partner."""
        words = after[1:] if after[:1] and after[0] in _PREPOSITIONS else after
        return bool(words) and words[0] in _POSSESSIVE and any(w in self.family for w in words[:5])

    def _partner(self, side: list[str]) -> bool:
        if not side:
            return False
        text = " ".join(side)
        scan = Scan(text, (tuple(side),))
        return bool(self.partners.find(scan) or self.adult_words.find(scan) or self.adult_age.search(text))


def _side(words: list[str]) -> list[str]:
    """The words next to the verb (nearest first) up to a conjunction: 'touching everything in
    shops and the older man' has no partner on the verb's side."""
    out: list[str] = []
    for word in words[:_SIDE_WORDS]:
        if word in _CONJUNCTIONS:
            break
        out.append(word)
    return out
