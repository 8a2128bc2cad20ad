"""Context fitting of a large history on the embedded model's tokenizer, and what the event loop feels.

`python -m bench.fit_history` prints the numbers and saves bench/results/fit_history.json.
Compared with the previous search (`whole_prompt_search` below: the whole rendered prompt
re-tokenized at every step of a binary search), in one run on the same texts, each on an
empty token cache; then the same history fitted again with the cache warm (a conversation's
next request: its stored turns were tokenized by the previous one).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.chat.history import fit_history
from shared.engine import Engine, Message
from shared.engine.hf_engine import TransformersEngine
from shared.settings import load_settings

RESULTS = Path(__file__).parent / "results"
SYSTEM = "You are a helpful assistant."
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit "


def whole_prompt_search(engine: Engine, system: str, history: list[Message], message: str, max_tokens: int) -> int:
    """The previous algorithm (no pairs, no per-turn counts): kept here as the baseline."""
    budget = engine.context_length - max_tokens
    head, tail = [Message("system", system)], [Message("user", message)]
    lo, hi = 0, len(history)
    while lo < hi:
        mid = (lo + hi) // 2
        if engine.count_chat_tokens(head + history[mid:] + tail) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return len(history) - lo


def _history(turns: int, chars: int) -> list[Message]:
    text = (WORDS * (chars // len(WORDS) + 1))[:chars]
    return [Message("user" if i % 2 == 0 else "assistant", f"turn {i} {text}") for i in range(turns)]


async def _measure(fit: Callable[..., Any], engine: Engine, history: list[Message], off_loop: bool) -> dict[str, float]:
    """Time of one fit and the longest gap between 1 ms ticks of a task on the same loop."""
    stall, last, done = 0.0, time.perf_counter(), False

    async def tick() -> None:
        nonlocal stall, last
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stall, last = max(stall, now - last), now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    args = (engine, SYSTEM, history, "the newest question", 256)
    if off_loop:
        await asyncio.to_thread(fit, *args)
    else:
        fit(*args)
    took = time.perf_counter() - started
    await asyncio.sleep(0.005)
    done = True
    await ticker
    return {"fit_ms": round(took * 1000, 1), "longest_loop_stall_ms": round(stall * 1000, 1)}


def main() -> None:
    engine = TransformersEngine(load_settings(upstash_redis_rest_url=None, upstash_redis_rest_token=None))
    engine.load()
    cases = {"160 turns x 16000 chars": _history(160, 16000), "160 turns x 200 chars": _history(160, 200)}
    results: dict[str, Any] = {"context_tokens": engine.context_length}
    runs = engine._require_tokens().runs  # the engine's token cache of text runs
    for name, history in cases.items():
        runs.clear()
        previous = asyncio.run(_measure(whole_prompt_search, engine, history, off_loop=False))
        runs.clear()
        results[name] = {
            "previous, on the loop": previous,
            "now, off the loop": asyncio.run(_measure(fit_history, engine, history, off_loop=True)),
            "now, again (cache warm)": asyncio.run(_measure(fit_history, engine, history, off_loop=True)),
        }
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fit_history.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
