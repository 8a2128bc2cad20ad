"""Text normalisation for policy matching: the readings a disguised word cannot hide from.

Every text is read several ways and a term found in any reading counts:
- `base`: format characters (Unicode category Cf: zero-width, bidi controls, tag
  characters) and combining marks dropped, NFKC (full-width, mathematical and circled
  letters), case-folded, listed emoji read as words (data/emoji.txt: 👧 "little girl",
  🔞 "nsfw"). Keeps every script, so Cyrillic and CJK lists match here.
- `skeleton`: each non-ASCII letter replaced by its TR39 ASCII look-alike
  (confusable-homoglyphs), else by its one-letter transliteration (small capitals).
- `translit`: anyascii transliteration (Cyrillic/Greek to Latin, kana to romaji).
- `reversed`: text under a right-to-left override read the way it is displayed.
- `leet`: tokens mixing letters with digits or symbols read as letters, across the
  whole phrase, in both readings of '1' (i and l).
- stretched letters cut to two and to one ('liiiittle boyyyy' -> 'liittle boyy', 'little boy');
  letters spelled out with spaces joined in place ('age t w e l v e' -> 'age twelve').
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache, partial
from pathlib import Path

from anyascii import anyascii
from confusable_homoglyphs import confusables

_LEET_I = str.maketrans("013456789@$!|+€", "oieasgtbgasilte")
_LEET_L = str.maketrans("013456789@$!|+€", "oleasgtbgasilte")
_LEET_TOKEN = re.compile(r"[a-z0-9@$!|+€]+")
# Only tokens that mix letters with digits or symbols are read: 'k1d', '$exy' (not '12' or 'kid').
_MIXED = re.compile(r"[a-z][0-9@$!|+€]|[0-9@$!|+€][a-z]")
# Right-to-left override/embedding/isolate controls: what follows is displayed reversed.
_RTL = re.compile("[\u202e\u202b\u2067\u200f\u061c]")
_RTL_SEGMENT = re.compile("[\u202e\u202b\u2067]([^\u202c\u2069]*)")
_MARKS = frozenset({"Mn", "Me", "Cf"})
WORD = re.compile(r"[^\W_]+")
_RUNS = re.compile(r"(\w)\1+")
_LONG_RUNS = re.compile(r"(\w)\1{2,}")
# Letters spread out by separators: 'c.h.i.l.d', 'n a k e d'.
_SEP = r"[\s.\-_*·•,/\\~^'\"]+"
_SPACED = re.compile(rf"(?<![^\W_])(?:[^\W_]{_SEP}){{2,}}[^\W_](?![^\W_])")


_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")


def _emoji_words() -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """data/emoji.txt: an emoji (or a sequence) and the words it reads as."""
    table: dict[str, str] = {}
    path = Path(__file__).parent / "data" / "emoji.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and " " in line:
            emoji, words = line.split(None, 1)
            key = "".join(c for c in unicodedata.normalize("NFKD", emoji) if unicodedata.category(c) not in _MARKS)
            table[_SKIN_TONES.sub("", key)] = f" {words.strip()} "
    if not table:
        return None, table
    return re.compile("|".join(map(re.escape, sorted(table, key=len, reverse=True)))), table


_EMOJI, _EMOJI_WORDS = _emoji_words()


def invisible(char: str) -> bool:
    """A mark or format character: `base` drops it, so it never separates two words."""
    return unicodedata.category(char) in _MARKS


def base(text: str) -> str:
    if text.isascii():  # no format characters, marks or compatibility forms to remove
        return text.lower()
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) not in _MARKS)
    if _EMOJI is not None and max(text) >= "\u2600":
        text = _EMOJI.sub(lambda m: _EMOJI_WORDS[m.group(0)], _SKIN_TONES.sub("", text))
    return text


@lru_cache(maxsize=4096)
def _ascii_lookalike(char: str) -> str:
    for glyph in confusables.confusables_data.get(char, ()):
        if len(glyph["c"]) == 1 and glyph["c"].isascii() and glyph["c"].isalnum():
            return glyph["c"].lower()
    latin = anyascii(char).lower()
    return latin if len(latin) == 1 and latin.isalpha() else char


def skeleton(text_base: str, i_as_l: bool = False) -> str:
    """Each non-ASCII letter as its ASCII look-alike; `i_as_l` reads look-alikes of 'i' as 'l'
    (palochka, dotless i): the I/l ambiguity."""
    if text_base.isascii():
        return text_base
    look = (lambda c: _ascii_lookalike(c).replace("i", "l")) if i_as_l else _ascii_lookalike
    return "".join(c if c.isascii() or not c.isalpha() else look(c) for c in text_base)


def translit(text_base: str) -> str:
    return text_base if text_base.isascii() else anyascii(text_base).lower()


def displayed(raw: str) -> list[str]:
    """The reading a viewer sees where right-to-left controls reverse the text (or none)."""
    if not _RTL.search(raw):
        return []
    segments = _RTL_SEGMENT.sub(lambda m: m.group(1)[::-1], raw)
    return [segments, raw[::-1]]


def leet(text: str) -> list[str]:
    """The phrase with every letter/digit-mixed token read as letters; [] when nothing to read."""
    if not _MIXED.search(text):
        return []
    out = []
    for table in (_LEET_I, _LEET_L):
        read = _LEET_TOKEN.sub(partial(_read_leet, table=table), text)
        if read != text:
            out.append(read)
    return out


def _read_leet(match: re.Match[str], table: dict[int, int]) -> str:
    token = match.group(0)
    return token.translate(table) if _MIXED.search(token) else token


def unstretched(text: str) -> list[str]:
    """Runs of three or more of a letter cut to two ('teeeen' -> 'teen') and to one ('boyyyy' ->
    'boy', 'liiiittle' -> 'little'); [] when there are none."""
    if not _LONG_RUNS.search(text):
        return []
    return [_LONG_RUNS.sub(r"\1\1", text), _LONG_RUNS.sub(r"\1", text)]


def despaced(text: str) -> str | None:
    """Letters spelled out with spaces or dots joined in place ('age t w e l v e' -> 'age twelve',
    's.e.v.e.n y.e.a.r o.l.d' -> 'seven year old'): what the age rules read; None when none."""
    if not _SPACED.search(text):
        return None
    return _SPACED.sub(_join_spaced, text)


def _join_spaced(match: re.Match[str]) -> str:
    run = match.group(0)
    if re.search(r"[^\s]", re.sub(r"[^\W_]", "", run)):  # dotted letters: spaces still part words
        return " ".join(re.sub(_SEP, "", part) for part in run.split())
    return re.sub(_SEP, "", run)


def squeeze(word: str) -> str:
    """Every run of a repeated letter cut to one: the key for doubled-letter typos."""
    return _RUNS.sub(r"\1", word)


def words(text: str) -> list[str]:
    return WORD.findall(text)


def spaced_runs(text: str) -> list[str]:
    """Single characters separated by punctuation or spaces, joined ('c h i l d' -> 'child')."""
    return [re.sub(_SEP, "", m.group(0)) for m in _SPACED.finditer(text)]


def singular(word: str) -> str:
    """Crude plural folding for list matching ('kids' -> 'kid', 'nudes' -> 'nude')."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def readings(raw: str) -> list[str]:
    """Every distinct reading of `raw` that the word lists are matched against."""
    out: list[str] = []
    for text in [raw, *displayed(raw)]:
        b = base(text)
        for view in dict.fromkeys((b, skeleton(b), skeleton(b, i_as_l=True), translit(b))):
            for candidate in (view, *leet(view)):
                for v in (candidate, *unstretched(candidate)):
                    if v not in out:
                        out.append(v)
    joined = despaced(out[0]) if out else None
    if joined is not None and joined not in out:
        out.append(joined)
    return out
