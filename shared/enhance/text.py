"""Text helpers for enhancement: phrases, clean-up of model output, content words."""

from __future__ import annotations

import re
import unicodedata

from shared.enhance.tokens import EXTRA_NETWORK

_OPEN, _CLOSE = "([{<", ")]}>"

_THINK = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_PREFIX = re.compile(
    r"^\s*(?:(?:here(?:'s| is)|sure|okay|ok|certainly)\b[^:\n]*:|(?:enhanced|improved|final|new|optimi[sz]ed)?\s*"
    r"(?:prompt|tags|description|output)\s*:)\s*",
    re.I,
)
_CHATTER = re.compile(
    r"^\s*(?:note|explanation|this prompt|i (?:have|hope|added)|let me know|feel free)\b.*$", re.I | re.M
)
_MARKDOWN = re.compile(r"(\*\*|__|`+|^#+\s*|^\s*[-*•]\s+|^\s*\d+[.)]\s+)", re.M)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.U)

STOPWORDS = frozenset(
    """a an the and or but of in on at to for with by from as is are was were be been being it its this
    that these those into onto over under about very so than then there their his her he she they them
    we you your our my me i who which what while where when how up down out off has have had do does did
    not no nor can will would should could may might just also""".split()
)
REFUSALS = ("i'm sorry", "i am sorry", "i cannot", "i can't", "as an ai", "i apologize", "i'm unable")


def split_phrases(text: str) -> list[str]:
    """Split on commas outside (), [], {} and <> so '(red, blue:1.2)' stays whole."""
    phrases: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE and depth:
            depth -= 1
        if ch in ",\n" and depth == 0:
            phrases.append("".join(current))
            current = []
        else:
            current.append(ch)
    phrases.append("".join(current))
    return [p.strip() for p in phrases if p.strip()]


def clean_model_output(text: str) -> str:
    """Strip what a chatty model wraps a prompt in: think blocks, prefixes, markdown, quotes, notes."""
    text = _THINK.sub("", text)
    text = _CHATTER.sub("", text)
    lines = [_PREFIX.sub("", line) for line in text.splitlines()]
    text = "\n".join(line for line in lines if line.strip())
    text = _MARKDOWN.sub("", text)
    text = text.strip().strip("\"'“”‘’").strip()
    return re.sub(r"[ \t]+", " ", text)


def dedupe_phrases(phrases: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for phrase in phrases:
        key = normal(phrase)
        if key and key not in seen:
            seen.add(key)
            out.append(phrase)
    return out


def normal(text: str) -> str:
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def content_words(prompt: str) -> list[str]:
    """The caller's meaningful words (syntax and LoRA tags aside), case-folded, in order."""
    plain = EXTRA_NETWORK.sub(" ", prompt)
    plain = re.sub(r":\s*[+-]?[\d.]+\s*\)", ")", plain)
    plain = plain.replace("BREAK", " ")
    words = _WORD.findall(unicodedata.normalize("NFKC", plain).casefold())
    return [w for w in dict.fromkeys(words) if w not in STOPWORDS]


def missing_words(prompt: str, result: str) -> list[str]:
    present = set(_WORD.findall(unicodedata.normalize("NFKC", result).casefold()))
    return [w for w in content_words(prompt) if w not in present]


def latin_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 1.0
    return sum(1 for c in letters if "LATIN" in unicodedata.name(c, "")) / len(letters)


def repetition_ratio(phrases: list[str]) -> float:
    """Share of phrases that repeat an earlier one (0 = no repetition)."""
    if not phrases:
        return 0.0
    return 1 - len({normal(p) for p in phrases}) / len(phrases)
