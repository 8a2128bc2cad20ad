"""Action `warmup`: cheap for scheduled pings; loads the model and runs one tiny
generation only the first time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from handler.context import WorkerContext
from shared.engine import GenerationParams, Message


async def run(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    was_warm = ctx.engine.loaded and ctx.stats.warmed_up
    load_time = 0.0
    generation_time = 0.0
    if not ctx.engine.loaded:
        load_time = await asyncio.to_thread(ctx.engine.load)
    if not ctx.stats.warmed_up:
        t = time.perf_counter()
        await ctx.engine.generate([Message("user", "Hi")], GenerationParams(max_tokens=1, temperature=0.0))
        generation_time = time.perf_counter() - t
        ctx.stats.warmed_up = True
    return {
        "success": True,
        "warm": was_warm,
        "model_loaded": ctx.engine.loaded,
        "load_time": round(load_time, 3),
        "warmup_generation_time": round(generation_time, 3),
        "total_time": round(time.perf_counter() - started, 4),
    }
