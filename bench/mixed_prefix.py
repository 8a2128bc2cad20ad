"""Distinct conversations in one batch: each row on its own prefix's KV cache (padded to the
longest) vs. no prefix reuse (every row prefilled whole). Decides what the engine does with
mixed-prefix batches; `python -m bench.mixed_prefix` runs it alone."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from bench.load import ENHANCE_PROMPTS, STATEFUL_TURNS
from shared.engine import GenerationParams, Message
from shared.engine.hf_engine import TransformersEngine
from shared.settings import load_settings

PARAMS = GenerationParams(max_tokens=32, temperature=0.7, seed=1)


def conversation(i: int, turn: int) -> list[Message]:
    """Conversation i at its `turn`-th question, with the earlier exchanges as history."""
    msgs = [Message("system", "You are a helpful travel assistant. Answer in two sentences.")]
    for question, answer in STATEFUL_TURNS[:turn]:
        msgs += [Message("user", f"{question} (about {ENHANCE_PROMPTS[i]})"), Message("assistant", answer)]
    return [*msgs, Message("user", f"{STATEFUL_TURNS[turn][0]} (about {ENHANCE_PROMPTS[i]})")]


async def batch(engine: TransformersEngine, n: int, turn: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(engine.generate(conversation(i, turn), PARAMS) for i in range(n)))
    return time.perf_counter() - started


def mixed_prefixes(n: int = 8, repeats: int = 2) -> dict[str, Any]:
    """Wall time of one batch of n distinct conversations at turn 4 (median of `repeats`):
    dropped prefixes, padded prefix KV built from scratch, and built on the previous turn's head."""
    times: dict[str, list[float]] = {"dropped": [], "prefix_cold": [], "prefix_warm": []}
    for _ in range(repeats):
        plain = TransformersEngine(load_settings(prefix_cache_entries=0, batch_window_ms=100, max_batch_size=n))
        plain.load()
        times["dropped"].append(asyncio.run(batch(plain, n, 4)))
        reuse = TransformersEngine(load_settings(prefix_cache_entries=4 * n, batch_window_ms=100, max_batch_size=n))
        reuse.load()
        times["prefix_cold"].append(asyncio.run(batch(reuse, n, 4)))
        asyncio.run(batch(reuse, n, 3))  # the previous turn: its heads are now cached
        times["prefix_warm"].append(asyncio.run(batch(reuse, n, 4)))
    out: dict[str, Any] = {k: round(statistics.median(v), 3) for k, v in times.items()}
    out["conversations"] = n
    out["prompt_tokens"] = reuse.count_chat_tokens(conversation(0, 4))
    return out


if __name__ == "__main__":
    print(json.dumps(mixed_prefixes(), indent=2))
