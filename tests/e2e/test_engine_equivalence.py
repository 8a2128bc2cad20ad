"""Batching, prefix reuse and streaming give the same text as the plain path (greedy, real model)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from shared.engine import Generation, GenerationParams, Message
from shared.engine.hf_engine import TransformersEngine
from shared.settings import load_settings

pytestmark = pytest.mark.model

SYSTEM = (
    "You write prompts for the SDXL image model. Rewrite the user's idea as one line of short "
    "comma-separated tags: subject details, clothing, setting, lighting, camera, style."
)
PROMPTS = ["a red fox", "castle on a hill", "a cat on a sofa", "neon city at night", "old fisherman", "a dragon"]
GREEDY = GenerationParams(max_tokens=20, temperature=0.0, repetition_penalty=1.1)


def msgs(prompt: str) -> list[Message]:
    return [Message("system", SYSTEM), Message("user", prompt)]


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[TransformersEngine, TransformersEngine]]:
    plain = TransformersEngine(load_settings(prefix_cache_entries=0))
    reuse = TransformersEngine(load_settings(prefix_cache_entries=8))
    plain.load()
    reuse.load()
    yield plain, reuse


def test_batched_equals_one_at_a_time(engines: tuple[TransformersEngine, TransformersEngine]) -> None:
    plain, _ = engines

    async def go() -> tuple[list[Generation], list[Generation]]:
        alone = [await plain.generate(msgs(p), GREEDY) for p in PROMPTS]
        together = await asyncio.gather(*(plain.generate(msgs(p), GREEDY) for p in PROMPTS))
        return alone, list(together)

    alone, together = asyncio.run(go())
    assert plain._scheduler.largest_batch >= 4  # the concurrent calls really shared forward passes
    assert [g.text for g in together] == [g.text for g in alone]
    assert [g.completion_tokens for g in together] == [g.completion_tokens for g in alone]


def test_prefix_reuse_equals_plain(engines: tuple[TransformersEngine, TransformersEngine]) -> None:
    plain, reuse = engines

    async def go() -> tuple[list[str], list[str]]:
        a = [(await plain.generate(msgs(p), GREEDY)).text for p in PROMPTS]
        b = [(await reuse.generate(msgs(p), GREEDY)).text for p in PROMPTS]
        return a, b

    a, b = asyncio.run(go())
    assert reuse._prefixes.hits >= len(PROMPTS) - 1
    assert a == b

    async def together() -> list[str]:  # one batch: [shared cached prefix][padding][each suffix]
        return [g.text for g in await asyncio.gather(*(reuse.generate(msgs(p), GREEDY) for p in PROMPTS))]

    assert asyncio.run(together()) == a
    assert reuse._scheduler.largest_batch >= 4


def test_stream_equals_plain(engines: tuple[TransformersEngine, TransformersEngine]) -> None:
    plain, reuse = engines

    async def go() -> tuple[Generation, list[str | Generation]]:
        whole = await plain.generate(msgs("a lighthouse"), GREEDY)
        items = [item async for item in reuse.stream(msgs("a lighthouse"), GREEDY)]
        return whole, items

    whole, items = asyncio.run(go())
    deltas = [i for i in items if isinstance(i, str)]
    assert len(deltas) > 3  # it really streamed
    assert "".join(deltas).strip() == whole.text
    assert isinstance(items[-1], Generation) and items[-1].text == whole.text


def test_mixed_parameters_in_one_batch(engines: tuple[TransformersEngine, TransformersEngine]) -> None:
    plain, _ = engines
    seeded = GenerationParams(max_tokens=16, temperature=0.9, top_p=0.9, top_k=40, seed=11)
    short = GenerationParams(max_tokens=3, temperature=0.0)

    async def go() -> tuple[Generation, list[Generation]]:
        alone = await plain.generate(msgs("a castle"), seeded)
        mixed = await asyncio.gather(
            plain.generate(msgs("a castle"), seeded),
            plain.generate(msgs("a ship"), short),
            plain.generate(msgs("a tree"), GenerationParams(max_tokens=24, temperature=1.2, seed=5)),
        )
        return alone, list(mixed)

    alone, mixed = asyncio.run(go())
    assert mixed[0].text == alone.text  # a seeded row samples the same in a batch as alone
    assert mixed[1].completion_tokens == 3 and mixed[1].finish_reason == "length"


def test_growing_conversation_reuses_its_head(engines: tuple[TransformersEngine, TransformersEngine]) -> None:
    plain, reuse = engines
    turns = [Message("system", SYSTEM)]
    texts: list[tuple[str, str]] = []

    async def go() -> None:
        for question in ("a red fox", "now make it winter", "add a moon"):
            turns.append(Message("user", question))
            a = await plain.generate(list(turns), GREEDY)
            b = await reuse.generate(list(turns), GREEDY)
            texts.append((a.text, b.text))
            turns.append(Message("assistant", a.text))

    asyncio.run(go())
    assert all(a == b for a, b in texts)
    computed, length = reuse._prefixes.last_built
    assert 0 < computed < length / 2  # the last head was built on the previous one, not from scratch
