"""Milliseconds per decode step at batch 1 and 8: transformers' own sampled generate vs our engine.

Run: `python -m bench.step_overhead` (any device). Both run the same model with the same
prompt; the difference is the serving path (per-row sampling parameters and seeds, stop
strings, detokenisation, the hand-off to the event loop). On a GPU that path, not the model,
decides how batch size scales. Prints and saves bench/results/step_overhead.json.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from shared.engine import GenerationParams, Message
from shared.engine.hf_engine import TransformersEngine
from shared.settings import load_settings

STEPS = 48
PROMPT = "Write a long story about a dragon who learns to paint."


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def generate_ms(model: Any, tok: Any, rows: int) -> float:
    """transformers' own generate, sampled, forced to STEPS new tokens."""
    import torch

    batch = tok([PROMPT] * rows, return_tensors="pt").to(model.device)
    with torch.no_grad():
        sync(str(model.device))
        started = time.perf_counter()
        model.generate(**batch, max_new_tokens=STEPS, min_new_tokens=STEPS, do_sample=True, top_p=0.9)
        sync(str(model.device))
    return (time.perf_counter() - started) * 1000 / STEPS


async def engine_ms(engine: TransformersEngine, rows: int) -> float:
    """Our engine, sampled, each row its own seed; per step = wall / the longest row's tokens."""
    params = [GenerationParams(max_tokens=STEPS, temperature=0.7, seed=i) for i in range(rows)]
    started = time.perf_counter()
    outs = await asyncio.gather(*(engine.generate([Message("user", PROMPT)], p) for p in params))
    return (time.perf_counter() - started) * 1000 / max(o.completion_tokens for o in outs)


def main() -> None:
    engine = TransformersEngine(load_settings(upstash_redis_rest_url=None, upstash_redis_rest_token=None))
    engine.load()
    model, tok = engine._model, engine._tokenizer  # the loaded pair, read for a bare-forward baseline
    info = engine.info()
    tok.padding_side = "left"
    asyncio.run(engine_ms(engine, 1))  # warm-up
    out: dict[str, Any] = {"model": info.model_name, "device": info.model_device, "gpu": info.gpu_name}
    for rows in (1, 8):
        out[f"batch_{rows}"] = {
            "hf_generate_ms": round(generate_ms(model, tok, rows), 2),
            "engine_ms": round(asyncio.run(engine_ms(engine, rows)), 2),
        }
        print(rows, out[f"batch_{rows}"], flush=True)
    print(json.dumps(out, indent=2))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "step_overhead.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
