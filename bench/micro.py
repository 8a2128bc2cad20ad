"""Prefill with and without prefix reuse, streaming first-token time, cache-hit latency, cold start."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import torch

from bench.load import ENHANCE_PROMPTS, pct
from handler.app import Worker
from shared.engine import Message
from shared.engine.hf_engine import TransformersEngine
from shared.enhance import load_profiles

ROOT = Path(__file__).parents[1]


def profile_messages(prompt: str, job_type: str = "sdxl_image_high") -> list[Message]:
    p = load_profiles().get(job_type)
    assert p is not None
    shots = [m for ex in p.examples for m in (Message("user", ex["input"]), Message("assistant", ex["output"]))]
    return [Message("system", p.system_prompt), *shots, Message("user", prompt)]


def prefill(engine: TransformersEngine) -> dict[str, Any]:
    """Forward pass over a profile's repeated request: whole prompt vs only the tokens after the cached prefix."""
    tokens, model = engine._require_tokens(), engine._model
    prefix_ids = tokens.head_ids(profile_messages("x"))
    with torch.inference_mode():
        cached = model(input_ids=torch.tensor([prefix_ids]), use_cache=True).past_key_values
    full, reuse = [], []
    for prompt in ENHANCE_PROMPTS[:8]:
        ids = tokens.prompt_ids(profile_messages(prompt))
        assert ids[: len(prefix_ids)] == prefix_ids
        with torch.inference_mode():
            t = time.perf_counter()
            model(input_ids=torch.tensor([ids]), use_cache=True)
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            model(input_ids=torch.tensor([ids[len(prefix_ids) :]]), cache=copy.deepcopy(cached), use_cache=True)
            reuse.append(time.perf_counter() - t)
    return {
        "prompt_tokens": len(ids),
        "prefix_tokens": len(prefix_ids),
        "full_prefill_ms": round(statistics.median(full) * 1000, 1),
        "reused_prefill_ms": round(statistics.median(reuse) * 1000, 1),
        "speedup": round(statistics.median(full) / statistics.median(reuse), 2),
    }


def streaming(worker: Worker) -> dict[str, Any]:
    """Time to the first delta and to the final item, at the generator handler, for a ~100-token reply."""

    async def once(seed: int) -> tuple[float, float, int]:
        payload = {
            "action": "chat",
            "message": "Write a long, detailed story about a lighthouse keeper.",
            "stream": True,
            "max_tokens": 100,
            "temperature": 0.7,
            "seed": seed,
            "conversation_history": [],
        }
        started = time.perf_counter()
        first = None
        final: dict[str, Any] = {}
        async for item in worker.handle_stream({"input": payload}):
            if "delta" in item and first is None:
                first = time.perf_counter() - started
            final = item
        total = time.perf_counter() - started
        return first or total, total, int(final.get("usage", {}).get("completion_tokens", 0))

    runs = [asyncio.run(once(s)) for s in range(3)]
    ttft = statistics.median(r[0] for r in runs)
    total = statistics.median(r[1] for r in runs)
    tokens = statistics.median(r[2] for r in runs)
    return {
        "ttft_ms": round(ttft * 1000, 1),
        "full_reply_s": round(total, 3),
        "completion_tokens": tokens,
        "ttft_share": round(ttft / total, 3),
        "tokens_per_s": round(tokens / total, 1),
    }


def cache_hits(worker: Worker, n: int = 300) -> dict[str, Any]:
    async def cached() -> dict[str, Any]:
        """A request whose answer came from the model: rule-based fallbacks are never cached."""
        for seed in range(123, 143):
            payload = {"action": "enhance", "prompt": "a red fox in the snow", "seed": seed}
            if (await worker.handle({"input": payload})).get("enhancement_source") != "rule_based":
                return payload
        raise RuntimeError("20 seeds gave no model answer to cache")

    async def go() -> list[float]:
        payload = await cached()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            out = await worker.handle({"input": payload})
            times.append(time.perf_counter() - t)
            assert out.get("cache_hit") is True, out
        return times

    times = asyncio.run(go())
    return {"n": n, "p50_ms": round(statistics.median(times) * 1000, 3), "p99_ms": round(pct(times, 0.99) * 1000, 3)}


def cold_start(cache_dir: Path | None) -> dict[str, Any]:
    """Process start -> first job done, with `--test_input`; peak RSS of the worker process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "RUNPOD_"))}
    if cache_dir is not None:
        env["MODEL_CACHE_DIR"] = str(cache_dir)
    job = {"input": {"action": "chat", "message": "Hi", "max_tokens": 8, "conversation_history": []}}
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "handler", "--test_input", json.dumps(job)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        # Sampled, not ru_maxrss: on Linux a child's ru_maxrss counts the parent's memory it was forked from.
        child, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                peak = max(peak, child.memory_info().rss)
            except psutil.Error:
                break
            time.sleep(0.05)
        proc.wait()
        wall = time.perf_counter() - started
        log.seek(0)
        lines = log.read().splitlines()
    ready = next((ln.split("ready in ")[1].split("s:")[0] for ln in lines if "ready in " in ln), None)
    return {
        "ok": proc.returncode == 0,
        "start_to_first_job_done_s": round(wall, 2),
        "start_to_ready_s": float(ready) if ready else None,
        "peak_rss_mb": round(peak / 2**20, 1),
    }


def cold_starts() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as empty:
        first = cold_start(Path(empty))  # converts the GGUF and fills this empty cache
        warm = cold_start(Path(empty))  # the converted-weights cache is present now
    return {"first_run": first, "with_converted_cache": warm}
