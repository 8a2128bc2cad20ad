"""Both engines side by side, in one run, on the same model, prompts and seeds:
`python -m bench.engines` (part of `make bench`).

Per configuration (the transformers engine; vLLM as it starts by default; vLLM computing on
every core, CPU only): start-up time; jobs/s and p50/p95 latency at concurrency 1 and 8 for uncached
enhance and for distinct stateful chats (each conversation has an earlier exchange in the
store); head-of-line: an 8-token chat submitted while a 400-token chat decodes, its latency
against its lone latency. Prints a table and saves bench/results/engines-latest.json (plus a
timestamped copy).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

from handler.app import Worker
from shared.engine import Engine
from shared.engine.factory import build_engine
from shared.settings import load_settings
from shared.store import MemoryStore

RESULTS = Path(__file__).parent / "results"
SUBJECTS = ["a lighthouse", "a fox", "a market", "a glacier", "a violin", "a desert road", "a tram", "an orchard"]
# Jobs per sweep: at concurrency 8, 24 jobs keep 8 in flight for most of the sweep (continuous
# batching refills a slot as a reply ends), so jobs/s is a throughput; with only 8 jobs it would
# be the time of the single longest reply in one wave.
JOBS = 24
# The configurations measured: the transformers engine, and vLLM's CPU build as it starts by
# default (one core reserved for the frontend, computing on the other) and with both cores
# computing (VLLM_CPU_NUM_OF_RESERVED_CPU=0). On CUDA the core reservation does not apply.
CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "transformers": ("transformers", {}),
    "vllm": ("vllm", {}),
    "vllm-all-cores": ("vllm", {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}),
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(worker: Worker, payload: dict[str, Any]) -> float:
    started = time.perf_counter()
    out = await worker.handle({"id": "bench", "input": payload})
    if not out.get("success"):
        raise RuntimeError(f"bench job failed: {out}")
    return time.perf_counter() - started


async def sweep(worker: Worker, payloads: list[dict[str, Any]], concurrency: int) -> dict[str, float]:
    """All payloads, `concurrency` at a time; jobs/s over the whole sweep and per-job latency."""
    gate = asyncio.Semaphore(concurrency)

    async def one(payload: dict[str, Any]) -> float:
        async with gate:
            return await timed(worker, payload)

    started = time.perf_counter()
    latencies = list(await asyncio.gather(*(one(p) for p in payloads)))
    wall = time.perf_counter() - started
    return {
        "jobs_per_s": round(len(payloads) / wall, 3),
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(pct(latencies, 0.95), 3),
    }


def enhance_jobs(round_: int) -> list[dict[str, Any]]:
    return [
        {
            "action": "enhance",
            "prompt": f"{SUBJECTS[i % len(SUBJECTS)]} at dusk, round {round_}, take {i}",  # uncached: all distinct
            "job_type": "sdxl_image_fast",
            "seed": 7,
        }
        for i in range(JOBS)
    ]


async def stateful_jobs(worker: Worker, round_: int) -> list[dict[str, Any]]:
    """JOBS distinct conversations, each with one earlier exchange stored (set up untimed)."""
    jobs = []
    for i in range(JOBS):
        subject = SUBJECTS[i % len(SUBJECTS)]
        cid = f"bench-{round_}-{i}"
        first = {
            "action": "chat",
            "conversation_id": cid,
            "message": f"Let's talk about {subject}.",
            "max_tokens": 8,
            "seed": 100 + i,
        }
        await worker.handle({"id": "setup", "input": first})
        jobs.append(
            {
                "action": "chat",
                "conversation_id": cid,
                "message": f"Describe {subject} in a sentence.",
                "max_tokens": 32,
                "seed": i,
            }
        )
    return jobs


async def head_of_line(worker: Worker, engine: Engine) -> dict[str, float]:
    short = {"action": "chat", "message": "Say hi.", "max_tokens": 8, "temperature": 0.0}
    long = {
        "action": "chat",
        "message": "Write a very long story about a dragon and a knight.",
        "max_tokens": 400,
        "temperature": 0.0,
    }
    lone = statistics.median([await timed(worker, short) for _ in range(3)])
    before = engine.info().extra["scheduler"]["tokens_generated"]
    story = asyncio.ensure_future(timed(worker, long))
    while engine.info().extra["scheduler"]["tokens_generated"] - before < 8:  # the story is decoding
        await asyncio.sleep(0.01)
    beside = await timed(worker, short)
    story_s = await story
    return {
        "lone_short_s": round(lone, 3),
        "short_beside_long_s": round(beside, 3),
        "ratio": round(beside / lone, 2),
        "long_s": round(story_s, 3),
    }


def measure(config: str) -> dict[str, Any]:
    name, env = CONFIGS[config]
    with mock.patch.dict(os.environ, env):  # read by vLLM's engine core when it starts; restored after
        return _measure(name)


def _measure(name: str) -> dict[str, Any]:
    settings = load_settings(  # ENFORCE_EAGER from the environment; unset: eager on a CPU, compiled on CUDA
        engine=name, enhance_cache_size=0, upstash_redis_rest_url=None, upstash_redis_rest_token=None
    )
    started = time.perf_counter()
    engine = build_engine(settings)
    engine.load()
    result: dict[str, Any] = {"start_s": round(time.perf_counter() - started, 2)}
    store = MemoryStore(max_turns=settings.max_history_turns, cache_size=0)
    worker = Worker(settings, engine, store)

    async def run_all() -> None:
        await timed(worker, {"action": "chat", "message": "warm up", "max_tokens": 4})
        for label, level in (("c1", 1), ("c8", 8)):
            result[f"enhance_{label}"] = await sweep(worker, enhance_jobs(level), level)
            result[f"stateful_{label}"] = await sweep(worker, await stateful_jobs(worker, level), level)
        for kind in ("enhance", "stateful"):
            result[f"{kind}_speedup_c8"] = round(
                result[f"{kind}_c8"]["jobs_per_s"] / result[f"{kind}_c1"]["jobs_per_s"], 2
            )
        result["head_of_line"] = await head_of_line(worker, engine)

    asyncio.run(run_all())
    result["engine_facts"] = {k: v for k, v in engine.info().extra.items() if not isinstance(v, dict)}
    engine.unload()
    return result


def main() -> None:
    names = [a for a in sys.argv[1:] if not a.startswith("-")] or list(CONFIGS)
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        sys.exit(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    load = os.getloadavg()
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count(), "load_before": [round(x, 2) for x in load]},
        "jobs_per_sweep": JOBS,
        "engines": {name: measure(name) for name in names},
    }
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2)
    (RESULTS / "engines-latest.json").write_text(text)
    (RESULTS / f"engines-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    print(
        f"{'engine':<16}{'start s':>9}{'enh c1/s':>10}{'enh c8/s':>10}{'x':>6}{'chat c1/s':>11}{'chat c8/s':>11}"
        f"{'x':>6}{'c8 p95 s':>10}{'HOL x':>7}"
    )
    for name, r in report["engines"].items():
        print(
            f"{name:<16}{r['start_s']:>9}{r['enhance_c1']['jobs_per_s']:>10}{r['enhance_c8']['jobs_per_s']:>10}"
            f"{r['enhance_speedup_c8']:>6}{r['stateful_c1']['jobs_per_s']:>11}{r['stateful_c8']['jobs_per_s']:>11}"
            f"{r['stateful_speedup_c8']:>6}{r['stateful_c8']['p95_s']:>10}{r['head_of_line']['ratio']:>7}"
        )


if __name__ == "__main__":
    main()
