"""Per-request tokenizer work and CPU outside the model for a 5-exchange stateful chat.

`python -m bench.chat_overhead` runs one conversation of 5 exchanges through `Worker.handle`
on the embedded model (several rounds, fresh conversation ids) and prints, per exchange:
calls into the real tokenizer (`__call__`: batched or not) and texts/characters it encoded,
chat-template renders, and CPU ms outside the model: the whole process's CPU time during the
request less the model thread's (torch runs single-threaded here so that no intra-op pool
hides model work elsewhere; the tokenizer's own Rust threads are counted). Medians over the
rounds, and their mean over the 5 exchanges. `python -m bench.chat_overhead NAME` saves
bench/results/NAME.json (default chat_overhead).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from handler.app import Worker
from shared.settings import load_settings

RESULTS = Path(__file__).parent / "results"
MESSAGES = [
    "Hi! I'm planning a trip and need ideas for somewhere warm in spring.",
    "I like hiking more than beaches. Which island has the best trails?",
    "How long should I stay to do four or five walks with rest days?",
    "What should I pack for mountain paths and the odd rainy day?",
    "Any tips for food near the trailheads, and for booking dinner?",
]


class TokenizerCounter:
    """Counts and times calls into the real transformers tokenizer (an instance-level wrapper)."""

    def __init__(self, tokenizer: Any) -> None:
        self.calls = self.texts = self.chars = self.renders = 0
        self.seconds = 0.0
        cls, lock = type(tokenizer), threading.Lock()
        encode, render = cls.__call__, tokenizer.apply_chat_template

        class Counted(cls):  # type: ignore[misc, valid-type]
            def __call__(inner, text: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
                texts = [text] if isinstance(text, str) else list(text)
                started = time.perf_counter()
                try:
                    return encode(inner, text, *args, **kwargs)
                finally:
                    with lock:
                        self.calls, self.texts = self.calls + 1, self.texts + len(texts)
                        self.chars += sum(len(t) for t in texts)
                        self.seconds += time.perf_counter() - started

        def counted_render(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return render(*args, **kwargs)
            finally:
                with lock:
                    self.renders += 1
                    self.seconds += time.perf_counter() - started

        tokenizer.__class__ = Counted
        tokenizer.apply_chat_template = counted_render

    def snapshot(self) -> tuple[int, int, int, int, float]:
        return self.calls, self.texts, self.chars, self.renders, self.seconds


def _cpu_outside_model_s() -> float:
    """Process CPU seconds less those of the model thread (the scheduler's `engine-batcher`)."""
    model = [t.ident for t in threading.enumerate() if t.name == "engine-batcher" and t.ident is not None]
    return time.process_time() - sum(time.clock_gettime(time.pthread_getcpuclockid(ident)) for ident in model)


async def conversation(worker: Worker, counter: TokenizerCounter, cid: str) -> list[dict[str, Any]]:
    rows = []
    for n, message in enumerate(MESSAGES, 1):
        # every conversation its own texts, as in real traffic: no turn is in the caches before it is sent
        payload = {"action": "chat", "message": f"{message} ({cid})", "conversation_id": cid, "max_tokens": 16}
        before, cpu, wall = counter.snapshot(), _cpu_outside_model_s(), time.perf_counter()
        out = await worker.handle({"input": payload})
        assert out.get("success"), out
        cpu, wall = _cpu_outside_model_s() - cpu, time.perf_counter() - wall
        calls, texts, chars, renders, seconds = (a - b for a, b in zip(counter.snapshot(), before, strict=True))
        rows.append(
            {
                "exchange": n,
                "history_turns_used": out["history_turns_used"],
                "prompt_tokens": out["usage"]["prompt_tokens"],
                "tokenizer_calls": calls,
                "texts_encoded": texts,
                "chars_encoded": chars,
                "template_renders": renders,
                "tokenizer_ms": round(seconds * 1000, 2),
                "cpu_ms_outside_model": round(cpu * 1000, 2),
                "request_ms": round(wall * 1000, 1),
            }
        )
    return rows


def main(rounds: int = 5) -> None:
    import torch

    torch.set_num_threads(1)
    settings = load_settings(upstash_redis_rest_url=None, upstash_redis_rest_token=None)
    from handler.app import build_engine

    engine = build_engine(settings)
    engine.load()
    worker = Worker(settings, engine)
    counter = TokenizerCounter(engine._require_tokens().tokenizer)  # type: ignore[attr-defined]
    asyncio.run(conversation(worker, counter, "bench-overhead-warm-up"))
    runs = [asyncio.run(conversation(worker, counter, f"bench-overhead-{r}")) for r in range(rounds)]
    per_exchange = [
        {key: statistics.median(run[i][key] for run in runs) for key in runs[0][i]} for i in range(len(MESSAGES))
    ]
    means = {k: round(statistics.mean(row[k] for row in per_exchange), 2) for k in per_exchange[0] if k != "exchange"}
    results = {"rounds": rounds, "per_exchange": per_exchange, "mean_per_request": means}
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(exist_ok=True)
    name = sys.argv[1] if len(sys.argv) > 1 else "chat_overhead"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
