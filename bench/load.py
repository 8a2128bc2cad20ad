"""Throughput and latency at several concurrency levels, through the handler.

Workloads: uncached enhance; stateless chat (no history); stateful chat: each job continues
its own conversation_id with 3-6 earlier exchanges in the store, the latest of them served
by this worker (warm: its prefix cache holds the head) or all written elsewhere (cold)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from handler.app import Worker
from shared.store.base import DEFAULT_NAMESPACE, Turn

ENHANCE_PROMPTS = [
    "a red fox in the snow",
    "old castle on a hill",
    "a cat on a sofa",
    "neon city at night",
    "portrait of a fisherman",
    "a dragon over mountains",
    "sunset beach with palm trees",
    "robot chef cooking",
    "a knight in armor",
    "cozy cabin in winter",
    "astronaut on mars",
    "a jazz singer on stage",
    "steampunk airship",
    "a samurai in rain",
    "lighthouse in a storm",
    "a bowl of ramen",
]
CHAT_MESSAGES = [f"In two sentences, tell me something interesting about {p}." for p in ENHANCE_PROMPTS]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


STATEFUL_TURNS = [  # earlier exchanges of the stateful conversations (3-6 per conversation)
    ("Hi! I'm planning a trip and need ideas.", "Happy to help. Where would you like to go, and when?"),
    ("Somewhere warm in spring, maybe by the sea.", "Southern Spain, Crete or the Algarve are lovely in April."),
    ("I like hiking more than beaches.", "Then Crete's gorges or Madeira's levada trails would suit you."),
    ("How long should I stay?", "A week gives time for four or five walks with rest days between."),
    ("What should I pack?", "Light layers, a rain jacket, broken-in boots and a small day pack."),
    ("Any tips for food?", "Try the local bakeries early, and book dinner where the locals queue."),
]


async def seed_conversations(worker: Worker, tag: str, n: int, earlier: int = 0) -> list[str]:
    """n distinct conversations, each with 3-6 (`earlier` more) exchanges already in the worker's store."""
    ids = []
    for i in range(n):
        cid = f"bench-{tag}-{i}"
        turns: list[Turn] = []
        for question, answer in STATEFUL_TURNS[: 3 + i % 4 - earlier]:
            topic = ENHANCE_PROMPTS[i % 16]
            turns += [Turn("user", f"{question} (about {topic})"), Turn("assistant", answer)]
        await worker.ctx.store.append_turns(DEFAULT_NAMESPACE, cid, turns)
        ids.append(cid)
    return ids


async def prepare_stateful(ours: Worker, baseline: Worker, n: int, warm: bool) -> list[str]:
    """The same conversations in both workers' stores. Warm: the latest of the 3-6 exchanges was
    served by `ours` (as when a conversation's previous turn reached this worker, whose prefix
    cache then holds its head); cold: all were written by someone else."""
    ids = await seed_conversations(ours, uuid.uuid4().hex[:8], n, earlier=1 if warm else 0)
    if warm:
        await asyncio.gather(*(ours.handle({"input": p}) for p in payloads("chat_stateful", n, ids)))
    for cid in ids:
        stored = await ours.ctx.store.get_turns(DEFAULT_NAMESPACE, cid, 100)
        await baseline.ctx.store.append_turns(DEFAULT_NAMESPACE, cid, stored.turns)
    return ids


def payloads(action: str, n: int, conversations: list[str] | None = None) -> list[dict[str, Any]]:
    if action.startswith("chat_stateful"):
        assert conversations is not None
        return [
            {
                "action": "chat",
                "message": CHAT_MESSAGES[i % 16],
                "conversation_id": cid,
                "max_tokens": 32,
                "temperature": 0.7,
                "seed": i,
            }
            for i, cid in enumerate(conversations)
        ]
    if action == "enhance":
        return [{"action": "enhance", "prompt": ENHANCE_PROMPTS[i % 16], "seed": i} for i in range(n)]
    return [
        {
            "action": "chat",
            "message": CHAT_MESSAGES[i % 16],
            "max_tokens": 32,
            "temperature": 0.7,
            "seed": i,
            "conversation_history": [],
        }
        for i in range(n)
    ]


async def run_level(
    worker: Worker, action: str, concurrency: int, jobs: int, conversations: list[str] | None = None
) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    failures = 0

    async def one(payload: dict[str, Any]) -> None:
        nonlocal failures
        async with gate:
            started = time.perf_counter()
            out = await worker.handle({"input": payload})
            latencies.append(time.perf_counter() - started)
            failures += 0 if out.get("success") else 1

    started = time.perf_counter()
    await asyncio.gather(*(one(p) for p in payloads(action, jobs, conversations)))
    wall = time.perf_counter() - started
    return {
        "action": action,
        "concurrency": concurrency,
        "jobs": jobs,
        "failures": failures,
        "jobs_per_s": round(jobs / wall, 3),
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(pct(latencies, 0.95), 3),
    }


ACTIONS = ("enhance", "chat", "chat_stateful", "chat_stateful_cold")


def sweep(
    ours: Worker, baseline: Worker, levels: list[int], actions: tuple[str, ...] = ACTIONS
) -> list[dict[str, Any]]:
    rows = []
    for action in actions:
        for c in levels if action != "chat_stateful_cold" else [1, 8]:
            jobs = max(8, c)
            convs = None
            if action.startswith("chat_stateful"):
                convs = asyncio.run(prepare_stateful(ours, baseline, jobs, warm=action == "chat_stateful"))
            for name, worker in (("baseline", baseline), ("ours", ours)):
                row = asyncio.run(run_level(worker, action, c, jobs, convs))
                rows.append({"engine": name, **row})
                print(
                    f"  {action:<18} c={c:<3} {name:<9} {row['jobs_per_s']:>7.2f} jobs/s  p50 {row['p50_s']:.2f}s"
                    f"  p95 {row['p95_s']:.2f}s",
                    flush=True,
                )
    return rows
