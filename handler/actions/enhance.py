"""Action `enhance` (aliases `enhance_intelligent`, `enhance_legacy` set the mode).

The service returns an `Enhancement`; this is the one place it becomes the seed's wire body
(field names from the reference spec, ../shared/reference/). HTTP mode's /enhance routes run
this action, so both adapters answer the same keys, in the same order.
"""

from __future__ import annotations

from typing import Any

from handler.context import WorkerContext
from handler.validation import parse
from shared.enhance import Enhancement
from shared.schemas.enhance import EnhanceRequest

# (wire flag, the profile's indicator group) per family, in the seed's order
_FLAGS = {
    "sdxl": (
        ("has_quality_tags", "quality"),
        ("has_lighting", "lighting"),
        ("has_technical_terms", "technical"),
        ("has_resolution", "resolution"),
        ("has_anatomical_accuracy", "anatomy"),
    ),
    "wan": (
        ("has_motion", "motion"),
        ("has_cinematography", "cinematography"),
        ("has_temporal", "temporal"),
        ("has_quality", "quality"),
        ("has_anatomical_accuracy", "anatomy"),
    ),
}


async def run(ctx: WorkerContext, payload: dict[str, Any], mode: str | None = None) -> dict[str, Any]:
    request = parse(EnhanceRequest, payload if mode is None else {**payload, "mode": mode})
    return shape(await ctx.enhance.enhance(request), request.mode)


def shape(e: Enhancement, mode: str) -> dict[str, Any]:
    """Legacy mode answers the seed's first seven fields only; intelligent mode all of them."""
    body: dict[str, Any] = {
        "success": True,
        "original_prompt": e.original_prompt,
        "enhanced_prompt": e.enhanced_prompt,
        "generation_time": round(e.generation_time_s, 3),
        "enhancement_type": e.enhancement_type,
        "job_type": e.job_type,
        "quality": e.quality,
    }
    if mode == "legacy":
        return body
    body.update(
        enhancement_source=e.source,
        worker_optimizations={"caching": e.caching, "post_processing": True, "fallback_ready": True},
        quality_score=e.quality_score,
        token_budget={
            "tokenizer": e.tokens.tokenizer,
            "limit": e.tokens.limit,
            "used": e.tokens.used,
            "chunks": e.tokens.chunks,
        },
        negative_prompt=e.negative_prompt,
        content_rating="adult" if e.adult_content else "general",
        adult_mode=e.adult_mode,
    )
    flags = {flag: group in e.indicators for flag, group in _FLAGS[e.family]}
    body[f"{e.family}_optimizations"] = {**flags, "token_count": e.tokens.used}
    if e.warnings:
        body["warning"] = "; ".join(e.warnings)
    body["cache_hit"] = e.cache_hit
    return body
