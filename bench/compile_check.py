"""TORCH_COMPILE=true decodes the same greedy text as eager, and what compiling costs.

Moved here from the test suite: compiling takes minutes on a busy 2-core machine, so it
belongs with the benchmarks, not behind a test's clock. `python -m bench.compile_check`
prints and saves bench/results/compile_check.json. The compile runs inside
`engine.load()` (a warm-up generation outside any job timeout), as at worker start-up.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from shared.engine import GenerationParams, Message
from shared.engine.hf_engine import TransformersEngine
from shared.settings import load_settings

RESULTS = Path(__file__).parent / "results"
PROMPTS = ["a red fox", "castle on a hill", "old fisherman"]
SYSTEM = "You write prompts for the SDXL image model: one line of short comma-separated tags."
GREEDY = GenerationParams(max_tokens=20, temperature=0.0)


def msgs(prompt: str) -> list[Message]:
    return [Message("system", SYSTEM), Message("user", prompt)]


async def texts(engine: TransformersEngine) -> list[str]:
    alone = [(await engine.generate(msgs(p), GREEDY)).text for p in PROMPTS]
    together = await asyncio.gather(*(engine.generate(msgs(p), GREEDY) for p in PROMPTS))
    return alone + [g.text for g in together]


def main() -> None:
    eager = TransformersEngine(load_settings())
    eager.load()
    compiled = TransformersEngine(load_settings(torch_compile=True))
    started = time.perf_counter()
    compiled.load()
    load_s = time.perf_counter() - started
    a, b = asyncio.run(texts(eager)), asyncio.run(texts(compiled))
    result = {
        "same_text": a == b,
        "load_with_compile_s": round(load_s, 1),
        "compile_warm_up_s": compiled.info().extra.get("compile_warm_up_s"),
        "eager": a,
        "compiled": b,
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compile_check.json").write_text(json.dumps(result, indent=2))
    if a != b:
        raise SystemExit("compiled text differs from eager")


if __name__ == "__main__":
    main()
