"""The model judge layer through the worker, on the scriptable fake engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from handler.app import Worker
from shared.errors import EngineError
from shared.policy import JudgeInput, ModelJudge
from tests.conftest import run
from tests.fakes.engine import FakeEngine

SEXUAL = {"action": "chat", "message": "describe the nude model on the sofa", "max_tokens": 8}


@pytest.fixture
def judged(make_worker: Callable[..., Worker]) -> Worker:
    return make_worker(adult_content_enabled=True, policy_judge="on", enhance_cache_size=0)


def test_yes_refuses_before_generation(judged: Worker, fake: FakeEngine) -> None:
    fake.enqueue_judge(0.93)
    out = run(judged, SEXUAL)
    assert out["error_code"] == "content_policy_violation"
    assert fake.history == []  # nothing was generated
    assert len(fake.judge_calls) == 1
    question = fake.judge_calls[0].messages[-1].content
    assert "under 18" in question and "nude model on the sofa" in question


def test_no_serves(judged: Worker, fake: FakeEngine) -> None:
    fake.enqueue_judge(0.04)
    out = run(judged, SEXUAL)
    assert out["success"] is True and out["response"] == "a friendly reply"
    assert len(fake.judge_calls) == 1


def test_engine_failure_leaves_the_rules_decision(judged: Worker, fake: FakeEngine, caplog: Any) -> None:
    fake.enqueue_judge(EngineError("model busy"))
    out = run(judged, SEXUAL)
    assert out["success"] is True  # the rules passed it; the judge had no answer
    assert "policy judge unavailable (EngineError)" in caplog.text
    fake.enqueue_judge(EngineError("model busy"))
    out = run(judged, {"action": "chat", "message": "naked 13 year old", "max_tokens": 8})
    assert out["error_code"] == "content_policy_violation"  # refused by the rules, judge not needed
    assert len(fake.judge_calls) == 1


def test_judge_is_asked_only_for_sexual_or_adult_requests(judged: Worker, fake: FakeEngine) -> None:
    fake.judge_default = 0.99  # would refuse anything it were asked about
    assert run(judged, {"action": "chat", "message": "what is the capital of France?"})["success"] is True
    assert fake.judge_calls == []
    out = run(judged, {"action": "chat_unrestricted", "message": "hello there"})  # adult mode on: asked
    assert out["error_code"] == "content_policy_violation" and len(fake.judge_calls) == 1


def test_enhance_asks_the_judge(judged: Worker, fake: FakeEngine) -> None:
    fake.enqueue_judge(0.8)
    out = run(judged, {"action": "enhance", "prompt": "sensual nude portrait, soft light"})
    assert out["error_code"] == "content_policy_violation"
    fake.enqueue_judge(0.2)
    out = run(judged, {"action": "enhance", "prompt": "sensual nude portrait, soft light"})
    assert out["success"] is True


@pytest.mark.parametrize("setting", ["auto", "off"])
def test_auto_and_off_do_not_ask_on_the_embedded_model(
    make_worker: Callable[..., Worker], fake: FakeEngine, setting: str
) -> None:
    worker = make_worker(adult_content_enabled=True, policy_judge=setting, model_path=None)
    fake.judge_default = 0.99
    assert run(worker, SEXUAL)["success"] is True
    assert fake.judge_calls == []


def test_auto_asks_when_a_model_is_configured(
    make_worker: Callable[..., Worker], fake: FakeEngine, tmp_path: Any
) -> None:
    worker = make_worker(adult_content_enabled=True, policy_judge="auto", model_path=tmp_path)
    fake.enqueue_judge(0.97)
    assert run(worker, SEXUAL)["error_code"] == "content_policy_violation"


def _question(fake: FakeEngine) -> str:
    return fake.judge_calls[-1].messages[-1].content


@pytest.mark.parametrize("where", ["history", "system_prompt"])
def test_a_long_history_or_system_prompt_never_hides_the_message(
    make_worker: Callable[..., Worker], where: str
) -> None:
    fake = FakeEngine(default="a friendly reply", context_length=16384)  # the whole system prompt fits
    judged = make_worker(fake, adult_content_enabled=True, policy_judge="on", max_system_prompt_chars=24000)
    filler = "the sofa is blue and the light is soft " * 520  # 20,280 characters
    payload: dict[str, Any] = {**SEXUAL}
    if where == "history":  # 20,280 characters over two turns, then the newest
        half = len(filler) // 2
        payload["conversation_history"] = [
            {"role": "user", "content": filler[:half]},
            {"role": "assistant", "content": filler[half:]},
            {"role": "user", "content": "the newest turn"},
        ]
    else:
        payload["system_prompt"] = filler
    fake.enqueue_judge(0.1)
    out = run(judged, payload)
    assert out["success"] is True, out
    judge = judged.ctx.policy.judge
    assert judge is not None
    shown = _question(fake).split('"""')[1].strip("\n")
    assert shown.startswith(SEXUAL["message"] + "\n---\n")  # whole, and first
    assert fake.count_tokens(shown) <= judge.max_tokens
    assert len(shown) < len(filler) // 2  # the filler was cut to the budget
    if where == "history":
        assert "the newest turn" in shown  # newest turns before older ones
    else:
        assert filler.startswith(shown.split("\n---\n")[1])  # the system prompt's start, cut at the budget


def test_no_answer_with_a_youth_signal_refuses_and_is_counted(judged: Worker, fake: FakeEngine, caplog: Any) -> None:
    fake.enqueue_judge(EngineError("overloaded"))
    out = run(judged, {"action": "chat", "message": "describe the petite nude model on the sofa", "max_tokens": 8})
    assert out["error_code"] == "content_policy_violation"  # 'petite': the rules pass it, the judge could not look
    assert "stage=judge_unavailable" in caplog.text and fake.history == []
    fake.enqueue_judge(EngineError("overloaded"))
    assert run(judged, SEXUAL)["success"] is True  # no minor or youth signal: the rules' decision stands
    health = run(judged, {"action": "health"})["policy_judge"]
    assert health == {"enabled": True, "asked": 2, "unavailable": 2, "refused_unavailable": 1}


def test_a_child_safety_question_is_judged_and_fails_closed(judged: Worker, fake: FakeEngine) -> None:
    question = {"action": "chat", "message": "how do I report someone sharing nude photos of a 12-year-old"}
    fake.enqueue_judge(0.05)
    assert run(judged, question)["success"] is True
    assert "protecting children" in _question(fake)  # the question tells asking for content from safety questions
    fake.enqueue_judge(EngineError("overloaded"))
    assert run(judged, question)["error_code"] == "content_policy_violation"  # a minor named, no answer


def test_a_judge_that_does_not_answer_in_time_is_unavailable() -> None:
    async def never(messages: list[tuple[str, str]]) -> float:
        await asyncio.Event().wait()
        return 0.0

    judge = replace(ModelJudge.of(never, lambda text: len(text.split())), timeout_s=0.01)
    assert asyncio.run(judge.score(JudgeInput("hello"))) is None
    assert judge.stats().unavailable == 1


def test_health_without_a_judge(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(policy_judge="off")
    assert run(worker, {"action": "health"})["policy_judge"]["enabled"] is False
