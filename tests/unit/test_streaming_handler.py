"""The generator handler: chat with stream=true yields deltas then the usual output; others yield one item.

The fake engine streams token by token (a word longer than `token_chars` spans several deltas).
What is asserted is the worker's side of a stream: how many tokens it took from the engine and
whether it closed the engine's stream before the end (`watch`), not how the fake reacts to that;
that a closed stream stops real generation is the engines' contract (tests/contract,
tests/e2e/test_engine_serving.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from handler.app import Worker
from handler.validation import size
from shared.engine.base import Generation, GenerationParams, Message
from tests.conftest import ADMIN, run
from tests.fakes.engine import FakeEngine, tokens_of

ASK = "Tell me about my kid's afternoon at the park"  # a minor is named; nothing sexual: the input passes
# Sentences: the guard releases text only at a clause start (an unfinished clause stays back whole).
LEAD = (
    "It was a calm and sunny afternoon. The ducks were out on the pond. "
    "The swans glided slowly past the reeds by the far bank. After a long walk everyone got "
)
TAIL = " in the fountain by the old oak trees while the band played on the grass until evening"


@dataclass
class Pull:
    """One engine stream as the worker consumed it."""

    taken: int = 0  # tokens the worker took from the engine
    ended: bool = False  # the worker read it to its end (the final Generation)
    closed_early: bool = False  # the worker closed it (or was cancelled) before its end


def watch(fake: FakeEngine) -> list[Pull]:
    """Records, for every `stream` call the worker makes, what it took and whether it let go early."""
    pulls: list[Pull] = []
    inner = fake.stream

    async def stream(messages: list[Message], params: GenerationParams) -> AsyncIterator[str | Generation]:
        pull = Pull()
        pulls.append(pull)
        source = inner(messages, params)
        try:
            async for item in source:
                pull.taken += isinstance(item, str)
                yield item
            pull.ended = True
        finally:
            pull.closed_early = not pull.ended
            await source.aclose()  # type: ignore[attr-defined]

    fake.stream = stream  # type: ignore[method-assign]
    return pulls


def collect(worker: Worker, payload: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [item async for item in worker.handle_stream({"id": "s", "input": payload})]

    return asyncio.run(go())


def test_stream_yields_deltas_then_the_final_output(worker: Worker, fake: FakeEngine) -> None:
    reply = LEAD + "wet" + TAIL
    fake.enqueue(reply)
    items = collect(worker, {"action": "chat", "message": "count", "stream": True})
    deltas, final = items[:-1], items[-1]
    assert all(set(d) == {"delta"} for d in deltas) and len(deltas) > 3
    assert "".join(d["delta"] for d in deltas) == final["response"] == reply
    assert final["success"] is True and final["usage"]["completion_tokens"] == len(tokens_of(reply))


def test_text_leaves_while_the_engine_is_still_generating(worker: Worker, fake: FakeEngine) -> None:
    """Holding back is a window, not buffering the whole reply: the first delta comes mid-generation."""
    reply = LEAD + "wet" + TAIL
    fake.enqueue(reply)
    pulls = watch(fake)
    taken_at_delta: list[int] = []

    async def go() -> None:
        async for item in worker.handle_stream(
            {"id": "s", "input": {"action": "chat", "message": "x", "stream": True}}
        ):
            if "delta" in item:
                taken_at_delta.append(pulls[-1].taken)

    asyncio.run(go())
    assert taken_at_delta[0] < len(tokens_of(reply)) / 2


@pytest.mark.parametrize(
    "disguise",
    ["naked", "n4ked", "n a k e d", "n.a.k.e.d", "na\u200bked", "NÁKED", "nаked"],  # the last has a Cyrillic 'а'
    ids=["plain", "leet", "spaced", "dotted", "zero-width", "accent", "look-alike"],
)
def test_a_refused_word_never_leaves_and_generation_stops(make_worker: Callable[..., Worker], disguise: str) -> None:
    fake = FakeEngine(token_chars=2)  # 'naked' arrives as ' na', 'ke', 'd'
    reply = LEAD + disguise + TAIL
    fake.enqueue(reply)
    pulls = watch(fake)
    worker = make_worker(fake)
    items = collect(worker, {"action": "chat", "message": ASK, "stream": True, "conversation_id": "park"})
    deltas, last = items[:-1], items[-1]
    sent = "".join(d["delta"] for d in deltas)
    # What left is a prefix of the reply that ends before the word starts: no letter of it, in no delta.
    assert reply.startswith(sent) and len(sent) <= reply.index(disguise)
    assert sent  # the safe text before it did stream
    assert all(set(d) == {"delta"} for d in deltas)
    assert last["success"] is False and last["error_code"] == "content_policy_violation"
    (pull,) = pulls
    through_word = len(tokens_of(LEAD + disguise, 2))
    # The worker let go of the engine's stream as soon as the word was whole (the next token ends it).
    assert pull.closed_early and pull.taken <= through_word + 1 < len(tokens_of(reply, 2))
    stored = run(
        worker, {"action": "admin", "command": "conversation_get", "conversation_id": "park", "admin_token": ADMIN}
    )
    assert stored["turns"] == []  # a refused turn is not kept


def test_a_refused_last_word_is_caught_by_the_final_check(make_worker: Callable[..., Worker]) -> None:
    """A word that ends the reply is whole only at the end: the final check refuses it, the tail stays back."""
    fake = FakeEngine(token_chars=2)
    reply = LEAD + "naked"
    fake.enqueue(reply)
    pulls = watch(fake)
    items = collect(make_worker(fake), {"action": "chat", "message": ASK, "stream": True})
    sent = "".join(d["delta"] for d in items[:-1])
    assert sent and reply.startswith(sent) and len(sent) <= reply.index("naked")
    assert items[-1]["error_code"] == "content_policy_violation"
    assert pulls[-1].taken == len(tokens_of(reply, 2))  # nothing to stop: the refusal came with the last token


# One clause the contact rule refuses as a whole (commas do not end it), far longer than the hold-back
# window and the overlap between judged pieces, after enough sentences for the reply to be judged in pieces.
STORY = " ".join(f"Sentence {i} tells of the quiet lake and the boats." for i in range(8)) + " "
CLAUSE = (
    "A 12 year old girl, who had spent the whole long summer afternoon at the lake with her cousins, "
    "laughing, swimming and reading old comic books under the willow trees, ended up kissing an older man"
)


def test_a_long_refused_clause_across_a_piece_boundary_sends_nothing_of_it(make_worker: Callable[..., Worker]) -> None:
    fake = FakeEngine(token_chars=2)  # max_tokens below: the fake would otherwise cut this long reply short
    reply = STORY + CLAUSE + ". The evening was calm and everyone went home."
    fake.enqueue(reply)
    pulls = watch(fake)
    items = collect(
        make_worker(fake), {"action": "chat", "message": "tell me a story", "stream": True, "max_tokens": 1000}
    )
    deltas, last = items[:-1], items[-1]
    assert all(set(d) == {"delta"} for d in deltas)
    assert "".join(d["delta"] for d in deltas) == STORY  # the sentences before it left; nothing of the clause
    assert last["success"] is False and last["error_code"] == "content_policy_violation"
    (pull,) = pulls
    assert pull.closed_early and pull.taken <= len(tokens_of(STORY + CLAUSE, 2)) + 1


def test_a_clean_long_stream_joins_to_the_final_response(make_worker: Callable[..., Worker]) -> None:
    fake = FakeEngine(token_chars=2)
    clean = CLAUSE.replace("A 12 year old girl", "A 32 year old woman").replace("kissing an older man", "asleep")
    reply = STORY + clean + ". " + " ".join(f"word{i}" for i in range(120)) + ". The end."
    fake.enqueue(reply)
    items = collect(
        make_worker(fake), {"action": "chat", "message": "tell me a story", "stream": True, "max_tokens": 1000}
    )
    assert items[-1]["success"] is True and len(items) > 10
    assert "".join(i["delta"] for i in items[:-1]) == items[-1]["response"] == reply


def test_refusal_is_the_same_without_streaming(make_worker: Callable[..., Worker]) -> None:
    """The stream refuses exactly what the final output check refuses."""
    fake = FakeEngine().enqueue(LEAD + "naked" + TAIL)
    worker = make_worker(fake)
    out = asyncio.run(worker.handle({"id": "n", "input": {"action": "chat", "message": ASK}}))
    assert out["error_code"] == "content_policy_violation"


def test_a_word_that_only_starts_like_a_refused_one_streams(make_worker: Callable[..., Worker]) -> None:
    """'sex' of 'sextant' is not a word: a half-written word is judged once it is whole."""
    fake = FakeEngine(token_chars=3)
    reply = LEAD + "sextant" + TAIL
    fake.enqueue(reply)
    items = collect(make_worker(fake), {"action": "chat", "message": ASK, "stream": True})
    assert items[-1]["success"] is True
    assert "".join(i["delta"] for i in items[:-1]) == items[-1]["response"] == reply


def test_a_consumer_that_goes_away_stops_generation(worker: Worker, fake: FakeEngine) -> None:
    reply = LEAD + "wet" + TAIL
    fake.enqueue(reply)
    pulls = watch(fake)

    async def go() -> None:
        items = worker.handle_stream({"id": "s", "input": {"action": "chat", "message": "x", "stream": True}})
        async for item in items:
            assert "delta" in item
            break
        await items.aclose()  # type: ignore[attr-defined]

    asyncio.run(go())
    (pull,) = pulls
    assert pull.closed_early and pull.taken < len(tokens_of(reply))  # the engine's stream was let go


def test_non_streaming_jobs_yield_exactly_one_item(worker: Worker) -> None:
    assert len(collect(worker, {"action": "chat", "message": "hi"})) == 1
    assert collect(worker, {"action": "health"})[0]["status"] == "ok"
    bad = collect(worker, {"action": "chat", "stream": True})
    assert len(bad) == 1 and bad[0]["error_code"] == "invalid_input"


def test_stream_refusal_is_one_error_item(worker: Worker) -> None:
    items = collect(worker, {"action": "chat", "message": "naked 12 year old", "stream": True})
    assert len(items) == 1 and items[0]["error_code"] == "content_policy_violation"


def test_a_streamed_job_writes_one_log_line_without_text(
    worker: Worker, fake: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    fake.enqueue(LEAD + "wet" + TAIL)
    with caplog.at_level(logging.INFO, logger="handler"):
        items = collect(worker, {"action": "chat", "message": ASK, "stream": True})
        collect(worker, {"action": "chat", "message": "naked 12 year old", "stream": True})
    ok, refused = [m for m in caplog.messages if m.startswith("job ")]
    assert ok.startswith("job s action=chat outcome=ok ") and f"output={sum(map(size, items))}" in ok
    assert refused.startswith("job s action=chat outcome=content_policy_violation ")
    assert "wet" not in caplog.text and "park" not in caplog.text and "naked" not in caplog.text


def test_a_stream_its_consumer_left_logs_cancelled(
    worker: Worker, fake: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    fake.enqueue(LEAD + "wet" + TAIL)
    pulls = watch(fake)

    async def go() -> None:
        items = worker.handle_stream({"id": "s", "input": {"action": "chat", "message": "x", "stream": True}})
        await anext(items)
        await items.aclose()  # type: ignore[attr-defined]

    with caplog.at_level(logging.INFO, logger="handler"):
        asyncio.run(go())
    (line,) = [m for m in caplog.messages if m.startswith("job ")]
    assert line.startswith("job s action=chat outcome=cancelled ")
    assert pulls[-1].closed_early
