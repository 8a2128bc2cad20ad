"""A slow shared store: stateful chat latency with Redis answering in 1.5 s per call
(`python -m bench.slow_store`, issue 21). The claim measured: a request waits on its own
conversation's store read only (one call; at most one REDIS_TIMEOUT_S), never on a write, its own
or another conversation's backlog.

Real parts: a private redis-server (durable, so it can be stopped and restarted without losing the
stored conversations), the local Upstash REST bridge in front of it (`infra/local/bridge.py`, its
delay changed while it runs), and the worker in-process (`handler.app.Worker` with the UpstashStore
its settings build, pointing at the bridge) on the embedded model. Every timed chat continues a
conversation whose earlier exchange is in the store; the i-th timed chat of every scenario has
the same message, seed and max_tokens, so the model does the same work in each:

  lone      bridge at 0 ms
  slow      bridge at 1500 ms per call; trial i runs right after lone trial i (pairs: the machine's
            load drifts less within a pair than across the run), both after the same prompt ran
            once untimed (so neither pays a prefill the other reuses from the engine's prefix cache)
  backlog   1500 ms, while the write-back drains other conversations' turns: 64 exchanges queued
            while Redis was stopped (through the store's append_turns, the call a chat's reply
            makes, so that 64 generations are not needed), then Redis back (slow); topped up
            whenever fewer than two write-back rounds are left, so other conversations' writes
            stay queued and in flight through every timed chat
  timeout   bridge slower than REDIS_TIMEOUT_S: the read gives up after one timeout

Inside each timed chat, the engine's generate and the store's read are timed too (wrappers on
the two methods): "besides the model" is the latency less the generate (the store, the policy,
tokenizing), which the model's noise on a loaded CPU does not reach; "read" is the store's share.
Store calls per chat are counted at the bridge (/_bridge/stats) once the chat's write-back is done.

Prints a table and saves bench/results/slow-store-latest.json (plus a timestamped copy).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import torch

from handler.app import Worker
from shared.engine import Generation, GenerationParams, Message
from shared.engine.factory import build_engine
from shared.settings import load_settings
from shared.store import Turn, conversation_namespace
from shared.store.upstash import WRITE_CONCURRENCY, UpstashStore
from tests.e2e.redis_helpers import Bridge, RedisServer

RESULTS = Path(__file__).parent / "results"
SUBJECTS = ["a lighthouse", "a fox", "a market", "a glacier", "a violin"]  # bench/engines.py's first five
TOKEN = "bench-slow-store-token"
SLOW_MS = 1500  # "Redis answering in 1.5 s per call"
TRIALS = len(SUBJECTS)  # timed chats per scenario (medians)
TIMEOUT_TRIALS = 2  # each costs a back-off (REDIS_RETRY_AFTER_S)
BACKLOG = 64  # other conversations queued at a time: 64 / WRITE_CONCURRENCY = 8 rounds of one slow call
MAX_TOKENS = 8
NAMESPACE = conversation_namespace(None, None)  # where a chat without user_id/project_id keeps its turns
ALLOWANCE = 1.05  # "at most one call": 5 % of it allowed for the timer and the HTTP round trip


def first(i: int) -> dict[str, Any]:
    return {"action": "chat", "message": f"Let's talk about {SUBJECTS[i]}.", "max_tokens": 4, "seed": i}


def second(i: int) -> dict[str, Any]:
    message = f"Describe {SUBJECTS[i]} in a sentence."
    return {"action": "chat", "message": message, "max_tokens": MAX_TOKENS, "seed": i}


class Bench:
    def __init__(self, worker: Worker, store: UpstashStore, bridge: Bridge, redis: RedisServer) -> None:
        self.worker, self.store, self.bridge, self.redis = worker, store, bridge, redis
        self.read_waits: list[float] = []
        self.queued_others = 0
        read = store.get_turns

        async def timed_read(namespace: str, conversation_id: str, limit: int) -> Any:
            started = time.perf_counter()
            try:
                return await read(namespace, conversation_id, limit)
            finally:
                self.read_waits.append(time.perf_counter() - started)

        store.get_turns = timed_read  # type: ignore[method-assign]  # the request's one store wait, timed
        self.generate_times: list[float] = []
        engine = worker.ctx.engine
        generate = engine.generate

        async def timed_generate(messages: list[Message], params: GenerationParams) -> Generation:
            started = time.perf_counter()
            try:
                return await generate(messages, params)
            finally:
                self.generate_times.append(time.perf_counter() - started)

        engine.generate = timed_generate  # type: ignore[method-assign]  # the model's share, timed

    async def job(self, payload: dict[str, Any]) -> dict[str, Any]:
        out = await self.worker.handle({"id": "bench", "input": payload})
        if not out.get("success"):
            raise RuntimeError(f"bench job failed: {out}")
        return out

    async def stats(self) -> dict[str, int]:
        return await asyncio.to_thread(self.bridge.stats)

    async def delay(self, ms: int) -> None:
        await asyncio.to_thread(self.bridge.set_delay, ms)

    async def until(self, condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not await condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not within {timeout} s")
            await asyncio.sleep(0.05)

    async def written(self) -> None:
        """Nothing queued, nothing in flight at the bridge: the write-back is done."""

        async def done() -> bool:
            return self.store.pending.total == 0 and (await self.stats())["in_flight"] == 0

        await self.until(done, "the write-back to finish")

    async def back_off_over(self) -> None:
        async def over() -> bool:
            return self.store.guard.backoff_left() <= 0

        await self.until(over, "the store's back-off to end")

    async def setup(self, cid: str, i: int) -> None:
        """The conversation's earlier exchange, written to the store (untimed)."""
        await self.job({**first(i), "conversation_id": cid})
        await self.written()

    def others_pending(self, cid: str) -> tuple[int, int]:
        """Other conversations with turns queued, and those turns."""
        keys = [k for k in self.store.pending.conversations() if k[1] != cid]
        return len(keys), sum(len(self.store.pending.peek(k)) for k in keys)

    async def chat(self, cid: str, i: int, count_calls: bool = True) -> dict[str, Any]:
        """One timed stateful chat; with `count_calls`, its store calls once its write-back is done."""
        before = (await self.stats())["received"] if count_calls else 0
        others_before = self.others_pending(cid)
        started = time.perf_counter()
        out = await self.job({**second(i), "conversation_id": cid})
        latency = time.perf_counter() - started
        read_wait = self.read_waits[-1]
        others_after = self.others_pending(cid)
        row = {
            "latency_s": round(latency, 3),
            "read_s": round(read_wait, 3),
            "generate_s": round(self.generate_times[-1], 3),
            "besides_model_s": round(latency - self.generate_times[-1], 3),
            "completion_tokens": out["usage"]["completion_tokens"],
            "history_turns_used": out["history_turns_used"],
            "warnings": out.get("warnings", []),
        }
        if others_before[0] or others_after[0]:
            row["other_conversations_pending"] = [others_before[0], others_after[0]]  # at request, at reply
            row["other_turns_pending"] = [others_before[1], others_after[1]]
        if count_calls:
            await self.written()
            row["store_calls"] = (await self.stats())["received"] - before
        return row

    async def lone_and_slow(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        for i in range(TRIALS):
            for name in ("prime", "lone", "slow"):
                await self.setup(f"{name}-{i}", i)
        lone, slow = [], []
        for i in range(TRIALS):
            # the same prompt once untimed first: the engine's prefix cache then serves lone and slow alike
            # (else the first of the pair pays the prefill the second reuses)
            await self.job({**second(i), "conversation_id": f"prime-{i}"})
            await self.written()
            lone.append(await self.chat(f"lone-{i}", i))
            await self.delay(SLOW_MS)
            slow.append(await self.chat(f"slow-{i}", i))
            await self.delay(0)
        return lone, slow

    async def queue_others(self, n: int) -> None:
        """Another `n` conversations' exchanges queued for write-back (what a chat's reply queues)."""
        for _ in range(n):
            now = time.time()
            turns = [Turn("user", f"note {self.queued_others}", now), Turn("assistant", "noted", now)]
            await self.store.append_turns(NAMESPACE, f"other-{self.queued_others}", turns)
            self.queued_others += 1

    async def backlog(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Redis stopped; other conversations' turns queue; Redis back, slow; chats timed as the backlog drains."""
        for i in range(TRIALS):
            await self.setup(f"backlog-{i}", i)
        await self.delay(SLOW_MS)
        await asyncio.to_thread(self.redis.stop)
        await self.queue_others(BACKLOG)

        async def failed() -> bool:
            return self.store.guard.failure is not None

        await self.until(failed, "the write-back to find Redis stopped")
        facts: dict[str, Any] = {
            "outage_failure": self.store.guard.failure,
            "turns_queued_in_outage": self.store.pending.total,
        }
        await asyncio.to_thread(self.redis.restart)
        await self.until(self._bridge_reaches_redis, "the bridge to reach the restarted Redis")
        await self.back_off_over()

        async def draining() -> bool:
            return (await self.stats())["in_flight"] > 0

        await self.until(draining, "the write-back to start")
        rows = []
        for i in range(TRIALS):
            if self.others_pending(f"backlog-{i}")[0] < 2 * WRITE_CONCURRENCY:  # keep two rounds queued at least
                await self.queue_others(BACKLOG)
            rows.append(await self.chat(f"backlog-{i}", i, count_calls=False))
        started = time.perf_counter()
        await self.written()
        facts["drain_after_last_s"] = round(time.perf_counter() - started, 2)
        facts["other_conversations_queued"] = self.queued_others
        await self.delay(0)
        return rows, facts

    async def _bridge_reaches_redis(self) -> bool:
        return await asyncio.to_thread(self.bridge.command, "PING") is not None  # None: the bridge's Redis error

    async def beyond_timeout(self, ms: int) -> list[dict[str, Any]]:
        """The bridge slower than REDIS_TIMEOUT_S: the read gives up after one timeout, history from worker memory."""
        for i in range(TIMEOUT_TRIALS):
            await self.setup(f"timeout-{i}", i)
        rows = []
        for i in range(TIMEOUT_TRIALS):
            await self.delay(ms)
            await self.back_off_over()  # the previous trial's failure: each chat meets a store it may try
            rows.append(await self.chat(f"timeout-{i}", i, count_calls=False))
            await self.delay(0)
            await self.written()  # after the back-off, the write-back writes the chat's turns by itself
        return rows


def median(rows: list[dict[str, Any]], field: str) -> float:
    return round(statistics.median(r[field] for r in rows), 3)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "p50_s": median(rows, "latency_s"),
        "min_s": min(r["latency_s"] for r in rows),
        "max_s": max(r["latency_s"] for r in rows),
        "generate_p50_s": median(rows, "generate_s"),
        "besides_model_p50_s": median(rows, "besides_model_s"),
        "besides_model_max_s": max(r["besides_model_s"] for r in rows),
        "read_p50_s": median(rows, "read_s"),
        "read_max_s": max(r["read_s"] for r in rows),
        "completion_tokens": [r["completion_tokens"] for r in rows],
        "trials": rows,
    }
    if all("store_calls" in r for r in rows):
        out["store_calls_per_chat"] = sorted({r["store_calls"] for r in rows})
    return out


async def measure(bench: Bench, result: dict[str, Any]) -> None:
    began = time.perf_counter()

    def stage(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {text}", flush=True)

    timeout_ms = int(bench.store.guard.timeout_s * 1000) + 1000
    await bench.job({"action": "chat", "conversation_id": "warm-up", "message": "warm up", "max_tokens": 4})
    await bench.written()
    stage(f"1-2. lone (bridge at 0 ms) and slow ({SLOW_MS} ms per call), {TRIALS} pairs")
    lone, slow = await bench.lone_and_slow()
    result["lone"], result["slow"] = summary(lone), summary(slow)
    stage(f"3. backlog: {SLOW_MS} ms, {BACKLOG} other conversations queued in an outage, topped up")
    rows, facts = await bench.backlog()
    result["backlog"] = {**summary(rows), **facts}
    stage(f"4. beyond the timeout: bridge at {timeout_ms} ms")
    result["timeout"] = {**summary(await bench.beyond_timeout(timeout_ms)), "bridge_delay_ms": timeout_ms}
    stage("done")


def verdict(r: dict[str, Any]) -> dict[str, Any]:
    call_s, timeout_s = SLOW_MS / 1000, r["settings"]["redis_timeout_s"]
    out: dict[str, Any] = {"one_call_s": call_s, "one_timeout_s": timeout_s, "lone_p50_s": r["lone"]["p50_s"]}
    out["lone_spread_s"] = round(r["lone"]["max_s"] - r["lone"]["min_s"], 3)
    # The measure, (latency - lone latency) / one call, twice: on the whole latency (slow: the
    # median of the pairs' differences), and on the latency besides the model's generate (what the
    # request waited on everything else: the store, the policy, tokenizing), which the model's own
    # noise on a loaded CPU does not reach.
    for kind, field, lone in (
        ("", "latency_s", r["lone"]["p50_s"]),
        ("besides_model_", "besides_model_s", r["lone"]["besides_model_p50_s"]),
    ):
        pairs = zip(r["lone"]["trials"], r["slow"]["trials"], strict=True)
        out[f"slow_{kind}extra_s"] = round(statistics.median(s[field] - x[field] for x, s in pairs), 3)
        out[f"backlog_{kind}extra_s"] = round(median(r["backlog"]["trials"], field) - lone, 3)
        out[f"timeout_{kind}extra_s"] = round(median(r["timeout"]["trials"], field) - lone, 3)
        for name in ("slow", "backlog"):
            out[f"{name}_{kind}extra_over_one_call"] = round(out[f"{name}_{kind}extra_s"] / call_s, 3)
        out[f"timeout_{kind}extra_over_one_timeout"] = round(out[f"timeout_{kind}extra_s"] / timeout_s, 3)
        out[f"{kind}target_met"] = bool(
            out[f"slow_{kind}extra_over_one_call"] <= ALLOWANCE
            and out[f"backlog_{kind}extra_over_one_call"] <= ALLOWANCE
            and out[f"timeout_{kind}extra_over_one_timeout"] <= ALLOWANCE
        )
    # when the lone latencies spread over more than a call, a whole-latency difference of one call
    # cannot be told from the model's noise
    out["whole_latency_conclusive"] = out["lone_spread_s"] < call_s
    # the store's share, timed at the store: one call even behind a backlog, one timeout beyond it
    out["store_read_within_bound"] = bool(
        r["slow"]["read_max_s"] <= ALLOWANCE * call_s
        and r["backlog"]["read_max_s"] <= ALLOWANCE * call_s
        and r["timeout"]["read_max_s"] <= ALLOWANCE * timeout_s
    )
    return out


def table(r: dict[str, Any]) -> None:
    s = r["summary"]
    print(
        f"{'scenario':<9}{'bridge ms':>10}{'p50 s':>8}{'min s':>7}{'max s':>7}{'gen s':>7}{'other s':>8}"
        f"{'read s':>8}{'extra s':>9}{'/ call':>8}{'other+ s':>9}{'/ call':>8}{'calls':>7}"
    )
    delays = {"lone": 0, "slow": SLOW_MS, "backlog": SLOW_MS, "timeout": r["timeout"]["bridge_delay_ms"]}
    for name, ms in delays.items():
        row = r[name]
        cells: list[Any] = ["", "", "", ""]
        if name != "lone":
            per = "timeout" if name == "timeout" else "call"
            cells = [
                s[f"{name}_extra_s"],
                s[f"{name}_extra_over_one_{per}"],
                s[f"{name}_besides_model_extra_s"],
                s[f"{name}_besides_model_extra_over_one_{per}"],
            ]
        calls = ",".join(str(c) for c in row.get("store_calls_per_chat", [])) or "-"
        print(
            f"{name:<9}{ms:>10}{row['p50_s']:>8}{row['min_s']:>7}{row['max_s']:>7}{row['generate_p50_s']:>7}"
            f"{row['besides_model_p50_s']:>8}{row['read_p50_s']:>8}{cells[0]:>9}{cells[1]:>8}{cells[2]:>9}"
            f"{cells[3]:>8}{calls:>7}"
        )
    print(
        "gen: the model's generate; other: the latency besides it; read: the store read inside it; extra: p50 "
        "less lone's (slow: median of the pairs); other+: the same on `other`; / call: over one call (timeout "
        "row: over one REDIS_TIMEOUT_S); calls: store calls per chat at the bridge, its background write included"
    )
    b = r["backlog"]
    print(
        f"backlog: {b['turns_queued_in_outage']} turns queued while Redis was stopped ({b['outage_failure']}), "
        f"{b['other_conversations_queued']} other conversations in all; other conversations pending "
        f"[at request, at reply]: {[t.get('other_conversations_pending') for t in b['trials']]}"
    )
    print(f"one call {s['one_call_s']} s; one timeout (REDIS_TIMEOUT_S) {s['one_timeout_s']} s")
    whole = "met" if s["target_met"] else "NOT met"
    if not s["whole_latency_conclusive"]:
        whole += f" (inconclusive: the lone latencies spread over {s['lone_spread_s']} s, more than a call)"
    print(f"target, whole latency: {whole}")
    print(f"target, latency besides the model: {'met' if s['besides_model_target_met'] else 'NOT met'}")
    print(f"load {r['machine']['load_before']} -> {r['machine']['load_after']}; {r['duration_s']} s in all")


def main() -> None:
    wall = time.perf_counter()
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu": platform.machine(),
            "cores": os.cpu_count(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-slow-store-") as tmp:
        try:
            redis = RedisServer(data_dir=Path(tmp))  # durable: a restart keeps the stored conversations
        except RuntimeError as exc:
            sys.exit(f"bench.slow_store: {exc}")
        bridge = Bridge(redis.url, TOKEN, Path(tmp) / "bridge.log")
        try:
            settings = load_settings(
                engine="transformers",
                enhance_cache_size=0,
                upstash_redis_rest_url=bridge.url,
                upstash_redis_rest_token=TOKEN,
                redis_key_prefix=f"bench-slow-{uuid.uuid4().hex[:6]}",
            )
            report["settings"] = {
                "redis_timeout_s": settings.redis_timeout_s,
                "redis_retry_after_s": settings.redis_retry_after_s,
                "write_concurrency": WRITE_CONCURRENCY,
                "slow_ms": SLOW_MS,
                "trials": TRIALS,
                "max_tokens": MAX_TOKENS,
            }
            engine = build_engine(settings)
            engine.load()
            report["model"] = engine.info().model_name
            report["machine"]["torch_threads"] = torch.get_num_threads()
            worker = Worker(settings, engine)  # the UpstashStore its settings build, probed at start
            store = worker.ctx.store
            assert isinstance(store, UpstashStore)
            asyncio.run(measure(Bench(worker, store, bridge, redis), report))
            engine.unload()
        finally:
            bridge.stop()
            redis.stop()
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["summary"] = verdict(report)
    report["duration_s"] = round(time.perf_counter() - wall, 1)
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2)
    (RESULTS / "slow-store-latest.json").write_text(text)
    (RESULTS / f"slow-store-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    table(report)


if __name__ == "__main__":
    main()
