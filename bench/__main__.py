"""`make bench`: the whole suite in one run on the same model, prompts and seeds.

Prints a table and saves bench/results/latest.json (plus a timestamped copy).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench import micro
from bench.baseline import SequentialEngine
from bench.load import ACTIONS, sweep
from bench.mixed_prefix import mixed_prefixes
from handler.app import Worker
from shared.engine.hf_engine import TransformersEngine
from shared.settings import load_settings

RESULTS = Path(__file__).parent / "results"
LEVELS = [1, 4, 8, 16]


def machine(engine: TransformersEngine) -> dict[str, Any]:
    import os

    import torch

    info = engine.info()
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": info.model_name,
        "device": info.model_device,
        "gpu": info.gpu_name,
    }


def upstash_hits() -> dict[str, Any] | None:
    """Cache hits through the handler on the Upstash store, via the local bridge and the machine's Redis."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bridge = subprocess.Popen(
        [sys.executable, "-m", "infra.local.bridge", "--port", str(port), "--token", "bench-bridge-token"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        settings = load_settings(
            upstash_redis_rest_url=f"http://127.0.0.1:{port}",
            upstash_redis_rest_token="bench-bridge-token",
            redis_key_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        )
        engine = TransformersEngine(settings)
        engine.load()
        return micro.cache_hits(Worker(settings, engine), n=200)
    except Exception as exc:
        return {"error": type(exc).__name__}
    finally:
        bridge.terminate()


def main() -> None:
    quick = "--quick" in sys.argv
    levels = [1, 8] if quick else LEVELS
    # `--only=chat_stateful` re-measures one workload's sweep alone (section 1 only).
    only = tuple(a.split("=", 1)[1] for a in sys.argv if a.startswith("--only="))
    settings = load_settings(enhance_cache_size=0, upstash_redis_rest_url=None, upstash_redis_rest_token=None)
    engine = TransformersEngine(settings)
    engine.load()
    results: dict[str, Any] = {"machine": machine(engine), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    ours = Worker(settings, engine)
    baseline = Worker(settings, SequentialEngine(engine))
    print("1. throughput and latency, baseline (one plain generate at a time) vs ours", flush=True)
    results["load"] = sweep(ours, baseline, levels, only or ACTIONS)
    if only:  # the rows were printed as they ran; saved beside the full runs
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"only-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))
        return
    print("1b. distinct conversations in one batch: padded prefix KV vs dropped prefixes", flush=True)
    results["mixed_prefix"] = mixed_prefixes()
    print(f"   {results['mixed_prefix']}")
    print("2. prefill with and without prefix reuse", flush=True)
    results["prefill"] = micro.prefill(engine)
    print(f"   {results['prefill']}")
    print("3. streaming chat at the handler", flush=True)
    results["streaming"] = micro.streaming(ours)
    print(f"   {results['streaming']}")
    print("4. cache hits through the handler", flush=True)
    cached = Worker(load_settings(upstash_redis_rest_url=None, upstash_redis_rest_token=None), engine)
    results["cache_hits"] = {"memory": micro.cache_hits(cached), "upstash_bridge": upstash_hits()}
    print(f"   {results['cache_hits']}")
    print("5. cold start", flush=True)
    results["cold_start"] = micro.cold_starts()
    print(f"   {results['cold_start']}")
    results["gpu"] = "not run: this task was not lent a GPU machine"
    results["summary"] = summarise(results)
    print(json.dumps(results["summary"], indent=2))
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(results, indent=2)
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)


def summarise(r: dict[str, Any]) -> dict[str, Any]:
    def row(engine: str, action: str, c: int) -> dict[str, Any]:
        return next(x for x in r["load"] if x["engine"] == engine and x["action"] == action and x["concurrency"] == c)

    out: dict[str, Any] = {}
    for action in ("enhance", "chat", "chat_stateful", "chat_stateful_cold"):
        lone = row("ours", action, 1)["p50_s"]
        for c in sorted({x["concurrency"] for x in r["load"] if x["action"] == action}):
            ours, base = row("ours", action, c), row("baseline", action, c)
            out[f"{action}_c{c}_speedup"] = round(ours["jobs_per_s"] / base["jobs_per_s"], 2)
            out[f"{action}_c{c}_p95_over_lone"] = round(ours["p95_s"] / lone, 2)
    out["prefill_speedup"] = r["prefill"]["speedup"]
    out["cache_hit_p50_ms_memory"] = r["cache_hits"]["memory"]["p50_ms"]
    out["stream_ttft_share"] = r["streaming"]["ttft_share"]
    out["warm_start_ready_s"] = r["cold_start"]["with_converted_cache"]["start_to_ready_s"]
    return out


if __name__ == "__main__":
    main()
