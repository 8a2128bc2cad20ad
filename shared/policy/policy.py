"""The content policy: adult-request detection and the always-on block on sexual content
involving minors. No setting turns the block off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.errors import PolicyViolation
from shared.policy.lexicon import Lexicon, TextView, read_list, read_thresholds

log = logging.getLogger("policy")

REFUSAL = "This request can't be processed: it conflicts with the content policy."

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven "
        "twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_AGE_UNITS = {"yo", "yr", "yrs", "year", "years", "yearold", "y"}
_AGE_GLUED = re.compile(r"^(\d{1,2})(?:yo|yr|yrs|y|yearold|yearsold)$")
_ORDINAL = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)$")
_ORDINAL_WORDS = {
    w: i
    for i, w in enumerate(
        "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()
    )
}
_GRADE = {"grade", "grader"}
_UNIT_TAIL = {"old", "yo", "o", "of", "age"}  # words that can follow the number before the described noun


@dataclass(frozen=True)
class Assessment:
    minor: bool  # a person under 18 is named or implied
    protected: bool  # a protected real person is named
    sexual: bool
    adult_trigger: bool
    adult_indicators: tuple[str, ...]
    adult_detected: bool

    @property
    def blocked(self) -> bool:
        return (self.minor or self.protected) and self.sexual


class ContentPolicy:
    def __init__(self, adult_enabled: bool, extra_dir: Path | None = None) -> None:
        self.adult_enabled = adult_enabled
        thresholds = read_thresholds(extra_dir)
        self.indicator_threshold = int(thresholds["adult_indicator_threshold"])
        self.history_window = int(thresholds["history_window_turns"])
        self.adult_age = int(thresholds["adult_age"])
        self.minor_terms = Lexicon.of(read_list("minor_terms.txt", extra_dir))
        self.sexual_terms = Lexicon.of(read_list("sexual_terms.txt", extra_dir))
        self.protected = Lexicon.of(read_list("protected_people.txt", extra_dir))
        self.triggers = Lexicon.of(read_list("adult_triggers.txt", extra_dir))
        self.indicators = Lexicon.of(read_list("adult_indicators.txt", extra_dir))
        self.age_lowering = Lexicon.of(read_list("age_lowering_terms.txt", extra_dir))
        self.adult_subjects = Lexicon.of(read_list("adult_subjects.txt", extra_dir))
        self.age_exempt = Lexicon.of(read_list("age_exempt_nouns.txt", extra_dir)).singles
        self.holdback_chars = self._holdback(extra_dir)

    @staticmethod
    def _holdback(extra_dir: Path | None) -> int:
        """Trailing characters of a streamed reply that could still complete a refused term: the longest
        listed term spelt out with separators ('c h i l d'), plus room for an age ('seventeen years old')."""
        names = ("minor_terms.txt", "sexual_terms.txt", "protected_people.txt")
        longest = max((len(t) for name in names for t in read_list(name, extra_dir)), default=0)
        return max(2 * longest, len("seventeen years of age")) + 8

    def assess(self, texts: Sequence[str]) -> Assessment:
        """Judge the texts together: hints spread over a conversation count."""
        views = [TextView.of(t) for t in texts if t]
        minor = any(self.minor_terms.find(v, disguised=True) or self._minor_age(v) for v in views)
        indicators = sorted(set().union(*(self.indicators.find(v) for v in views))) if views else []
        trigger = any(self.triggers.find(v) for v in views)
        return Assessment(
            minor=minor,
            protected=any(self.protected.find(v, disguised=True) for v in views),
            sexual=any(self.sexual_terms.find(v, disguised=True) for v in views),
            adult_trigger=trigger,
            adult_indicators=tuple(indicators),
            adult_detected=trigger or len(indicators) >= self.indicator_threshold,
        )

    def enforce(self, texts: Sequence[str], action: str, stage: str = "input") -> Assessment:
        """Assess and refuse when the line is crossed; logs the event, never the text."""
        found = self.assess(texts)
        if found.blocked:
            log.warning(
                "content policy refusal: action=%s stage=%s minor=%s protected=%s",
                action,
                stage,
                found.minor,
                found.protected,
            )
            raise PolicyViolation(REFUSAL)
        return found

    def _minor_age(self, view: TextView) -> bool:
        """An explicit age under 18 ('15 yo', '15yo', 'fifteen-year-old', 'age 12', '12 years of age')
        or a school grade up to 12th ('8th grade', 'eighth grader'); not '3 year old cat'."""
        w = view.words
        for i, word in enumerate(w):
            grade = _ORDINAL.match(word)
            level = int(grade.group(1)) if grade else _ORDINAL_WORDS.get(word)
            if level is not None and level <= 12 and w[i + 1 : i + 2] and w[i + 1] in _GRADE:
                return True
            glued = _AGE_GLUED.match(word)
            age = int(glued.group(1)) if glued else _number(word)
            if age is None or age >= self.adult_age:
                continue
            after = w[i + 1 : i + 5]
            described = next((x for x in after if x not in _AGE_UNITS and x not in _UNIT_TAIL), None)
            if described in self.age_exempt:
                continue  # the age describes a thing or an animal, not a person
            if glued or (after and after[0] in _AGE_UNITS):
                return True
            if after[:3] == ["year", "of", "age"] or (i > 0 and w[i - 1] in {"age", "aged"}):
                return True
        return False

    # ---- enhancement helpers -----------------------------------------------
    def added_age_lowering(self, original: str, produced: str) -> set[str]:
        """Age-lowering words in `produced` that the caller did not write."""
        return self.age_lowering.find(TextView.of(produced)) - self.age_lowering.find(TextView.of(original))

    def adult_subjects_in(self, text: str) -> set[str]:
        return self.adult_subjects.find(TextView.of(text))


def _number(word: str) -> int | None:
    if word.isdigit() and len(word) <= 2:
        return int(word)
    return _NUMBER_WORDS.get(word)
