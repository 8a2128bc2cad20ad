"""transformers' continuous-batching manager (`generate_batch`, paged cache) against our padded
batches and one-by-one `generate`, on the same 8 enhancement prompts, greedy, 48 new tokens.

Run: .venv/bin/python -m bench.cb_compare   (prints and saves bench/results/cb_compare.json)
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import torch
from transformers import GenerationConfig

from bench.load import ENHANCE_PROMPTS
from bench.micro import profile_messages
from shared.engine import GenerationParams
from shared.engine.hf_engine import TransformersEngine
from shared.settings import load_settings

NEW_TOKENS = 48


def main() -> None:
    engine = TransformersEngine(load_settings(prefix_cache_entries=0))
    engine.load()
    model, tok = engine._model, engine._tokenizer
    prompts = [engine.render(profile_messages(p, "sdxl_image_fast")) for p in ENHANCE_PROMPTS[:8]]
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    results = {}

    t = time.perf_counter()
    with torch.inference_mode():
        for x in ids:
            model.generate(torch.tensor([x]), max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=tok.pad_token_id)
    results["one_by_one_s"] = round(time.perf_counter() - t, 2)

    params = GenerationParams(max_tokens=NEW_TOKENS, temperature=0.0, repetition_penalty=1.0)

    async def padded() -> None:
        await asyncio.gather(
            *(engine.generate(profile_messages(p, "sdxl_image_fast"), params) for p in ENHANCE_PROMPTS[:8])
        )

    t = time.perf_counter()
    asyncio.run(padded())
    results["ours_padded_batch_s"] = round(time.perf_counter() - t, 2)

    try:
        config = GenerationConfig(
            max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
        )
        t = time.perf_counter()
        with torch.inference_mode():
            model.generate_batch(inputs=ids, generation_config=config, warmup=False)
        results["transformers_continuous_batching_s"] = round(time.perf_counter() - t, 2)
    except Exception as exc:
        results["transformers_continuous_batching_s"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    print(json.dumps(results, indent=2))
    out = Path(__file__).parent / "results" / "cb_compare.json"
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
