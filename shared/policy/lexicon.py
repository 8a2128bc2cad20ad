"""Word lists as data: loading, merging the operator's extensions, and matching.

A list file holds one word or phrase per line ('#' starts a comment). Matching is on
word boundaries with plurals folded; a phrase matches as a run of words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from shared.policy import normalize

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class TextView:
    """One text seen through every normalisation the policy matches against."""

    base: str

    @classmethod
    def of(cls, text: str) -> TextView:
        return cls(normalize.base(text))

    @cached_property
    def words(self) -> list[str]:
        return [normalize.singular(w) for w in normalize.words(self.base)]

    @cached_property
    def joined(self) -> str:
        return f" {' '.join(self.words)} "

    @cached_property
    def leet(self) -> list[str]:
        return [normalize.singular(w) for w in normalize.leet_words(self.base)]

    @cached_property
    def runs(self) -> list[str]:
        return normalize.spaced_runs(self.base)


@dataclass(frozen=True)
class Lexicon:
    singles: frozenset[str]
    phrases: tuple[str, ...]  # space-joined, folded words
    commands: tuple[str, ...]  # '/word' commands, matched on the base text

    @classmethod
    def of(cls, terms: list[str]) -> Lexicon:
        singles, phrases, commands = set(), [], []
        for term in terms:
            if term.startswith("/"):
                commands.append(normalize.base(term))
                continue
            folded = [normalize.singular(w) for w in normalize.words(normalize.base(term))]
            if len(folded) == 1:
                singles.add(folded[0])
            elif folded:
                phrases.append(" ".join(folded))
        return cls(frozenset(singles), tuple(phrases), tuple(commands))

    def find(self, view: TextView, disguised: bool = False) -> set[str]:
        """Terms present in `view`; with `disguised`, leetspeak and spaced-out letters count too."""
        found = {w for w in view.words if w in self.singles}
        found.update(p for p in self.phrases if f" {p} " in view.joined)
        found.update(c for c in self.commands if re.search(rf"(?<![\w/]){re.escape(c)}\b", view.base))
        if disguised:
            found.update(w for w in view.leet if w in self.singles)
            for run in view.runs:
                found.update(s for s in self.singles if len(s) >= 3 and s in run)
        return found


def read_list(name: str, extra_dir: Path | None) -> list[str]:
    """The shipped list, extended by the operator's file of the same name."""
    terms: list[str] = []
    for folder in (DATA_DIR, extra_dir):
        path = folder / name if folder else None
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("/") else line.strip()
                if line:
                    terms.append(line)
    return terms


def read_thresholds(extra_dir: Path | None) -> dict[str, Any]:
    values: dict[str, Any] = json.loads((DATA_DIR / "thresholds.json").read_text(encoding="utf-8"))
    override = extra_dir / "thresholds.json" if extra_dir else None
    if override is not None and override.is_file():
        values.update(json.loads(override.read_text(encoding="utf-8")))
    return values
