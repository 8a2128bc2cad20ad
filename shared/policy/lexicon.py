"""Word lists as data: loading, merging the operator's extensions, and matching.

A list file holds one word or phrase per line ('#' starts a comment); `name*.txt` files
are read together (`minor_terms.txt`, `minor_terms.es.txt`, ...). A trailing '~' marks a
term safe to fuzz: it also matches at edit distance 1 (terms of 5+ letters only); a
trailing '*' makes a single word a stem that matches any word it starts (inflections,
German compounds: 'nackt*' matches 'nacktfotos'). A phrase also matches written as one
word ('middleschooler'). Latin
and Cyrillic terms match on word boundaries with plurals folded; a phrase matches as a
run of words; a term containing CJK or kana matches anywhere (those scripts have no
spaces between words). Hangul is written with spaces: a Hangul term of up to two syllables
matches only at the start of a word, particles may follow ('소녀가'; not '로리' in '칼로리',
'플로리다'); longer Hangul terms match anywhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.policy import normalize

DATA_DIR = Path(__file__).parent / "data"
FUZZ_MIN = 5
# Thai (no spaces between words), kana, CJK ideographs, half-width kana and Hangul
# (syllables and the jamo `base` decomposes them to).
CJK = re.compile(
    r"[\u0e00-\u0e7f\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
)
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_SHORT_HANGUL = 2  # syllables: a term this short is too often part of another word


@dataclass(frozen=True)
class Scan:
    """One text prepared for matching: every reading's folded words, exemptions removed."""

    base: str
    token_lists: tuple[tuple[str, ...], ...]
    exempted: bool = False  # an idiom or non-sexual sense was cut out

    @property
    def joined(self) -> list[str]:
        return [f" {' '.join(tokens)} " for tokens in self.token_lists]


def fold(term: str) -> list[str]:
    return [normalize.singular(w) for w in normalize.words(normalize.base(term))]


@dataclass(frozen=True)
class Lexicon:
    singles: frozenset[str]
    phrases: tuple[str, ...]  # space-joined, folded words
    commands: tuple[str, ...]  # '/word' commands, matched on the base text
    squeezed: dict[str, str]  # doubled-letter key -> term ('kidd' -> 'kid')
    fuzzy: dict[str, str]  # one-deletion key -> fuzz-safe term
    cjk: re.Pattern[str] | None
    stems: tuple[str, ...] = ()  # 'nackt*' -> 'nackt': matches words starting with it
    hangul: re.Pattern[str] | None = None  # short Hangul terms, at the start of a word
    seen: dict[str, str | None] = field(default_factory=dict, compare=False)  # token -> term, bounded

    @classmethod
    def of(cls, terms: list[str]) -> Lexicon:
        singles: set[str] = set()
        phrases: list[str] = []
        commands: list[str] = []
        squeezed: dict[str, str] = {}
        fuzzy: dict[str, str] = {}
        cjk: list[str] = []
        hangul: list[str] = []
        stems: list[str] = []
        for line in terms:
            if line.endswith("*"):
                stems.extend(normalize.words(normalize.base(line[:-1]))[:1])
                continue
            term, fuzz = (line[:-1].strip(), True) if line.endswith("~") else (line, False)
            if term.startswith("/"):
                commands.append(normalize.base(term))
                continue
            if CJK.search(term):
                short = re.fullmatch(f"[\uac00-\ud7af]{{1,{_SHORT_HANGUL}}}", term)
                (hangul if short else cjk).append(re.escape(normalize.base(term).replace(" ", "")))
                continue
            folded = fold(term)
            if len(folded) == 1:
                single = folded[0]
                singles.add(single)
                if len(normalize.squeeze(single)) >= 3:
                    squeezed[normalize.squeeze(single)] = single
                if fuzz and len(single) >= FUZZ_MIN:
                    for key in _deletions(single):
                        fuzzy[key] = single
            elif folded:
                phrases.append(" ".join(folded))
                glued = normalize.singular("".join(folded))
                if len(glued) >= 8:
                    singles.add(glued)
        pattern = re.compile("|".join(sorted(cjk, key=len, reverse=True))) if cjk else None
        words = f"(?<![{_HANGUL}])(?:{'|'.join(hangul)})" if hangul else None
        return cls(
            frozenset(singles),
            tuple(phrases),
            tuple(commands),
            squeezed,
            fuzzy,
            pattern,
            tuple(stems),
            re.compile(words) if words else None,
        )

    def find(self, scan: Scan) -> set[str]:
        found: set[str] = set()
        for tokens, joined in zip(scan.token_lists, scan.joined, strict=True):
            for token in tokens:
                hit = self.word(token)
                if hit:
                    found.add(hit)
            found.update(p for p in self.phrases if f" {p} " in joined)
        if self.cjk is not None:
            found.update(m.group(0) for m in self.cjk.finditer(scan.base.replace(" ", "")))
        if self.hangul is not None:
            found.update(m.group(0) for m in self.hangul.finditer(scan.base))
        found.update(c for c in self.commands if re.search(rf"(?<![\w/]){re.escape(c)}\b", scan.base))
        return found

    def word(self, token: str) -> str | None:
        """The listed term `token` spells: exactly, with letters doubled, or one edit off a fuzz-safe term."""
        if token in self.seen:
            return self.seen[token]
        if len(self.seen) > 50_000:
            self.seen.clear()
        hit = self.seen[token] = self._word(token)
        return hit

    def _word(self, token: str) -> str | None:
        if token in self.singles:
            return token
        for stem in self.stems:
            if token.startswith(stem):
                return stem
        key = normalize.squeeze(token)
        if key != token and key in self.squeezed:
            return self.squeezed[key]
        if self.fuzzy and FUZZ_MIN <= len(token) <= 24:
            for candidate in _deletions(token):
                term = self.fuzzy.get(candidate)
                if term is not None and _within_one(token, term):
                    return term
        return None

    @property
    def longest(self) -> int:
        """Characters in the longest term, for stream hold-back."""
        lengths = [len(t) for t in (*self.singles, *self.phrases, *self.commands, *self.stems)]
        if self.cjk is not None:
            lengths.append(max(len(p.replace("\\", "")) for p in self.cjk.pattern.split("|")))
        if self.hangul is not None:
            lengths.append(4 * _SHORT_HANGUL)  # two syllables, each up to 3 jamo, and a space
        return max(lengths, default=0)


def _deletions(word: str) -> set[str]:
    return {word, *(word[:i] + word[i + 1 :] for i in range(len(word)))}


def _within_one(a: str, b: str) -> bool:
    """Damerau edit distance at most 1 (one insertion, deletion, substitution or swap)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :] or (a[i + 2 :] == b[i + 2 :] and a[i : i + 2] == b[i : i + 2][::-1])
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[i + 1 :] == shorter[i:]


def read_list(name: str, extra_dir: Path | None) -> list[str]:
    """The shipped list(s) `name*.txt`, extended by the operator's files of the same names."""
    stem = name.removesuffix(".txt")
    terms: list[str] = []
    for folder in (DATA_DIR, extra_dir):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"{stem}*.txt")):
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip() if line.lstrip().startswith("/") else line.split("#", 1)[0].strip()
                if line:
                    terms.append(line)
    return terms


def read_json(name: str, extra_dir: Path | None) -> dict[str, Any]:
    """The shipped `name`, then its per-language siblings (`ages.pl.json`: lists extend the
    shipped lists, maps add keys), then the operator's files of the same names (which override keys)."""
    values: dict[str, Any] = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    stem = name.removesuffix(".json")
    for folder in (DATA_DIR, extra_dir):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"{stem}.*.json")):
            _merge(values, json.loads(path.read_text(encoding="utf-8")))
    override = extra_dir / name if extra_dir else None
    if override is not None and override.is_file():
        values.update(json.loads(override.read_text(encoding="utf-8")))
    return values


def _merge(values: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if key.startswith("_"):  # comments
            continue
        if isinstance(value, list):
            values[key] = [*values.get(key, []), *value]
        elif isinstance(value, dict):
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
