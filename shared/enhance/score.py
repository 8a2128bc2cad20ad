"""The quality score and the per-family optimisation flags.

score = 0.3 * budget + 0.3 * preserved + 0.3 * indicators + 0.1 * (1 - repetition)
  budget      1 when within the token limit, else limit / used
  preserved   share of the caller's content words present in the result
  indicators  share of the profile's indicator groups present (anatomy counts only in adult mode)
  repetition  share of phrases/sentences that repeat an earlier one
"""

from __future__ import annotations

from typing import Any

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


def optimizations(profile: Profile, result: str, used: int) -> tuple[str, dict[str, Any]]:
    g = groups_present(profile, result)
    if profile.family == "sdxl":
        return "sdxl_optimizations", {
            "has_quality_tags": g.get("quality", False),
            "has_lighting": g.get("lighting", False),
            "has_technical_terms": g.get("technical", False),
            "has_resolution": g.get("resolution", False),
            "has_anatomical_accuracy": g.get("anatomy", False),
            "token_count": used,
        }
    return "wan_optimizations", {
        "has_motion": g.get("motion", False),
        "has_cinematography": g.get("cinematography", False),
        "has_temporal": g.get("temporal", False),
        "has_quality": g.get("quality", False),
        "has_anatomical_accuracy": g.get("anatomy", False),
        "token_count": used,
    }
