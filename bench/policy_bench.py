"""Policy micro-benchmark: what the rule layers cost per request, and what the judge adds.

Run: .venv/bin/python -m bench.policy_bench [--judge]
Prints a table and saves bench/results/policy_latest.json. "cold" clears the policy's
per-text cache before every check (every text read for the first time); "chat" is a
request as chat sends it: a new message, a system prompt and 10 history turns that the
previous request already read. --judge also times one judge question on the embedded
model (CPU here; the production model on its GPU is another number).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.policy import ContentPolicy

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
SYSTEM = "You are Mira, a friendly companion. Keep answers short and kind."


def cases() -> list[dict[str, Any]]:
    lines = (ROOT / "tests" / "data" / "policy_disguises.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def timed(fn: Callable[[], Any], before: Callable[[], Any] | None = None, rounds: int = 1) -> list[float]:
    out = []
    for _ in range(rounds):
        if before:
            before()
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "max_ms": round(ordered[-1], 3),
    }


def rules(policy: ContentPolicy) -> dict[str, dict[str, float]]:
    texts = [[c["text"], c.get("system_prompt") or "", *(t["content"] for t in c.get("history", []))] for c in cases()]
    clear = policy._findings.cache_clear
    cold = [ms for t in texts for ms in timed(lambda t=t: policy.assess(t), clear, rounds=5)]  # type: ignore[misc]
    history = [f"turn {i}: tell me more about the harbour and the boats" for i in range(10)]
    policy.assess(history)  # the previous request read these
    chat = [
        ms
        for i, c in enumerate(cases() * 3)
        for ms in timed(lambda c=c, i=i: policy.assess([f"{c['text']} #{i}", SYSTEM, *history]))  # type: ignore[misc]
    ]
    long_history = [f"turn {i}: " + "a fairly long message about travel plans and food " * 8 for i in range(40)]
    cold_long = timed(lambda: policy.assess(long_history), clear, rounds=20)
    return {
        "cold_one_case": summary(cold),
        "chat_new_message_cached_history": summary(chat),
        "cold_40_turns_x_400_chars": summary(cold_long),
    }


def judge_cost() -> dict[str, float]:
    from handler.app import build_judge
    from shared.engine.hf_engine import TransformersEngine
    from shared.settings import load_settings

    settings = load_settings(policy_judge="on")
    engine = TransformersEngine(settings)
    engine.load()
    judge = build_judge(settings, engine)
    assert judge is not None
    from shared.policy import JudgeInput

    text = JudgeInput("describe the nude model on the sofa", SYSTEM)
    asyncio.run(judge.score(text))  # warm-up
    samples = timed(lambda: asyncio.run(judge.score(text)), rounds=10)
    engine.unload()
    return summary(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", action="store_true", help="also time the judge on the embedded model")
    args = parser.parse_args()
    started = time.perf_counter()
    policy = ContentPolicy(adult_enabled=True)
    result: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
        "policy_init_ms": round((time.perf_counter() - started) * 1000, 1),
        "rules": rules(policy),
    }
    if args.judge:
        result["judge_embedded_cpu"] = judge_cost()
    for name, row in result["rules"].items():
        print(f"{name:<36} p50 {row['p50_ms']:>7.3f} ms   p95 {row['p95_ms']:>7.3f} ms   n={row['n']}")
    if "judge_embedded_cpu" in result:
        row = result["judge_embedded_cpu"]
        print(f"{'judge (embedded 135M, CPU)':<36} p50 {row['p50_ms']:>7.1f} ms   p95 {row['p95_ms']:>7.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "policy_latest.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
