"""GPU check: the serving path on a CUDA machine, with the configured model in bf16.

Run: `make gpu-check` (or `.venv/bin/python scripts/gpu_check.py`). MODEL_PATH names the
model (unset: the embedded SmolLM2). It checks sampled chat, seeded determinism alone vs
batched, stop strings, a stream refused mid-reply (a test-only POLICY_DIR makes the word
"the" refused), 16 concurrent mixed jobs and an enhance per job type, then prints tokens/s
per stream and in aggregate against the card's memory-bandwidth bound. Exit status 1 when
a check fails. Without CUDA it says so and exits 0: nothing is pretended.

Flags: `--json=PATH` saves every check and number; `--random-weights` for a shaped model
(scripts/shaped_model.py, e.g. Qwen2.5-7B's shape with random weights) skips the checks that
judge the model's words and excuses output-policy refusals of its noise; `--cpu-dry-run`
tries the script itself on CPU (not a GPU check). docs/BENCHMARKS.md section 7 has its runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

# Peak memory bandwidth (GB/s) of cards we may run on; decode at batch 1 cannot beat weights/bandwidth.
BANDWIDTH_GBS = {
    "H200": 4800,
    "H100 SXM": 3350,
    "H100 80GB HBM3": 3350,
    "H100 PCIe": 2000,
    "H100": 3350,
    "A100-SXM4-80GB": 2039,
    "A100": 1555,
    "RTX 6000 Ada": 960,
    "L40S": 864,
    "L40": 864,
    "RTX 4090": 1008,
    "A10G": 600,
    "L4": 300,
}
failures: list[str] = []
report: dict[str, Any] = {"checks": {}}
RANDOM_WEIGHTS = "--random-weights" in sys.argv  # a shaped model (scripts/shaped_model.py): text is noise


def check(name: str, ok: bool, detail: Any = "") -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {name} {detail}", flush=True)
    report["checks"][name] = {"ok": ok, "detail": str(detail)}
    if not ok:
        failures.append(name)


def skip(name: str) -> None:
    """Checks that judge the model's words mean nothing on random weights: said, not pretended."""
    print(f"  [skip] {name}: random weights write noise", flush=True)
    report["checks"][name] = {"ok": None, "detail": "skipped: random weights"}


def bandwidth(gpu: str) -> int | None:
    return next((bw for key, bw in BANDWIDTH_GBS.items() if key in gpu), None)


async def engine_checks(engine: Any) -> None:
    from shared.engine import GenerationParams, Message

    def ask(i: int) -> list[Message]:
        return [Message("system", "You are concise."), Message("user", f"Name {i + 2} colours, one per line.")]

    sampled = await engine.generate(ask(0), GenerationParams(max_tokens=32, temperature=0.8, top_p=0.9))
    check("sampled chat", sampled.completion_tokens > 0 and bool(sampled.text), repr(sampled.text[:60]))
    seeded = GenerationParams(max_tokens=32, temperature=0.9, seed=7)
    alone = await engine.generate(ask(1), seeded)
    batch = await asyncio.gather(
        engine.generate(ask(1), seeded), *(engine.generate(ask(i), GenerationParams(max_tokens=24)) for i in range(7))
    )
    check("seeded row: alone == in a batch of 8", batch[0].text == alone.text, repr(alone.text[:60]))
    stop = "\n"
    cut = await engine.generate(ask(3), GenerationParams(max_tokens=48, temperature=0.0, stop=(stop,)))
    whole = await engine.generate(ask(3), GenerationParams(max_tokens=48, temperature=0.0))
    deltas = [d async for d in engine.stream(ask(3), GenerationParams(max_tokens=48, temperature=0.0, stop=(stop,)))]
    streamed = "".join(d for d in deltas if isinstance(d, str))
    check(
        "stop string ends the row",
        stop not in cut.text.strip() and cut.completion_tokens <= whole.completion_tokens and stop not in streamed,
        f"{cut.completion_tokens} vs {whole.completion_tokens} tokens, finish={cut.finish_reason}",
    )
    p = await engine.judge([Message("user", "Is water wet? Answer yes or no.")])
    check("judge gives a probability", 0.0 <= p <= 1.0, round(p, 3))


async def content_checks(worker: Any, policy_worker: Any) -> None:
    from shared.enhance import load_profiles

    # The test-only lists make "the" a sexual term; the message names a minor, so a reply using it is refused.
    payload = {"action": "chat", "stream": True, "message": "Write a short story for my kid about a cat and a dog."}
    items = [i async for i in policy_worker.handle_stream({"input": payload})]
    text = "".join(str(i.get("delta", "")) for i in items)
    refused = items[-1].get("error_code") == "content_policy_violation"
    check("stream refused mid-reply, refused word never sent", refused and " the " not in f" {text} ", repr(text[-60:]))
    for job_type in load_profiles().names():
        out = await worker.handle({"input": {"action": "enhance", "prompt": "a red fox", "job_type": job_type}})
        source = out.get("enhancement_source")
        check(f"enhance {job_type} from the model", out.get("success") is True and source != "rule_based", source)


async def handler_checks(worker: Any, policy_worker: Any) -> None:
    from bench.load import ENHANCE_PROMPTS, seed_conversations
    from shared.enhance import load_profiles

    if RANDOM_WEIGHTS:
        skip("stream refused mid-reply, refused word never sent")
        for job_type in load_profiles().names():
            skip(f"enhance {job_type} from the model")
    else:
        await content_checks(worker, policy_worker)
    conversations = await seed_conversations(worker, "gpu", 4)
    jobs: list[dict[str, Any]] = []
    for i in range(16):
        kind = i % 4
        if kind == 0:
            jobs.append({"action": "chat", "message": f"Tell me about {ENHANCE_PROMPTS[i]}.", "max_tokens": 48})
        elif kind == 1:
            jobs.append({"action": "chat", "message": "And then?", "conversation_id": conversations[i // 4]})
        elif kind == 2:
            jobs.append({"action": "enhance", "prompt": ENHANCE_PROMPTS[i], "job_type": "video_fast", "seed": i})
        else:
            jobs.append({"action": "chat", "message": "Count to five.", "stream": True, "max_tokens": 32})
    started = time.perf_counter()
    outs = await asyncio.gather(*(collect(worker, j) for j in jobs))
    # Noise from random weights may be refused by the output policy: a clean refusal, not a failure.
    excused = ("content_policy_violation",) if RANDOM_WEIGHTS else ()
    bad = [j["action"] for j, o in zip(jobs, outs, strict=True) if not served(o, excused)]
    check("16 concurrent mixed jobs", not bad, f"{time.perf_counter() - started:.1f}s, failed: {bad}")


def served(out: dict[str, Any], excused: tuple[str, ...]) -> bool:
    return out.get("success") is not False or out.get("error_code") in excused


async def collect(worker: Any, payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("stream"):
        items = [i async for i in worker.handle_stream({"input": payload})]
        return dict(items[-1])
    return dict(await worker.handle({"input": payload}))


async def throughput(engine: Any, weights_gb: float, gpu: str) -> dict[str, Any]:
    from shared.engine import GenerationParams, Message

    params = GenerationParams(max_tokens=128, temperature=0.7, top_p=0.9)

    async def stream(i: int) -> tuple[int, float, float]:
        started, tokens, first = time.perf_counter(), 0, 0.0
        msgs = [Message("user", f"Write a long paragraph about the history of city number {i}.")]
        async for item in engine.stream(msgs, params):
            if isinstance(item, str):
                first = first or time.perf_counter() - started
            else:
                tokens = item.completion_tokens
        return tokens, time.perf_counter() - started, first

    out: dict[str, Any] = {}
    for n in (1, 8, 16):
        started = time.perf_counter()
        runs = await asyncio.gather(*(stream(i) for i in range(n)))
        wall = time.perf_counter() - started
        per = [t / s for t, s, _ in runs if s > 0]
        out[f"streams_{n}"] = {
            "per_stream_tok_s_min": round(min(per), 1),
            "aggregate_tok_s": round(sum(t for t, _, _ in runs) / wall, 1),
            "first_delta_s_max": round(max(f for _, _, f in runs), 3),
            "tokens": sum(t for t, _, _ in runs),
        }
    bw = bandwidth(gpu)
    out["bandwidth_bound_tok_s_per_stream"] = round(bw / weights_gb, 1) if bw else None
    out["card"] = {"name": gpu, "bandwidth_gb_s": bw, "weights_gb": round(weights_gb, 2)}
    return out


def policy_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="gpu-check-policy-"))
    (folder / "sexual_terms.txt").write_text("# test only: an ordinary word the model surely writes\nthe\n")
    return folder


def main() -> int:
    import torch

    dry_run = "--cpu-dry-run" in sys.argv  # tries this script on CPU; it is not a GPU check
    if not torch.cuda.is_available() and not dry_run:
        print("gpu-check: no CUDA device on this machine; nothing was run.")
        return 0
    from handler.app import Worker
    from shared.engine.hf_engine import TransformersEngine
    from shared.settings import load_settings

    device, dtype = ("cpu", "float32") if dry_run else ("cuda", "bfloat16")
    base = {"model_device": device, "model_dtype": dtype, "max_batch_size": 16, "enhance_cache_size": 0}
    settings = load_settings(**base)
    engine = TransformersEngine(settings)
    engine.load()
    info = engine.info()
    report["model"] = {"name": info.model_name, "gpu": info.gpu_name, "torch": torch.__version__, **info.extra}
    print(f"gpu-check: {info.model_name} on {info.gpu_name or device}, load {info.extra}", flush=True)
    worker = Worker(settings, engine)
    policy_worker = Worker(load_settings(**base, policy_dir=policy_dir()), engine)
    report["speed"] = asyncio.run(run_all(engine, worker, policy_worker, info))
    engine.unload()  # stops the model thread before the interpreter exits
    print(json.dumps(report["speed"], indent=2))
    print(f"gpu-check: {len(failures)} failed: {failures}" if failures else "gpu-check: all checks passed")
    target = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--json=")), None)
    if target:
        Path(target).write_text(json.dumps(report, indent=2))
    return 1 if failures else 0


async def run_all(engine: Any, worker: Any, policy_worker: Any, info: Any) -> dict[str, Any]:
    await engine_checks(engine)
    await handler_checks(worker, policy_worker)
    return await throughput(engine, info.model_size_gb * 2**30 / 1e9, info.gpu_name or "")


if __name__ == "__main__":
    sys.exit(main())
