"""What every engine promises (shared/engine/base.py), on the real embedded model, run once per
engine: the transformers engine and the vLLM engine (vLLM's CPU build here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import pytest

from shared.engine import Engine, Generation, GenerationParams, Message
from shared.errors import Overloaded
from tests.contract.conftest import run, run_stream, scheduler, worker_on

pytestmark = pytest.mark.model

SYSTEM = "You are a friendly assistant who answers in short, plain sentences about everyday things."
GREEDY = GenerationParams(max_tokens=24, temperature=0.0)
STORY = [Message("user", "Write a long story for my kid about a dragon.")]


def ask(text: str) -> list[Message]:
    return [Message("system", SYSTEM), Message("user", text)]


def settle(engine: Engine, deadline_s: float = 120.0) -> dict[str, Any]:
    """Polls until the engine holds no request (a condition with a deadline, not a timed hand-off)."""
    end = time.monotonic() + deadline_s
    while True:
        figures = scheduler(engine)
        if figures["in_flight"] == 0 and figures.get("engine_unfinished", 0) == 0:
            return figures
        assert time.monotonic() < end, figures
        time.sleep(0.05)


# ---- the Engine contract ----------------------------------------------------------------------
def test_prompt_tokens_are_the_rendered_prompt_counted_by_the_engines_tokenizer(engine: Engine) -> None:
    msgs = ask("Name a colour.")
    out = asyncio.run(engine.generate(msgs, GenerationParams(max_tokens=4, temperature=0.0)))
    assert out.prompt_tokens == engine.count_chat_tokens(msgs) > engine.count_tokens(SYSTEM)
    assert 1 <= out.completion_tokens <= 4 and out.finish_reason in {"stop", "length"}


def test_a_stop_string_ends_the_reply_before_it_and_counts_only_kept_tokens(engine: Engine) -> None:
    msgs = ask("Describe a sunny morning in a small village.")

    async def go() -> tuple[Generation, Generation, list[str | Generation]]:
        whole = await engine.generate(msgs, GenerationParams(max_tokens=40, temperature=0.0))
        word = whole.text.split()[len(whole.text.split()) // 2]
        params = GenerationParams(max_tokens=40, temperature=0.0, stop=(word,))
        cut = await engine.generate(msgs, params)
        streamed = [item async for item in engine.stream(msgs, params)]
        return whole, cut, streamed

    whole, cut, streamed = asyncio.run(go())
    word = whole.text.split()[len(whole.text.split()) // 2]
    assert cut.finish_reason == "stop" and word not in cut.text
    assert whole.text.startswith(cut.text) and len(cut.text) < len(whole.text)
    assert cut.completion_tokens < whole.completion_tokens
    *deltas, final = streamed
    assert "".join(cast(list[str], deltas)).strip() == cut.text == cast(Generation, final).text


def test_the_same_seed_gives_the_same_sampled_reply(engine: Engine) -> None:
    msgs = ask("Invent a name for a cat.")
    params = GenerationParams(max_tokens=12, temperature=1.0, top_p=0.95, seed=1234)

    async def go() -> list[Generation]:
        return [await engine.generate(msgs, params), await engine.generate(msgs, params)]

    first, second = asyncio.run(go())
    assert first.text == second.text and first.completion_tokens == second.completion_tokens


def test_a_stream_is_token_by_token_and_joins_to_the_reply(engine: Engine) -> None:
    async def go() -> list[str | Generation]:
        return [item async for item in engine.stream(ask("Say hello to a friend."), GREEDY)]

    *deltas, final = asyncio.run(go())
    assert isinstance(final, Generation) and len(deltas) >= 3 and all(isinstance(d, str) for d in deltas)
    assert "".join(cast(list[str], deltas)).strip() == final.text


def test_a_stream_whose_consumer_leaves_is_stopped_inside_the_engine(engine: Engine) -> None:
    """Without cancellation the story runs to its max_tokens (the control); a consumer that leaves
    after two deltas stops it within a few steps (the transformers engine stops the row; vLLM
    aborts the request)."""
    control = asyncio.run(engine.generate(STORY, GenerationParams(max_tokens=60, temperature=0.0)))
    assert control.finish_reason == "length"
    before = settle(engine)["tokens_generated"]

    async def go() -> None:
        params = GenerationParams(max_tokens=300, temperature=0.0)
        stream = cast(AsyncGenerator[str | Generation, None], engine.stream(STORY, params))
        got = 0
        async for item in stream:
            got += isinstance(item, str)
            if got == 2:
                break
        await stream.aclose()

    asyncio.run(go())
    generated = settle(engine)["tokens_generated"] - before
    assert generated < 60


def test_a_caller_that_gives_up_aborts_the_generation(engine: Engine) -> None:
    """A non-streamed call cancelled by its caller (what a timeout does) stops inside the engine."""
    before = settle(engine)["tokens_generated"]

    async def go() -> None:
        task = asyncio.ensure_future(engine.generate(STORY, GenerationParams(max_tokens=300, temperature=0.0)))
        while scheduler(engine)["tokens_generated"] == before:  # it is decoding now (a condition, polled)
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(go(), 120))
    assert settle(engine)["tokens_generated"] - before < 60  # of 300 allowed; the control above ran 60 and on


def test_the_judge_gives_a_probability_of_the_first_answer_against_the_second(engine: Engine) -> None:
    msgs = [Message("user", "Is the sky blue on a clear day? Answer yes or no.")]
    other = [Message("user", "Is fire cold? Answer yes or no.")]

    async def go() -> tuple[float, float, float]:
        return await engine.judge(msgs), await engine.judge(msgs, ("no", "yes")), await engine.judge(other)

    yes, no, fire = asyncio.run(go())
    assert 0.0 < yes < 1.0 and abs(yes + no - 1.0) < 1e-3  # one distribution, read from either side
    assert abs(yes - fire) > 1e-4  # and it is the prompt's: another question reads differently


def test_concurrent_requests_beyond_the_engines_bound_are_refused_as_overloaded(engine: Engine) -> None:
    async def go() -> list[Generation | BaseException]:
        calls = [engine.generate(ask(f"Say the number {i}."), GenerationParams(max_tokens=2)) for i in range(40)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    results = asyncio.run(go())
    refused = [r for r in results if isinstance(r, Overloaded)]
    served = [r for r in results if isinstance(r, Generation)]
    assert refused and served and len(refused) + len(served) == 40
    assert asyncio.run(engine.generate(ask("Hi."), GenerationParams(max_tokens=2))).completion_tokens >= 1


# ---- through the handler ------------------------------------------------------------------------
def test_chat_and_a_stateful_conversation(engine: Engine) -> None:
    worker = worker_on(engine)
    first = run(worker, {"action": "chat", "message": "My name is Ada.", "conversation_id": "c1", "max_tokens": 8})
    second = run(worker, {"action": "chat", "message": "What is my name?", "conversation_id": "c1", "max_tokens": 8})
    assert first["success"] is True and second["success"] is True, (first, second)
    assert second["history_turns_used"] == 2 and second["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"]


def test_distinct_stateful_conversations_at_once_keep_their_own_history(engine: Engine) -> None:
    worker = worker_on(engine)

    async def go() -> list[dict[str, Any]]:
        async def convo(i: int) -> dict[str, Any]:
            payload = {"action": "chat", "conversation_id": f"d{i}", "max_tokens": 6}
            await worker.handle({"id": f"a{i}", "input": {**payload, "message": f"Remember the number {i}."}})
            return await worker.handle({"id": f"b{i}", "input": {**payload, "message": "Which number?" * (i + 1)}})

        return list(await asyncio.gather(*(convo(i) for i in range(5))))

    outs = asyncio.run(go())
    assert all(o["success"] and o["history_turns_used"] == 2 for o in outs), outs
    assert len({o["usage"]["prompt_tokens"] for o in outs}) == 5  # each row carried its own conversation


JOB_TYPES = ["sdxl_image_fast", "sdxl_image_high", "video_fast", "video_high", "wan_7b_enhanced"]


@pytest.mark.parametrize("job_type", JOB_TYPES)
def test_enhance_from_the_model_for_every_job_type(engine: Engine, job_type: str) -> None:
    """The 135M model's draft is sometimes unusable for a profile (then the rule-based enhancement
    serves, by design): up to three fixed seeds, one of which must give the model's own draft."""
    worker = worker_on(engine)
    outs = [
        run(worker, {"action": "enhance", "prompt": "a lighthouse on a cliff", "job_type": job_type, "seed": seed})
        for seed in (1, 4, 5)
    ]
    assert all(o["success"] is True and "lighthouse" in o["enhanced_prompt"] for o in outs), outs
    assert "worker_fallback" in {o["enhancement_source"] for o in outs}, outs


# A test-only POLICY_DIR makes ordinary words of the model's greedy dragon story count as sexual
# terms; the message names a minor ("kid"), so a reply containing them is refused mid-stream.
REFUSED = ("magnificent", "creature", "scales", "fire", "wings", "cave")


def test_a_refusal_mid_stream_sends_no_refused_word_and_stops_the_engine(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "sexual_terms.txt").write_text("\n".join(REFUSED) + "\n", encoding="utf-8")
    worker = worker_on(engine, policy_dir=str(tmp_path), stream_enabled=True)
    max_tokens = 200
    control = asyncio.run(engine.generate(STORY, GenerationParams(max_tokens=max_tokens // 2, temperature=0.0)))
    assert control.finish_reason == "length"  # unrefused, the story would run past the bound below
    before = settle(engine)["tokens_generated"]
    payload = {"action": "chat", "message": STORY[0].content, "temperature": 0.0, "max_tokens": max_tokens}
    items = run_stream(worker, {**payload, "stream": True})
    *deltas, last = items
    sent = "".join(d["delta"] for d in deltas).lower()
    assert all(set(d) == {"delta"} for d in deltas)
    assert not any(word in sent for word in REFUSED), sent
    assert last["success"] is False and last["error_code"] == "content_policy_violation", last
    assert settle(engine)["tokens_generated"] - before < max_tokens // 2


def test_model_info_and_memory_status_name_the_engine(engine: Engine) -> None:
    worker = worker_on(engine)
    info = run(worker, {"action": "model_info"})
    memory = run(worker, {"action": "memory_status"})
    assert info["success"] is True and info["load"]["engine"] in {"transformers", "vllm"}
    assert info["model_loaded"] is True and info["model_parameters"] > 100_000_000
    assert memory["model_loaded"] is True and memory["total_ram_gb"] > 0


def test_a_dead_vllm_engine_core_makes_the_worker_unready_and_the_next_job_restarts_it(engine: Engine) -> None:
    """vLLM's engine core is its own process; when it dies, health says why and the next job
    starts a new one (the transformers engine's model thread has its own test in e2e)."""
    if engine.info().extra["engine"] != "vllm":
        pytest.skip("the engine core is vLLM's own process")
    import psutil

    cores = [p for p in psutil.Process().children(recursive=True) if "EngineCore" in " ".join([*p.cmdline(), p.name()])]
    assert cores, [p.name() for p in psutil.Process().children(recursive=True)]
    worker = worker_on(engine)
    for core in cores:
        core.kill()
    end = time.monotonic() + 60
    while engine.problem is None:  # vLLM's monitor notices the dead process (a condition, polled)
        assert time.monotonic() < end
        time.sleep(0.1)
    health = run(worker, {"action": "health"})
    assert health["ready"] is False and health["live"] is True and any("vLLM" in w for w in health["warnings"]), health
    out = run(worker, {"action": "chat", "message": "Hello again.", "max_tokens": 4})
    assert out["success"] is True, out
    assert run(worker, {"action": "health"})["ready"] is True and scheduler(engine)["restarts"] == 1
