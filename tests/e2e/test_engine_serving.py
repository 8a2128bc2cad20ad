"""The serving path on the real model: stop strings, conversations in one batch, cancellation,
retries that never repeat streamed text, the judge, unload, and sampling that leaves torch's
global RNG alone.

No test assumes how fast the model is: where one needs a generation still running, the model's
forward is held (HeldForward) until the test has done what it must do mid-generation."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncGenerator, Iterator
from typing import Any, cast

import pytest
import torch

from shared.engine import Generation, GenerationParams, Message
from shared.engine.hf_engine import TransformersEngine
from shared.engine.hf_engine.scheduler import Job
from shared.errors import EngineNotLoaded
from shared.settings import load_settings

pytestmark = pytest.mark.model

SYSTEM = "You are a friendly assistant who answers in short, plain sentences about everyday things."
GREEDY = GenerationParams(max_tokens=24, temperature=0.0)


@pytest.fixture(scope="module")
def engine() -> Iterator[TransformersEngine]:
    # A wide batch window: the concurrent calls of a test surely share one batch.
    eng = TransformersEngine(load_settings(batch_window_ms=300, max_batch_size=8, prefix_cache_entries=16))
    eng.load()
    yield eng


def conversation(i: int, turns: int) -> list[Message]:
    """A distinct conversation with `turns` earlier exchanges, then a new question."""
    msgs = [Message("system", SYSTEM)]
    for t in range(turns):
        msgs += [Message("user", f"Tell me fact {t} about topic {i}."), Message("assistant", f"Fact {t}: {i * 7 + t}.")]
    return [*msgs, Message("user", f"Now summarise topic {i} in one line.")]


class HeldForward:
    """The model's forward, held after `after` calls until `release` is set: a generation that is
    surely still running, on any hardware. `held` is set once a call waits."""

    def __init__(self, model: Any, after: int) -> None:
        self.forward, self.after, self.calls = model.forward, after, 0
        # generate() reads forward's parameters to pick its inputs (position_ids for padded rows)
        self.__signature__ = inspect.signature(model.forward)
        self.held, self.release = threading.Event(), threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls > self.after and not self.release.is_set():
            self.held.set()
            self.release.wait(120)  # bounded: a test that never releases fails instead of hanging
        return self.forward(*args, **kwargs)


async def held(gate: HeldForward) -> None:
    assert await asyncio.to_thread(gate.held.wait, 120), "the model never reached the held step"


def jobs_of(engine: TransformersEngine) -> list[Job]:
    """Records every job the engine submits."""
    seen: list[Job] = []
    submit = engine._scheduler.submit

    def spy(job: Job) -> None:
        seen.append(job)
        submit(job)

    engine._scheduler.submit = spy  # type: ignore[method-assign]
    return seen


def test_a_stop_string_ends_the_row_and_never_streams_past_it(engine: TransformersEngine) -> None:
    msgs = conversation(1, 0)

    async def go() -> tuple[Generation, Generation, list[str | Generation]]:
        whole = await engine.generate(msgs, GREEDY)
        words = whole.text.split()
        stop = f" {words[3]}"  # a string the model surely writes, a few words in
        cut = await engine.generate(msgs, GenerationParams(max_tokens=24, temperature=0.0, stop=(stop,)))
        items = [i async for i in engine.stream(msgs, GenerationParams(max_tokens=24, temperature=0.0, stop=(stop,)))]
        return whole, cut, items

    whole, cut, items = asyncio.run(go())
    stop = f" {whole.text.split()[3]}"
    assert cut.text == whole.text[: whole.text.index(stop)].strip()
    assert cut.finish_reason == "stop"
    assert 0 < cut.completion_tokens < whole.completion_tokens
    assert cut.completion_tokens == engine.count_tokens(whole.text[: whole.text.index(stop)])
    streamed = "".join(i for i in items if isinstance(i, str))
    assert stop not in streamed and streamed.strip() == cut.text
    final = items[-1]
    assert isinstance(final, Generation) and final.completion_tokens == cut.completion_tokens


async def behind_a_held_job(engine: TransformersEngine, gate: HeldForward, seen: list[Job]) -> asyncio.Future[Any]:
    """A short generation that holds the model thread (its second step waits on `gate`), so jobs
    submitted meanwhile all wait in the queue, however slowly they arrive; release it once they have."""
    # no system prompt: it shares no cached prefix with the conversations it holds back
    alone = [Message("user", "Say one word.")]
    blocker = asyncio.ensure_future(engine.generate(alone, GenerationParams(max_tokens=2, temperature=0.0)))
    await held(gate)
    seen.clear()
    return blocker


async def all_queued(seen: list[Job], n: int) -> None:
    while len(seen) < n:  # polled: every job is submitted (wait_for around the test bounds it)
        await asyncio.sleep(0.01)


def test_six_concurrent_stateful_conversations_run_as_one_generate(
    engine: TransformersEngine, monkeypatch: Any
) -> None:
    chats = [conversation(i, 3 + i % 4) for i in range(6)]  # distinct heads of 3-6 earlier turns
    plain = TransformersEngine(load_settings(prefix_cache_entries=0))
    plain.load()
    seen = jobs_of(engine)

    async def go() -> tuple[list[Generation], list[Generation]]:
        alone = [await plain.generate(c, GREEDY) for c in chats]
        gate = HeldForward(engine._model, after=1)
        monkeypatch.setattr(engine._model, "forward", gate)
        before = engine._scheduler.batches_run, engine.info().extra["scheduler"]["generate_calls"]
        blocker = await behind_a_held_job(engine, gate, seen)
        running = asyncio.gather(*(engine.generate(c, GREEDY) for c in chats))
        await all_queued(seen, len(chats))
        gate.release.set()
        await blocker
        together = await running
        after = engine._scheduler.batches_run, engine.info().extra["scheduler"]["generate_calls"]
        assert (after[0] - before[0], after[1] - before[1]) == (2, 2)  # the blocker's, then one for all six
        return alone, list(together)

    alone, together = asyncio.run(asyncio.wait_for(go(), 300))
    # each row on its own prefix's cache, padded, gives the text it gives alone without any cache
    assert [g.text for g in together] == [g.text for g in alone]


def test_six_concurrent_stateful_chats_through_the_handler_run_as_one_generate(
    engine: TransformersEngine, monkeypatch: Any
) -> None:
    from handler.app import Worker
    from shared.store.base import DEFAULT_NAMESPACE, Turn

    worker = Worker(load_settings(batch_window_ms=300, max_batch_size=8), engine)
    seen = jobs_of(engine)

    async def go() -> list[dict[str, Any]]:
        for i in range(6):  # six conversations, each with 3-6 earlier exchanges in the store
            turns = [Turn(m.role, m.content) for m in conversation(10 + i, 3 + i % 4)[1:-1]]  # type: ignore[arg-type]
            await worker.ctx.store.append_turns(DEFAULT_NAMESPACE, f"serving-{i}", turns)
        gate = HeldForward(engine._model, after=1)
        monkeypatch.setattr(engine._model, "forward", gate)
        before = engine._scheduler.batches_run, engine.info().extra["scheduler"]["generate_calls"]
        blocker = await behind_a_held_job(engine, gate, seen)
        running = asyncio.gather(
            *(
                worker.handle(
                    {
                        "input": {
                            "action": "chat",
                            "message": "And then?",
                            "conversation_id": f"serving-{i}",
                            "max_tokens": 8,
                        }
                    }
                )
                for i in range(6)
            )
        )
        await all_queued(seen, 6)
        gate.release.set()
        await blocker
        outs = await running
        after = engine._scheduler.batches_run, engine.info().extra["scheduler"]["generate_calls"]
        assert (after[0] - before[0], after[1] - before[1]) == (2, 2)  # the blocker's, then one for all six
        return list(outs)

    outs = asyncio.run(asyncio.wait_for(go(), 300))
    assert all(o["success"] for o in outs), outs
    prompt_tokens = [o["usage"]["prompt_tokens"] for o in outs]
    assert len(set(prompt_tokens)) > 1 and min(prompt_tokens) > 60  # each row carried its own history


def test_a_stream_whose_consumer_leaves_stops_within_a_few_steps(engine: TransformersEngine, monkeypatch: Any) -> None:
    seen = jobs_of(engine)
    gate = HeldForward(engine._model, after=12)  # it cannot run far ahead of a consumer that left
    monkeypatch.setattr(engine._model, "forward", gate)

    async def go() -> None:
        params = GenerationParams(max_tokens=200, temperature=0.0)
        stream = cast(AsyncGenerator[str | Generation, None], engine.stream(conversation(2, 1), params))
        got = 0
        async for item in stream:
            got += isinstance(item, str)
            if got == 2:
                break
        await stream.aclose()  # the consumer failed or gave up
        gate.release.set()
        job = seen[-1]
        while job.progress is None or not job.progress.ended or engine._scheduler._running:
            await asyncio.sleep(0.01)

    asyncio.run(asyncio.wait_for(go(), 120))
    progress = seen[-1].progress
    assert seen[-1].cancelled and progress.finish == "length" and len(progress.ids) < 50  # of 200 allowed


def test_a_caller_timeout_cancels_the_generation(engine: TransformersEngine, monkeypatch: Any) -> None:
    seen = jobs_of(engine)
    gate = HeldForward(engine._model, after=3)  # mid-generation, however fast the model is
    monkeypatch.setattr(engine._model, "forward", gate)

    async def go() -> None:
        call = asyncio.ensure_future(engine.generate(conversation(3, 1), GenerationParams(max_tokens=400)))
        await held(gate)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call, 0.1)  # the caller gives up while the generation runs
        gate.release.set()
        job = seen[-1]
        while job.progress is None or not job.progress.ended or engine._scheduler._running:
            await asyncio.sleep(0.01)

    asyncio.run(asyncio.wait_for(go(), 120))
    progress = seen[-1].progress
    assert seen[-1].cancelled and progress.finish == "length" and len(progress.ids) < 400  # not EOS, not done


def test_a_retried_batch_streams_each_token_once(engine: TransformersEngine, monkeypatch: Any) -> None:
    prompts = [conversation(4, 1), conversation(5, 2)]

    async def plain() -> list[Generation]:
        return [await engine.generate(p, GREEDY) for p in prompts]

    expected = asyncio.run(plain())
    model = engine._model
    forward = model.forward
    calls = {"n": 0}

    def oom_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 6:  # mid-generation, after some tokens were streamed
            raise torch.cuda.OutOfMemoryError("injected")
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", oom_once)
    before = engine.info().extra["scheduler"]["generate_calls"]

    async def streamed() -> list[list[str | Generation]]:
        async def one(p: list[Message]) -> list[str | Generation]:
            return [i async for i in engine.stream(p, GREEDY)]

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    outs = asyncio.run(streamed())
    assert engine.info().extra["scheduler"]["generate_calls"] - before == 3  # the batch, then each half
    for items, want in zip(outs, expected, strict=True):
        final = items[-1]
        assert isinstance(final, Generation) and final.text == want.text
        assert "".join(i for i in items if isinstance(i, str)).strip() == want.text  # nothing sent twice


def test_judge_is_one_batched_forward_pass_giving_a_probability(engine: TransformersEngine) -> None:
    question = [Message("user", "Is the sky blue on a clear day? Answer yes or no.")]

    async def go() -> list[float]:
        forwards = engine._runner.forward_calls if engine._runner else 0
        p = await asyncio.gather(
            engine.judge(question), engine.judge(question, ("no", "yes")), engine.judge(conversation(6, 1))
        )
        assert engine._runner is not None and engine._runner.forward_calls - forwards == 1
        return list(p)

    yes, no, other = asyncio.run(go())
    assert all(0.0 <= p <= 1.0 for p in (yes, no, other))
    assert yes + no == pytest.approx(1.0, abs=1e-4)  # the same two logits, the other way round


def test_unseeded_sampling_leaves_the_global_rng_alone(engine: TransformersEngine) -> None:
    torch.manual_seed(1234)
    expected = torch.rand(4)
    torch.manual_seed(1234)
    asyncio.run(engine.generate(conversation(7, 0), GenerationParams(max_tokens=8, temperature=0.9)))
    assert torch.equal(torch.rand(4), expected)


def test_unload_stops_the_model_thread_first() -> None:
    eng = TransformersEngine(load_settings())
    eng.load()
    gate = HeldForward(eng._model, after=3)
    eng._model.forward = gate  # this model object is dropped by the unload

    async def go() -> None:
        running = asyncio.ensure_future(eng.generate(conversation(8, 0), GenerationParams(max_tokens=300)))
        await held(gate)  # the generation is surely still running
        unloading = asyncio.ensure_future(asyncio.to_thread(eng.unload))
        with pytest.raises(EngineNotLoaded):
            await running  # failed at once, while the model thread is still in its step
        assert not unloading.done()  # unload waits for the model thread to end
        gate.release.set()
        await unloading
        assert not eng._scheduler.alive and not eng.loaded

    asyncio.run(asyncio.wait_for(go(), 120))
    eng.load()
    again = asyncio.run(eng.generate(conversation(8, 0), GenerationParams(max_tokens=4, temperature=0.0)))
    assert again.completion_tokens > 0


def test_model_info_reports_the_loads_peak_host_ram(engine: TransformersEngine) -> None:
    facts = engine.info().extra
    assert facts["load_peak_host_ram_gb"] >= facts["host_ram_before_load_gb"] > 0.05
    assert facts["scheduler"]["fault"] is None and engine.problem is None
