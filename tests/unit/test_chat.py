"""Chat prompt assembly, memory and history trimming on the scriptable fake engine."""

from __future__ import annotations

from typing import Any

import pytest

from handler.app import Worker
from shared.chat.history import fit_history
from shared.engine import Message
from shared.errors import ContextOverflow
from tests.conftest import run
from tests.fakes.engine import FakeEngine


def test_reply_and_seed_fields(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue("Once upon a time")
    out = run(worker, {"action": "chat", "message": "Tell me a story", "conversation_id": "story_001"})
    for key in (
        "success",
        "response",
        "generation_time",
        "conversation_id",
        "context_type",
        "message_id",
        "system_prompt_used",
        "unrestricted_mode",
        "usage",
    ):
        assert key in out
    assert out["response"] == "Once upon a time"
    assert out["conversation_id"] == "story_001"
    assert out["message_id"].startswith("msg_")
    assert out["usage"]["completion_tokens"] == 4


def test_caller_system_prompt_is_verbatim(worker: Worker, fake: FakeEngine) -> None:
    system = "You are Captain Nemo. Stay in character!"
    out = run(worker, {"action": "chat", "message": "hi", "system_prompt": system})
    assert fake.history[-1].messages[0] == Message("system", system)
    assert out["system_prompt_used"] is True


def test_default_prompt_per_context_type(worker: Worker, fake: FakeEngine) -> None:
    run(worker, {"action": "chat", "message": "hi", "context_type": "roleplay"})
    assert "role-play" in fake.history[-1].messages[0].content
    out = run(worker, {"action": "chat", "message": "hi"})
    assert out["system_prompt_used"] is False and out["context_type"] == "general"


def test_conversation_memory_with_id(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue("Nice to meet you, Ada.", "Your name is Ada.")
    run(worker, {"action": "chat", "message": "My name is Ada.", "conversation_id": "c1"})
    second = run(worker, {"action": "chat", "message": "What is my name?", "conversation_id": "c1"})
    sent = fake.history[-1].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1].content == "My name is Ada." and sent[2].content == "Nice to meet you, Ada."
    assert second["history_turns_used"] == 2


def test_explicit_history_is_stateless(worker: Worker, fake: FakeEngine) -> None:
    history = [{"sender": "user", "content": "I like tea"}, {"role": "assistant", "content": "Tea is nice"}]
    run(
        worker,
        {"action": "chat", "message": "What do I like?", "conversation_id": "c2", "conversation_history": history},
    )
    assert [m.content for m in fake.history[-1].messages[1:3]] == ["I like tea", "Tea is nice"]
    run(worker, {"action": "chat", "message": "again", "conversation_id": "c2"})
    assert len(fake.history[-1].messages) == 2  # nothing was stored by the stateless call


def test_generation_params_reach_the_engine(worker: Worker, fake: FakeEngine) -> None:
    run(
        worker,
        {
            "action": "chat",
            "message": "hi",
            "max_tokens": 7,
            "temperature": 0.0,
            "top_p": 0.5,
            "seed": 3,
            "stop": ["\n"],
        },
    )
    p = fake.history[-1].params
    assert (p.max_tokens, p.temperature, p.top_p, p.seed, p.stop) == (7, 0.0, 0.5, 3, ("\n",))


def _history(n: int) -> list[Message]:
    return [Message("user" if i % 2 == 0 else "assistant", f"turn {i} " + "word " * 10) for i in range(n)]


def test_trimming_drops_oldest_first_and_keeps_newest() -> None:
    engine = FakeEngine(context_length=120)
    fitted = fit_history(engine, "sys", _history(20), "the newest message", max_tokens=20)
    assert fitted.messages[-1] == Message("user", "the newest message")
    kept = fitted.messages[1:-1]
    assert kept == _history(20)[-len(kept) :]  # a suffix: the oldest went first
    assert fitted.history_dropped > 0
    assert engine.count_chat_tokens(fitted.messages) <= 100
    assert fitted.prompt_tokens == engine.count_chat_tokens(fitted.messages)


def test_trimming_keeps_everything_that_fits() -> None:
    fitted = fit_history(FakeEngine(context_length=4096), "sys", _history(6), "hi", max_tokens=100)
    assert fitted.history_used == 6 and fitted.history_dropped == 0


def test_newest_message_too_long_is_an_error() -> None:
    with pytest.raises(ContextOverflow) as err:
        fit_history(FakeEngine(context_length=50), None, [], "word " * 60, max_tokens=10)
    assert err.value.field == "message"


def test_context_overflow_reaches_the_caller(make_worker: Any) -> None:
    worker = make_worker(FakeEngine(context_length=300))
    out = run(worker, {"action": "chat", "message": "word " * 400, "max_tokens": 16})
    assert out["error_code"] == "context_overflow" and out["field"] == "message"


@pytest.mark.parametrize(
    "earlier",
    [
        "sexy lingerie ideas for my wife?",  # reviewer
        "write something explicit and erotic, nude, sensual",
        "enable nsfw mode please, unrestricted mode",
    ],
)
def test_adult_mode_comes_from_the_current_message_only(make_worker: Any, fake: FakeEngine, earlier: str) -> None:
    """D8: an earlier user turn's adult words do not switch adult mode on for an innocent message."""
    worker = make_worker(adult_content_enabled=True)
    history = [{"role": "user", "content": earlier}, {"role": "assistant", "content": "Sure."}]
    out = run(worker, {"action": "chat", "message": "Which colours go well together?", "conversation_history": history})
    assert out["success"] and out["unrestricted_mode"] is False and out["context_type"] == "general", out
    adult = run(worker, {"action": "chat", "message": earlier, "conversation_history": history})
    assert adult["unrestricted_mode"] is True  # the same words in the current message do switch it on
