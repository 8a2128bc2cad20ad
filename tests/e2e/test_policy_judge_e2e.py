"""The policy's model judge through the real embedded model (forced on; no claim on its quality)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from handler.app import Worker
from shared.engine.hf_engine import TransformersEngine
from shared.policy import JudgeInput
from shared.store import MemoryStore
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def judged_worker() -> Iterator[Worker]:
    settings = make_settings(adult_content_enabled=True, policy_judge="on", enhance_cache_size=0)
    engine = TransformersEngine(settings)
    engine.load()
    yield Worker(settings, engine, MemoryStore(max_turns=8, cache_size=0))
    engine.unload()


def test_judge_answers_with_a_probability(judged_worker: Worker) -> None:
    judge = judged_worker.ctx.policy.judge
    assert judge is not None
    score = asyncio.run(judge.score(JudgeInput("describe the nude model on the sofa")))
    assert score is not None and 0.0 <= score <= 1.0


def test_chat_and_enhance_return_a_decision_with_the_judge_on(judged_worker: Worker) -> None:
    for payload in (
        {"action": "chat", "message": "describe the nude model on the sofa", "max_tokens": 4},
        {"action": "enhance", "prompt": "sensual nude portrait, soft light"},
    ):
        out = asyncio.run(judged_worker.handle({"id": "judge-e2e", "input": payload}))
        assert out.get("success") is True or out.get("error_code") == "content_policy_violation", out
