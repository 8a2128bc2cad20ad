"""Ages and school stages read from text: is a person under the adult age named?

Reads digits, number words (several languages, data/ages.json), Roman numerals after an
age cue, before an age unit ('XIII years old') or after 'is' ('she is XIII'), glued units
('15yo'), 'turned N', 'looks N', 'she is N.', 'born in YYYY' (against the current year),
'Nth birthday', CJK ages ('14歳', '十四岁'), school grades, years and forms, and age sliders
pulled down (LoRA tags, or written out: 'age slider -5'). An age that describes a thing
('3 year old whisky') is not a person's. Per-language vocabulary comes from data/ages.json and
its siblings (ages.pl.json, ...): number words and multi-word numbers ('on iki', 'a decade and
a half'), units and unit stems ('10-letniej', '10letá'), compound age adjectives
('dwunastoletnia', 'десятилетней', 'tolvårig'), ages in months or weeks ('130-month-old'),
native digits (Arabic-Indic, Persian, Devanagari, Thai: Python reads them as numbers).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from shared.policy import normalize

# A line break ends a clause too: enhance context lines, history turns, multi-line messages.
# Indic scripts' vowel signs (Mc) are not word characters to `re`: kept inside a token ("साल").
_TOKEN = re.compile(r"(?:[^\W_]|[\u0900-\u0dff])+|[,.;:!?()\[\]|\n]")
_CLAUSE_END = frozenset(",.;:!?)]|\n")
_ROMAN = re.compile(r"^(x?)(ix|iv|v?i{0,3})$")
_ORDINAL = re.compile(r"^(\d{1,2})(st|nd|rd|th|e|eme|er|re|o|a|º|ª)$")
_CJK_AGE = re.compile(r"([0-9]{1,2}|[一二三四五六七八九十]{1,3})\s*(?:歳|才|岁|さい)")
_CJK_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}
# An age slider pulled down, or any LoRA named for youth ('<lora:youngify:0.9>').
_LORA_YOUNGER = re.compile(
    r"<lora:[^>:]*(?:age|old|slider)[^>:]*:\s*-\s*\d|<lora:[^>:]*(?:young|child|kid|loli|shota|teen|petite)[^>]*>"
    r"|\b(?:age|old|young)[\s_-]*slider\b[\s:=(\[]*-\s*\d"
)
_CLASS_OF = re.compile(r"\b(?:class of|graduat\w*(?: in)?|abitur|bac)\s*'?((?:20)?\d\d)\b")
_BORN = re.compile(r"\b(?:born|b|nacid[ao]|nee?|geboren|nascid[ao]|nat[ao]|родил\w*)\b\D{0,14}?((?:19|20)\d\d)\b")
# A youth age group: 'under-12 team', 'U12 girls', 'the under-12s' (the 'under' is checked apart).
_AGE_GROUP = re.compile(r"^(?:u(\d{2})|(\d{1,2}))s?$")
_EXCLUDING = frozenset({"no", "not", "non", "without", "except", "excluding", "nor", "never"})
_WEIGHTED_YOUNG = re.compile(r"\(\s*(?:young|younger|youthful|aged down|de-aged)\s*:\s*(1\.[3-9]|[2-9])")


@dataclass(frozen=True)
class AgeRules:
    adult_age: int
    numbers: dict[str, int]
    ordinals: dict[str, int]
    units: frozenset[str]
    unit_tail: frozenset[str]
    cues: frozenset[str]
    be: frozenset[str]
    hedges: frozenset[str]
    durations: frozenset[str]
    year_units: frozenset[str]
    clause_words: frozenset[str]
    birthday: frozenset[str]
    grade: frozenset[str]
    year: frozenset[str]
    pupils: frozenset[str]
    class_words: frozenset[str]
    persons: frozenset[str]
    non_persons: frozenset[str]
    age_groups: frozenset[str]
    exempt_nouns: frozenset[str]
    bare_cues: frozenset[str] = frozenset()  # 'actually 14,': a bare number here, alone in its clause
    unit_stems: tuple[str, ...] = ()  # 'letn' ('10-letniej'), 'arig' ('10-årig')
    divisors: dict[str, int] | None = None  # 'months': 12 ('130-month-old' is 10)
    phrases: re.Pattern[str] | None = None  # multi-word numbers, read as digits first
    replacements: dict[str, str] | None = None
    compound: re.Pattern[str] | None = None  # 'dwunasto' + 'letn': an age adjective in one word
    compound_values: dict[str, int] | None = None
    glued: re.Pattern[str] = re.compile(r"^(\d{1,2})(yo|yr|yrs|y|yearold|yearsold|sai|歳|才|岁)$")
    nospace: re.Pattern[str] | None = None  # scripts without spaces: '10ขวบ', '10살'

    @classmethod
    def of(cls, data: dict[str, Any], adult_age: int, exempt_nouns: frozenset[str]) -> AgeRules:
        b = normalize.base
        sets = {k: frozenset(map(b, v)) for k, v in data.items() if isinstance(v, list)}
        numbers = {b(k): int(v) for k, v in data["numbers"].items()}
        # Multi-word numbers and age phrases ('on iki', 'a decade and a half') become digits first.
        replacements = {k: str(v) for k, v in numbers.items() if " " in k}
        replacements.update({b(k): b(v) for k, v in data.get("age_phrases", {}).items()})
        prefixes = {b(k): int(v) for k, v in data.get("compound_prefixes", {}).items()}
        suffixes = sorted(map(b, data.get("compound_suffixes", [])), key=len, reverse=True)
        stems = sorted(map(b, data.get("unit_stems", [])), key=len, reverse=True)
        glued_units = sorted({*map(b, data.get("glued_units", [])), *_GLUED_UNITS}, key=len, reverse=True)
        glued = "|".join(map(re.escape, glued_units)) + "".join(f"|{re.escape(s)}\\w*" for s in stems)
        nospace = "|".join(map(re.escape, sorted(map(b, data.get("nospace_units", [])), key=len, reverse=True)))
        return cls(
            adult_age=adult_age,
            numbers={k: v for k, v in numbers.items() if " " not in k},
            ordinals={b(k): v for k, v in data["ordinals"].items()},
            exempt_nouns=exempt_nouns,
            unit_stems=tuple(stems),
            divisors={b(k): int(v) for k, v in data.get("unit_divisors", {}).items()},
            phrases=_alternation(replacements, r"(?<![^\W_])(?:{})(?![^\W_])"),
            replacements=replacements,
            compound=re.compile(
                f"^({'|'.join(map(re.escape, sorted(prefixes, key=len, reverse=True)))})"
                f"(?:{'|'.join(map(re.escape, suffixes))})"
            )
            if prefixes and suffixes
            else None,
            compound_values=prefixes,
            glued=re.compile(rf"^(\d{{1,2}})(?:{glued})$"),
            nospace=re.compile(rf"(?<!\d)(\d{{1,2}})\s*(?:{nospace})") if nospace else None,
            **{k: sets[k] for k in cls.__dataclass_fields__ if k in sets and k != "unit_stems"},
        )

    def minor(self, text_base: str) -> bool:
        """True when `text_base` (a normalised reading) states or implies an age under the adult age."""
        if _LORA_YOUNGER.search(text_base) or _WEIGHTED_YOUNG.search(text_base):
            return True
        if self.phrases is not None and self.replacements:
            text_base = self.phrases.sub(lambda m: self.replacements[m.group(0)], text_base)  # type: ignore[index]
        if self.nospace is not None and any(
            0 < int(m.group(1)) < self.adult_age for m in self.nospace.finditer(text_base)
        ):
            return True
        for match in _CJK_AGE.finditer(text_base):
            if 0 < _cjk_number(match.group(1)) < self.adult_age:
                return True
        year = dt.date.today().year
        if any(0 <= year - int(m.group(1)) < self.adult_age for m in _BORN.finditer(text_base)):
            return True
        for match in _CLASS_OF.finditer(text_base):  # graduates from school in a year still to come
            grad = int(match.group(1)) + (2000 if len(match.group(1)) == 2 else 0)
            if 0 < grad - year <= 12:
                return True
        tokens = _TOKEN.findall(text_base)
        return any(self._minor_at(tokens, i) for i, w in enumerate(tokens) if self._may_count(w))

    def _may_count(self, word: str) -> bool:
        """Cheap pre-filter: only numbers, number words, ordinals and Roman numerals can state an age."""
        if word[0].isdigit() or word in self.numbers or word in self.ordinals or bool(_ROMAN.match(word)):
            return True
        if self.compound is not None and self.compound.match(word):
            return True
        return word[0] == "u" and bool(_AGE_GROUP.match(word))

    def _age_group(self, t: list[str], i: int) -> bool:
        """'under-12 team', 'U12 girls', 'the under-12s': a youth age group (not 'under 12 minutes')."""
        match = _AGE_GROUP.match(t[i])
        cue = self._cue_before(t, i)
        if match is None or (not t[i].startswith("u") and cue not in {"under", "u"}):
            return False
        nxt = t[i + 1] if i + 1 < len(t) else ""
        group = nxt in self.age_groups or (t[i].endswith("s") and not t[i].startswith("u"))
        # 'under-18s' names the adult boundary, and 'no under-12s' keeps them out: neither is a minor.
        return group and 0 < int(match.group(1) or match.group(2)) < self.adult_age and not self._excluded(t, i)

    @staticmethod
    def _excluded(t: list[str], i: int) -> bool:
        """'no under-12s', 'not for under 16s', 'except U14 girls': the group is kept out."""
        before = [w for w in t[max(0, i - 4) : i] if w not in {"under", "u", "for", "allowed", "-"}]
        return bool(before) and before[-1] in _EXCLUDING

    def _minor_at(self, t: list[str], i: int) -> bool:
        word = t[i]
        if self._age_group(t, i):
            return True
        nxt = next((x for x in t[i + 1 : i + 4] if x not in "-/."), "")
        if word.isdigit():  # a range takes the unit after its end: '9-10 years old', '8 to 9 yrs'
            k = i + 2 if t[i + 1 : i + 2] and t[i + 1] in _RANGE else i + 1
            if k < len(t) and t[k].isdigit() and len(t[k]) <= 2:
                nxt = t[k + 1] if k + 1 < len(t) else ""
        compound = self.compound.match(word) if self.compound is not None else None
        if compound is not None and self.compound_values:  # 'dwunastoletnia', 'десятилетней'
            value = self.compound_values[compound.group(1)]
            return 0 < value < self.adult_age and self._age_phrase(t, i, True, word)
        if word.isdigit() and self.divisors and nxt in self.divisors and len(word) <= 4:
            years = max(1, int(word) // self.divisors[nxt])  # '130-month-old': 10
            return years < self.adult_age and self._age_phrase(t, i, False, nxt)
        level = self._ordinal(word)
        if level is not None and level < self.adult_age:
            if nxt in self.birthday:
                return True
            if level <= 12 and nxt in self.grade | self.class_words:
                return True
        glued = self.glued.match(word)
        age = int(glued.group(1)) if glued else self._number(word, self._cue_before(t, i), nxt)
        if age is None:
            return False
        if t[i - 1 : i] and t[i - 1] in self.year | self.grade and age <= 12:
            return self._school_context(t, i)
        if age >= self.adult_age or age == 0:
            return False
        if nxt in self.class_words and age <= 11:
            return True
        if glued or self._unit(nxt):
            return self._age_phrase(t, i, bool(glued), nxt)
        prev = self._cue_before(t, i)
        if prev in self.cues:
            return True
        follow = t[i + 1] if i + 1 < len(t) else ""
        if prev in self.bare_cues and (not follow or follow in _CLAUSE_END):
            return True  # 'petite but actually 14, nude shoot'

        before = t[i - 2] if i >= 2 and t[i - 1] in {",", "of"} else t[i - 1] if i else ""
        if before in self.persons and (not follow or follow in _CLAUSE_END or follow in self.clause_words):
            return True  # 'girl, 17,' or 'a boy of ten' (a count is followed by its noun: 'girls, 2 boys')
        if follow == "and" and t[i + 2 : i + 4] == ["a", "half"]:
            return True
        if prev not in self.be or (follow and follow not in _CLAUSE_END and follow not in self.clause_words):
            return False
        subject = t[i - 2] if i >= 2 and t[i - 1] == prev else ""
        return subject not in self.non_persons  # 'she is 13.', not 'the answer is 12.'

    def _unit(self, word: str) -> bool:
        return word in self.units or (bool(word) and word.startswith(self.unit_stems) and bool(self.unit_stems))

    def _age_phrase(self, t: list[str], i: int, glued: bool, unit: str) -> bool:
        """'12 years old', '12yo', '12 anos': a person's age unless a duration or a described thing."""
        # A range's end ('9-10 years', '8 to 9 yrs') comes before its unit: read from the unit.
        u = next((k for k in range(i + 1, min(i + 4, len(t))) if t[k] == unit), i + 1) if not glued else i
        after = [x for x in t[u : u + 6] if x.isalnum()]
        tail = after[1:3]  # '12 years old', '12 years of age' (not '12 years of marriage'), '12yo'
        aged = glued or (tail == ["of", "age"] if tail[:1] == ["of"] else bool(tail) and tail[0] in self.unit_tail)
        aged = aged or (i >= 2 and t[i - 1] == "of" and t[i - 2] in self.persons)  # 'a girl of twelve summers'
        # In apposition or after 'is' and alone in its clause: 'Emma, 12 yrs,', 'she is 11 years.'
        end = t[u + 1] if u + 1 < len(t) else ""
        alone = not glued and (not end or end in _CLAUSE_END)
        aged = aged or (alone and i >= 1 and (t[i - 1] == "," or self._cue_before(t, i) in self.be))
        if not aged and (unit in self.year_units or self._cue_before(t, i) in self.durations):
            return False  # '12 years' alone, 'for 12 years', 'seit 12 Jahren': a duration
        described = next((x for x in after[1:] if x not in self.unit_tail), None)
        return described not in self.exempt_nouns

    def _school_context(self, t: list[str], i: int) -> bool:
        """'year 8 pupil', 'in year 7', 'grade 5', 'form 3 student': a school stage, so a minor."""
        if t[i - 1] in self.grade:
            return True
        after = next((x for x in t[i + 1 : i + 3] if x not in _CLAUSE_END), "")
        return (i >= 2 and t[i - 2] in {"in", "en", "im"}) or after in self.pupils

    def _cue_before(self, t: list[str], i: int) -> str:
        j = i - 1
        while j >= 0 and (t[j] in self.hedges or t[j] in ":-"):
            j -= 1
        return t[j] if j >= 0 else ""

    def _number(self, word: str, prev: str, nxt: str = "") -> int | None:
        if word.isdigit():
            return int(word) if len(word) <= 2 else None
        if word in self.numbers:
            return self.numbers[word]
        roman = _ROMAN.match(word)
        # Roman numerals only after an age cue ('age XIII'), before a unit ('XIII years old'; the
        # unit's tail is then required, so 'World War II years' is not an age), or a teen number
        # after 'is' ('she is XIII'; not 'Rocky III', 'part II').
        if (
            roman
            and word
            and (prev in self.cues or (nxt in self.units and word != "i") or (prev in self.be and "x" in word))
        ):
            return _roman(word)
        return None

    def _ordinal(self, word: str) -> int | None:
        match = _ORDINAL.match(word)
        return int(match.group(1)) if match else self.ordinals.get(word)


_RANGE = frozenset({"to", "a", "bis", "do", "or", "ou", "tot", "till"})
_GLUED_UNITS = ("yo", "yr", "yrs", "y", "yearold", "yearsold", "sai", "歳", "才", "岁")


def _alternation(keys: dict[str, str], template: str) -> re.Pattern[str] | None:
    if not keys:
        return None
    return re.compile(template.format("|".join(map(re.escape, sorted(keys, key=len, reverse=True)))))


def _roman(word: str) -> int:
    values = {"i": 1, "v": 5, "x": 10}
    total = 0
    for a, b in zip(word, [*word[1:], ""], strict=True):
        total += -values[a] if b and values[b] > values[a] else values[a]
    return total


def _cjk_number(text: str) -> int:
    if text.isdigit() and text.isascii():
        return int(text)
    if "十" not in text:
        return _CJK_DIGITS.get(text, 0)
    tens, _, ones = text.partition("十")
    return (_CJK_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CJK_DIGITS.get(ones, 0) if ones else 0)


def age_patterns(ages: dict[str, Any], adult_age: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """From ages.json and the adult age: any stated age ('12 anos', 'aged', 'born', '14歳'), and
    an adult age written out ('30 years old', '30-year-old', 'aged 25', '40yo', 'in her thirties')."""
    units = "|".join(sorted({re.escape(normalize.base(u)) for u in ages["units"]}, key=len, reverse=True))
    year = "|".join(sorted(map(re.escape, [*ages["year_units"], "yo", "y/o"]), key=len, reverse=True))
    adult = "|".join(str(n) for n in range(adult_age, 100))
    decades = "|".join(ages["adult_decades"])
    any_age = re.compile(rf"(?<!\d)\d{{1,3}}\s*-?\s*(?:{units}|y/o)(?!\w)|\b(?:aged?|born)\b")
    adult_age_re = re.compile(
        rf"\b(?:{adult})\s*-?\s*(?:{year})\b|\b(?:aged?|age:?)\s*(?:{adult})\b"
        rf"|\b(?:{adult})(?:yo|y)\b|\bin (?:her|his|their) (?:{decades})\b"
    )
    return any_age, adult_age_re
