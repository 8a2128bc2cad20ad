"""Text normalisation for policy matching: the views a disguised word cannot hide from.

- `base`: NFKC, case-folded, accents stripped, Unicode look-alikes mapped to Latin.
- `words`: the base view's alphanumeric words (word boundaries, so 'through' is not 'rough').
- `leet_words`: words with letters and digits, read as leetspeak ('k1d' -> 'kid').
- `spaced_runs`: letters spread out by separators ('c.h.i.l.d', 'c h i l d') joined back.
"""

from __future__ import annotations

import re
import unicodedata

# Cyrillic and Greek letters that render like Latin ones, plus a few symbol look-alikes.
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ӏ": "l",
        "ɡ": "g",
        "ℓ": "l",
        "ı": "i",
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "ς": "s",
        "ß": "ss",
        "æ": "ae",
        "ø": "o",
        "đ": "d",
        "ł": "l",
    }
)
_LEET_I = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
        "+": "t",
    }
)
_LEET_L = str.maketrans(
    {
        "0": "o",
        "1": "l",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
        "+": "t",
    }
)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)

_WORD = re.compile(r"[a-z0-9]+")
_LEET_WORD = re.compile(r"[a-z0-9@$!|+]+")
_SEP = r"[\s.\-_*·•,/\\~^'\"]+"
_SPACED = re.compile(rf"(?<![a-z0-9])(?:[a-z0-9@$!]{_SEP}){{2,}}[a-z0-9@$!](?![a-z0-9])")
_REPEATS = re.compile(r"([a-z])\1{2,}")


def base(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.translate(_CONFUSABLES)


def words(text_base: str) -> list[str]:
    return _WORD.findall(text_base)


def leet_words(text_base: str) -> list[str]:
    """Words mixing letters with digit/symbol look-alikes, in both readings of '1' (i and l)."""
    out: list[str] = []
    for raw in _LEET_WORD.findall(text_base):
        if raw.isalpha() or raw.isdigit() or not any(c.isalpha() for c in raw):
            continue
        for table in (_LEET_I, _LEET_L):
            out.append(_REPEATS.sub(r"\1", raw.translate(table)))
    return out


def spaced_runs(text_base: str) -> list[str]:
    """Single characters separated by punctuation or spaces, joined ('c h i l d' -> 'child')."""
    runs = []
    for match in _SPACED.finditer(text_base):
        joined = re.sub(_SEP, "", match.group(0)).translate(_LEET_I)
        runs.append(_REPEATS.sub(r"\1", joined))
    return runs


def singular(word: str) -> str:
    """Crude plural folding for list matching ('kids' -> 'kid', 'nudes' -> 'nude')."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word
