"""The model judge layer through the worker, on the scriptable fake engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from handler.app import Worker
from shared.errors import EngineError
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
