"""The quality score, and which of a profile's indicator groups a result has (the score and the
adapter's per-family optimisation flags both read them).

score = 0.3 * budget + 0.3 * preserved + 0.3 * indicators + 0.1 * (1 - repetition)
  budget      1 when within the token limit, else limit / used
  preserved   share of the caller's content words present in the result
  indicators  share of the profile's indicator groups present (anatomy counts only in adult mode)
  repetition  share of phrases/sentences that repeat an earlier one
"""

from __future__ import annotations

from shared.enhance.compose import has_any
from shared.enhance.profiles import Profile
from shared.enhance.text import content_words, missing_words, repetition_ratio, split_phrases


def groups_present(profile: Profile, text: str) -> dict[str, bool]:
    return {name: has_any(text, terms) for name, terms in profile.indicators.items()}


def quality_score(profile: Profile, original: str, result: str, used: int, adult: bool) -> float:
    budget = 1.0 if used <= profile.token_limit else profile.token_limit / used
    words = content_words(original)
    preserved = 1.0 - len(missing_words(original, result)) / len(words) if words else 1.0
    groups = {k: v for k, v in groups_present(profile, result).items() if adult or k != "anatomy"}
    indicators = sum(groups.values()) / len(groups) if groups else 1.0
    pieces = split_phrases(result) if profile.style == "tags" else result.split(". ")
    score = 0.3 * budget + 0.3 * preserved + 0.3 * indicators + 0.1 * (1 - repetition_ratio(pieces))
    return round(min(max(score, 0.0), 1.0), 3)
