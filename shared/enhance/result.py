"""What an enhancement produced, as a domain object, and its form in the shared cache.

The service returns an `Enhancement`; only the adapter (handler/actions/enhance.py) turns it
into the seed's wire fields. The cache stores `to_entry`'s versioned plain form, so a change
of wire names never touches cached entries, and anything `from_entry` cannot read back
exactly (an older worker's wire body, another version, a damaged value) is a miss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

ENTRY_VERSION = 3  # also in the cache key: v2 entries were wire bodies, v3 are serialised Enhancements
Source = Literal["edge_function", "worker_fallback", "rule_based"]


@dataclass(frozen=True)
class TokenBudget:
    tokenizer: str  # label of the tokenizer that counted (the target pipeline's, or its stated proxy)
    limit: int
    used: int
    chunks: int  # 75-token chunks the pipeline will encode


@dataclass(frozen=True)
class Enhancement:
    original_prompt: str
    enhanced_prompt: str
    job_type: str
    quality: str
    enhancement_type: str
    source: Source  # edge_function: the caller's system prompt; worker_fallback: the profile's; rule_based: no model
    family: Literal["sdxl", "wan"]  # the profile's model family: which optimisation flags apply
    quality_score: float
    tokens: TokenBudget
    fits_budget: bool  # false only when the caller's own words alone exceed the budget
    negative_prompt: str
    adult_content: bool  # the caller's prompt reads as adult
    adult_mode: bool  # ... and the operator enabled adult content
    indicators: tuple[str, ...]  # the profile's indicator groups present in the result
    caching: bool  # this worker caches enhancements
    warnings: tuple[str, ...] = ()
    generation_time_s: float = 0.0  # of the run that produced it; a cache hit keeps the original's
    cache_hit: bool = False


_ENTRY = TypeAdapter(Enhancement)


def to_entry(enhancement: Enhancement) -> dict[str, Any]:
    """The cache's form: plain JSON values under a version; `cache_hit` is the reader's to say."""
    data = asdict(enhancement)
    del data["cache_hit"]
    return {"v": ENTRY_VERSION, "enhancement": data}


def from_entry(entry: Any) -> Enhancement | None:
    """The cached Enhancement, marked as a hit; None (a miss) for anything else."""
    if not isinstance(entry, dict) or entry.get("v") != ENTRY_VERSION or not isinstance(entry.get("enhancement"), dict):
        return None
    try:
        return replace(_ENTRY.validate_python(entry["enhancement"]), cache_hit=True)
    except ValidationError:
        return None
