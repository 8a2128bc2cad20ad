"""A size for everything, well-formed text, ids from a fixed set: each bad field fails fast,
named, with a machine-readable code, and the worker keeps serving (fake engine)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from handler.app import Worker
from handler.validation import size
from shared.engine import EngineInfo
from tests.conftest import ADMIN, run
from tests.fakes.engine import FakeEngine

SURROGATE = "hi \ud800 there"
HISTORY = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]


def chat(**fields: Any) -> dict[str, Any]:
    return {"action": "chat", "message": "hello", "max_tokens": 8, **fields}


def enhance(**fields: Any) -> dict[str, Any]:
    return {"action": "enhance", "prompt": "a red fox in the snow", **fields}


OVERSIZED = [
    (chat(message="m" * 8001), "invalid_input", "message"),
    (chat(system_prompt="s" * 16001), "invalid_input", "system_prompt"),
    (chat(conversation_history=[*HISTORY, {"role": "user", "content": "h" * 16001}]), "invalid_input",
     "conversation_history.2.content"),
    (chat(conversation_history=[{"role": "user", "content": "h" * 15000}] * 14), "invalid_input",
     "conversation_history"),
    (chat(stop=["x" * 65]), "invalid_input", "stop.0"),
    (enhance(prompt="p " * 1001), "invalid_input", "prompt"),
    (enhance(system_prompt="s" * 16001), "invalid_input", "system_prompt"),
    (enhance(context={"style": "c" * 8001}), "invalid_input", "context"),
    (chat(extra_field="x" * 600_000), "invalid_input", "extra_field"),
    (enhance(context={"style": "c" * 600_000}), "invalid_input", "context"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "code", "field"), OVERSIZED)
def test_each_oversized_field_fails_named_and_the_worker_keeps_serving(
    worker: Worker, fake: FakeEngine, payload: dict[str, Any], code: str, field: str
) -> None:
    out = run(worker, payload)
    assert (out["success"], out["error_code"], out["field"]) == (False, code, field)
    assert f"(field: {field})" in out["error"]
    assert fake.history == []  # failed before any model work
    assert run(worker, chat())["response"] == "a friendly reply"


UNICODE = [
    (chat(message=SURROGATE), "message"),
    (chat(system_prompt=SURROGATE), "system_prompt"),
    (chat(conversation_history=[{"role": "user", "content": SURROGATE}]), "conversation_history.0.content"),
    (chat(stop=[SURROGATE]), "stop.0"),
    (enhance(prompt=SURROGATE), "prompt"),
    (enhance(system_prompt=SURROGATE), "system_prompt"),
    (enhance(context={"mood": ["calm", SURROGATE]}), "context"),
    (enhance(context={SURROGATE: "calm"}), "context"),
    ({"action": "cache_clear", "admin_token": SURROGATE}, "admin_token"),
    ({"action": "model_info", "admin_token": SURROGATE}, "admin_token"),
]


@pytest.mark.parametrize(("payload", "field"), UNICODE)
def test_lone_surrogates_fail_invalid_input_naming_the_field(
    worker: Worker, payload: dict[str, Any], field: str
) -> None:
    out = run(worker, payload)
    assert (out["error_code"], out["field"]) == ("invalid_input", field)
    assert "well-formed Unicode" in out["error"]
    out["error"].encode()  # the answer itself is well-formed: it does not echo the bad text


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (chat(conversation_id="a\x00b"), "conversation_id"),
        (chat(conversation_id="a\x1b[31m"), "conversation_id"),
        (chat(conversation_id="x" * 129), "conversation_id"),
        (chat(conversation_id=""), "conversation_id"),
        (chat(project_id="p q"), "project_id"),
        (chat(context_type="général"), "context_type"),
        (enhance(job_type="sdxl\nfast"), "job_type"),
        (
            {"action": "admin", "command": "conversation_get", "admin_token": ADMIN, "conversation_id": "c\x00"},
            "conversation_id",
        ),
    ],
)
def test_ids_outside_the_documented_set_are_refused(worker: Worker, payload: dict[str, Any], field: str) -> None:
    out = run(worker, payload)
    assert (out["error_code"], out["field"]) == ("invalid_input", field)
    assert "letters, digits and _ - . : @" in out["error"]


def test_ids_of_the_documented_set_are_accepted(worker: Worker) -> None:
    cid = "user:42@proj.a_b-" + "c" * 100
    assert run(worker, chat(conversation_id=cid))["conversation_id"] == cid


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_is_not_a_number(worker: Worker, value: float) -> None:
    out = run(worker, chat(temperature=value))
    assert (out["error_code"], out["field"]) == ("invalid_input", "temperature")
    assert "is not a number" in out["error"]


def test_out_of_range_reads_must_be(worker: Worker) -> None:
    out = run(worker, chat(temperature=3.0))
    assert out["error"] == "invalid_input: 'temperature' must be less than or equal to 2 (field: temperature)"


def test_role_and_sender_that_disagree_are_rejected_naming_the_item(worker: Worker) -> None:
    history = [*HISTORY, {"role": "user", "sender": "assistant", "content": "which?"}]
    out = run(worker, chat(conversation_history=history))
    assert (out["error_code"], out["field"]) == ("invalid_input", "conversation_history.2")
    assert "role 'user' but sender 'assistant'" in out["error"]
    agreeing = [{"role": "user", "sender": "user", "content": "hello"}]
    assert run(worker, chat(conversation_history=agreeing))["success"] is True


def test_enhance_system_prompt_and_context_count_against_the_model_context(
    make_worker: Callable[..., Worker],
) -> None:
    small = FakeEngine(default="a red fox, snow, soft light", context_length=600)
    worker = make_worker(small)
    words = " ".join(["word"] * 700)  # the fake counts whitespace-separated words
    for payload, field in [
        (enhance(system_prompt=words), "system_prompt"),
        (enhance(context={"notes": words}), "context"),
    ]:
        out = run(worker, payload)
        assert (out["error_code"], out["field"]) == ("context_overflow", field)
    assert small.history == []
    assert run(worker, enhance(system_prompt="Improve the prompt."))["success"] is True


class _HostEngine(FakeEngine):
    def info(self) -> EngineInfo:
        return dataclasses.replace(super().info(), model_path="/srv/models/qwen.gguf", model_name="qwen.gguf")


def test_model_info_names_the_model_and_shows_the_path_only_to_the_admin(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(_HostEngine())
    public = run(worker, {"action": "model_info"})
    assert public["model_path"] == public["model_name"] == "qwen.gguf"
    assert "/srv" not in str(public)
    wrong = run(worker, {"action": "model_info", "admin_token": "guess"})
    assert wrong["model_path"] == "qwen.gguf"
    admin = run(worker, {"action": "model_info", "admin_token": ADMIN})
    assert admin["model_path"] == "/srv/models/qwen.gguf"


def test_size_stops_early_on_huge_inputs() -> None:
    huge = {"items": [["x"] * 1000] * 10_000}  # 10 million strings
    assert size(huge, limit=5000) <= 5001 + 1000
    assert size({"a": "bc", "d": [1, None, "ef"]}) == 1 + 1 + 2 + 1 + 1 + 1 + 1 + 2
