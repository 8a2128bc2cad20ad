"""Action `enhance` (aliases `enhance_intelligent`, `enhance_legacy` set the mode)."""

from __future__ import annotations

from typing import Any

from handler.context import WorkerContext
from handler.validation import parse
from shared.schemas.enhance import EnhanceRequest


async def run(ctx: WorkerContext, payload: dict[str, Any], mode: str | None = None) -> dict[str, Any]:
    request = parse(EnhanceRequest, payload if mode is None else {**payload, "mode": mode})
    return await ctx.enhance.enhance(request)
