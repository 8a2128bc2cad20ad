"""Compose an enhanced prompt in the profile's style and compress it to the token budget.

Every piece is a Part with a priority; compression drops whole parts, least important
first, and never touches the caller's own text except to drop stop words from plain
(syntax-free) phrases as a last resort.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.enhance.profiles import Profile
from shared.enhance.text import STOPWORDS, content_words, dedupe_phrases, normal, split_phrases
from shared.policy import ContentPolicy

CALLER, QUALITY, SUBJECT, ADULT, LIGHTING, TECHNICAL, STYLE, TAIL = range(8)
_KINDS = {"lighting": LIGHTING, "technical": TECHNICAL, "style": STYLE, "quality": QUALITY, "motion": SUBJECT}
_SYNTAX = re.compile(r"[()\[\]<>:\\]|\bBREAK\b|embedding:")
_STATED_ADULT = re.compile(
    r"\b(adults?|mature|grown[- ]up|milf|(1[89]|[2-9]\d)\s*(yo|y/o|years?|yrs?)|(1[89]|[2-9]\d)-year-old)\b", re.I
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_TAG_WORDS = 8
_CHATTY = re.compile(
    r"\b(i|me|my|mine|we|us|our|you|your)\b|[!?]|\.\.\.|^(?:the story|this (?:image|prompt|scene))", re.I
)
# A tag has no finite verb and does not start like a clause.
_NARRATIVE = re.compile(
    r"\b(was|were|had|is|are|has|have|will|would|lay|made|felt|seemed)\b|^(and|but|it|its|there|then|which|that|they|he|she)\b",
    re.I,
)


@dataclass
class Part:
    text: str
    priority: int
    order: int = 0


@dataclass
class Composed:
    text: str
    fits: bool
    dropped: int


def has_any(text: str, terms: list[str]) -> bool:
    padded = f" {normal(text)} "
    return any(f" {normal(t)} " in padded for t in terms)


def context_lines(context: dict[str, Any]) -> list[str]:
    """A JSON context as lines, every key and string as written: 'key: value', nesting shown by
    indentation (capped). Iterative and linear in size, so any depth is safe."""
    lines: list[str] = []
    stack: list[tuple[str | None, Any, int]] = [(k, v, 0) for k, v in reversed(list(context.items()))]
    while stack:
        key, value, depth = stack.pop()
        label = "  " * min(depth, 8) + (f"{key}:" if key is not None else "-")
        if isinstance(value, dict):
            lines.append(label)
            stack.extend((str(k), v, depth + 1) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            lines.append(label)
            stack.extend((None, v, depth + 1) for v in reversed(value))
        else:
            lines.append(f"{label} {value if isinstance(value, str) else json.dumps(value)}")
    return lines


def _kind(phrase: str, profile: Profile) -> int:
    for name, priority in _KINDS.items():
        if has_any(phrase, profile.indicators.get(name, [])):
            return priority
    return SUBJECT


def adultify(phrase: str, policy: ContentPolicy) -> str:
    """'beautiful woman' -> 'beautiful adult woman'; syntax the caller wrote is left as is."""
    if _SYNTAX.search(phrase):
        return phrase
    for subject in sorted(policy.adult_subjects_in(phrase), key=len, reverse=True):
        pattern = re.compile(rf"\b({re.escape(subject)}s?)\b", re.I)
        if pattern.search(phrase):
            return pattern.sub(r"adult \1", phrase, count=1)
    return phrase


def _caller_parts(original: str, policy: ContentPolicy, adult: bool, tags: bool) -> list[Part]:
    pieces = split_phrases(original) if tags else [original.strip()]
    make_adult = adult and not _STATED_ADULT.search(original) and policy.adult_subjects_in(original)
    return [Part(adultify(p, policy) if make_adult else p, CALLER) for p in pieces]


def _model_phrases(
    original: str, model_text: str, policy: ContentPolicy, tags: bool, limit: int, said: str
) -> list[str]:
    pieces = split_phrases(model_text) if tags else _SENTENCE_END.split(model_text)
    caller = set(content_words(original))
    kept = []
    for piece in pieces:
        piece = piece.strip().strip("\"'").strip()
        words = set(content_words(piece))
        if not piece or words <= caller or policy.added_age_lowering(original, piece):
            continue  # nothing new, or words that make a person read younger: never added
        if policy.launders(said, piece):
            continue  # adult words or ages added by the model where the caller gave an age, youth or minor signal
        if _CHATTY.search(piece) or (tags and (len(piece.split()) > MAX_TAG_WORDS or _NARRATIVE.search(piece))):
            continue  # first person, questions, exclamations or whole sentences: chatter, not a prompt
        kept.append(piece)
    return dedupe_phrases(kept)[:limit]


def compose_tags(
    profile: Profile, original: str, model_text: str | None, adult: bool, policy: ContentPolicy, said: str = ""
) -> list[Part]:
    """`said`: everything the caller sent (prompt, context, system prompt), for the no-laundering rule."""
    caller = _caller_parts(original, policy, adult, tags=True)
    model = [
        Part(p, _kind(p, profile))
        for p in _model_phrases(original, model_text or "", policy, True, profile.max_model_phrases, said or original)
    ]
    everything = " , ".join(p.text for p in caller + model)
    quality = [Part(q, QUALITY) for q in profile.quality_tags if not has_any(everything, [q])]
    defaults = []
    for name, phrases in profile.default_phrases.items():
        if model_text is None or not any(p.priority == _KINDS[name] for p in model):
            defaults += [Part(p, _KINDS[name]) for p in phrases if not has_any(everything, [p])]
    extra = [Part(p, ADULT) for p in profile.adult_phrases if adult and not has_any(everything, [p])]
    subject = [p for p in model if p.priority in (SUBJECT, QUALITY)]
    rest = sorted([p for p in model if p.priority not in (SUBJECT, QUALITY)] + defaults, key=lambda p: p.priority)
    return _numbered(quality + caller + subject + extra + rest)


def compose_paragraph(
    profile: Profile, original: str, model_text: str | None, adult: bool, policy: ContentPolicy, said: str = ""
) -> list[Part]:
    sentences = _model_phrases(original, model_text or "", policy, False, profile.max_model_phrases, said or original)
    parts: list[Part] = []
    first = sentences[0] if sentences else ""
    if not has_any(first, profile.indicators.get("cinematography", [])):
        parts.append(Part(f"{profile.lead_phrase}.", QUALITY))
    caller = _caller_parts(original, policy, adult, tags=False)[0]
    if not caller.text.endswith((".", "!", "?")):
        caller.text += "."
    parts.append(caller)  # the caller's own words, verbatim, right after the camera lead
    for sentence in sentences:
        parts.append(Part(sentence if sentence.endswith((".", "!", "?")) else sentence + ".", SUBJECT))
    if not sentences:
        motion = profile.default_phrases.get("motion", []) + profile.default_phrases.get("lighting", [])
        parts.append(Part(_sentence(", ".join(motion)), SUBJECT))
    if adult and profile.adult_phrases:
        parts.append(Part(_sentence(", ".join(profile.adult_phrases)), ADULT))
    tail = [q for q in profile.quality_tags if not has_any(" ".join(p.text for p in parts), [q])]
    if tail:
        parts.append(Part(_sentence(", ".join(tail)), TAIL))
    return _numbered(parts)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _numbered(parts: list[Part]) -> list[Part]:
    for i, part in enumerate(parts):
        part.order = i
    return parts


def render(parts: list[Part], style: str) -> str:
    return (", " if style == "tags" else " ").join(p.text for p in parts)


def compress(parts: list[Part], style: str, count: Callable[[str], int], limit: int) -> Composed:
    """Drop whole parts, least important (then latest) first, until the prompt fits."""
    kept = list(parts)
    dropped = 0
    while count(render(kept, style)) > limit:
        candidates = [p for p in kept if p.priority != CALLER]
        if not candidates:
            return _squeeze_caller(kept, style, count, limit, dropped)
        victim = max(candidates, key=lambda p: (p.priority, p.order))
        kept.remove(victim)
        dropped += 1
    return Composed(render(kept, style), True, dropped)


def _squeeze_caller(parts: list[Part], style: str, count: Callable[[str], int], limit: int, dropped: int) -> Composed:
    """Last resort: drop stop words from the caller's plain phrases; content words stay."""
    squeezed = []
    for part in parts:
        if _SYNTAX.search(part.text):
            squeezed.append(part)
            continue
        words = [w for w in part.text.split() if w.casefold().strip(".,!?") not in STOPWORDS]
        squeezed.append(Part(" ".join(words) or part.text, part.priority, part.order))
    text = render(squeezed, style)
    return Composed(text, count(text) <= limit, dropped)
