"""History the model sees: whole exchanges, repaired alternation, tokens counted once, fitted off the loop."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.chat.history import exchanges, fit_history
from shared.engine import Message
from shared.errors import ContextOverflow
from tests.conftest import ADMIN, run
from tests.fakes.engine import FakeEngine


class StrictEngine(FakeEngine):
    """Like chat templates that raise unless roles go (system) user, assistant, user, …, user (e.g. Mistral's)."""

    def count_chat_tokens(self, messages: list[Message]) -> int:
        roles = [m.role for m in messages if m.role != "system"]
        if roles != ["user", "assistant"] * (len(roles) // 2) + ["user"]:
            raise ValueError(f"Conversation roles must alternate user/assistant/user/assistant/...: {roles}")
        return super().count_chat_tokens(messages)


def _pairs(n: int) -> list[Message]:
    return [Message("user" if i % 2 == 0 else "assistant", f"turn {i} " + "word " * 10) for i in range(n)]


def test_fitting_keeps_whole_exchanges_and_a_question_first() -> None:
    engine = StrictEngine(context_length=150)
    for limit in range(0, 21):  # every budget: the kept part is always whole exchanges
        fitted = fit_history(engine, "sys", _pairs(20), "newest", max_tokens=150 - 20 - 7 * limit)
        kept = fitted.messages[1:-1]
        assert len(kept) % 2 == 0 and kept == _pairs(20)[len(_pairs(20)) - len(kept) :]
        assert fitted.history_used == len(kept) and fitted.history_dropped == 20 - len(kept)
        assert fitted.prompt_tokens == engine.count_chat_tokens(fitted.messages)
        assert fitted.prompt_tokens <= engine.context_length - (150 - 20 - 7 * limit)


def test_a_history_that_breaks_alternation_is_repaired() -> None:
    history = [
        Message("assistant", "Hi! I'm your guide."),  # a greeting before any question: dropped
        Message("user", "I like tea."),
        Message("user", "And cake."),  # two questions in a row: joined
        Message("assistant", "Noted."),
        Message("user", "Unanswered?"),  # trailing question: joined to the new message
    ]
    pairs, message = exchanges(history, "What do I like?")
    assert pairs == [(Message("user", "I like tea.\n\nAnd cake."), Message("assistant", "Noted."))]
    assert message == "Unanswered?\n\nWhat do I like?"
    fitted = fit_history(StrictEngine(), None, history, "What do I like?", max_tokens=10)
    assert [m.role for m in fitted.messages] == ["user", "assistant", "user"]


def test_caller_history_out_of_alternation_reaches_a_strict_template(make_worker: Any) -> None:
    engine = StrictEngine(default="fine")
    worker = make_worker(engine)
    history = [
        {"role": "assistant", "content": "Welcome!"},
        {"role": "assistant", "content": "Ask me anything."},
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
    ]
    out = run(worker, {"action": "chat", "message": "three", "conversation_history": history})
    assert out["success"] is True
    assert [m.content for m in engine.history[-1].messages[1:]] == ["one\n\ntwo\n\nthree"]


def test_stored_history_with_an_odd_limit_reaches_a_strict_template(make_worker: Any) -> None:
    engine = StrictEngine(default="fine reply", context_length=50)
    worker = make_worker(engine, max_history_turns=5, default_max_tokens=8)
    chat = {"action": "chat", "conversation_id": "odd", "system_prompt": "be brief"}
    for i in range(6):
        out = run(worker, {**chat, "message": f"question {i} " + "pad " * 6})
        assert out["success"] is True, out
        sent = [m.role for m in engine.history[-1].messages]
        assert sent[:2] == ["system", "user"] and out["history_turns_used"] % 2 == 0
    assert out["history_turns_used"] == 2 and out["history_turns_dropped"] == 2  # store kept 4, context fit 2
    stored = run(
        worker, {"action": "admin", "command": "conversation_get", "conversation_id": "odd", "admin_token": ADMIN}
    )
    assert [t["role"] for t in stored["turns"]] == ["user", "assistant"] * 2


def test_tokens_are_counted_once_per_turn() -> None:
    """No re-tokenizing the whole history per search step: text counted is about twice the prompt at most."""
    counted: list[int] = []

    class Counting(FakeEngine):
        def count_tokens(self, text: str) -> int:
            counted.append(len(text))
            return super().count_tokens(text)

    history = _pairs(160)
    fit_history(Counting(context_length=100_000), "sys", history, "newest", max_tokens=10)
    total = sum(len(m.content) for m in history)
    assert sum(counted) <= 2 * total + 200  # each turn once, plus one exact count of the chosen prompt
    counted.clear()
    fit_history(Counting(context_length=200), "sys", history, "newest", max_tokens=10)
    assert sum(counted) <= total // 4  # a small budget stops counting long before the oldest turns


def test_fitting_runs_off_the_event_loop(make_worker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.chat import service

    threads: list[int] = []
    real = service.fit_history

    def spy(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(service, "fit_history", spy)
    out = run(make_worker(), {"action": "chat", "message": "hi"})  # asyncio.run: the loop is this thread
    assert out["success"] is True and len(threads) == 1 and threads[0] != threading.get_ident()


@pytest.mark.parametrize(
    ("system", "message", "field"),
    [("word " * 60, "hi", "system_prompt"), ("be brief", "word " * 60, "message"), (None, "word " * 60, "message")],
)
def test_overflow_names_the_part_that_does_not_fit(system: str | None, message: str, field: str) -> None:
    with pytest.raises(ContextOverflow) as err:
        fit_history(FakeEngine(context_length=50), system, _pairs(4), message, max_tokens=10)
    assert err.value.field == field


def test_overflow_of_the_system_prompt_reaches_the_caller(make_worker: Any) -> None:
    worker = make_worker(FakeEngine(context_length=300))
    out = run(worker, {"action": "chat", "message": "hi", "system_prompt": "word " * 400, "max_tokens": 16})
    assert out["error_code"] == "context_overflow" and out["field"] == "system_prompt"
