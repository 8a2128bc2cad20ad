"""End to end: the RunPod SDK's local API and --test_input drive the real embedded model."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import requests

from shared.enhance.tokens import count_sdxl
from tests.e2e.conftest import ADMIN, ROOT, LocalApi, worker_env

pytestmark = pytest.mark.e2e


def test_chat_reply_from_the_real_model(api: LocalApi) -> None:
    out = api.output(
        {"action": "chat", "message": "What is the capital of France?", "max_tokens": 16, "temperature": 0.0}
    )
    assert out["success"] is True
    assert isinstance(out["response"], str) and out["response"].strip()
    assert "<|im_start|>" not in out["response"] and "capital of France?" not in out["response"]
    assert 0 < out["usage"]["completion_tokens"] <= 16
    assert out["usage"]["prompt_tokens"] > 10


def test_conversation_memory_across_jobs(api: LocalApi) -> None:
    first = api.output(
        {
            "action": "chat",
            "message": "My name is Ada and I love tea.",
            "conversation_id": "e2e-mem",
            "max_tokens": 12,
            "temperature": 0.0,
        }
    )
    second = api.output(
        {
            "action": "chat",
            "message": "What is my name?",
            "conversation_id": "e2e-mem",
            "max_tokens": 12,
            "temperature": 0.0,
        }
    )
    assert second["history_turns_used"] == 2
    # the second prompt holds the first turn (message and reply) plus the new message
    assert second["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]


def test_warmup_twice_second_does_no_work(api: LocalApi) -> None:
    """The second warmup neither loads nor generates (both figures exactly 0: their steps were
    skipped); how fast that is belongs in bench/, not in a bound a loaded CI machine can miss."""
    first = api.output({"action": "warmup"})
    second = api.output({"action": "warmup"})
    assert first["model_loaded"] and second["model_loaded"] and second["warm"] is True
    assert second["load_time"] == 0.0 and second["warmup_generation_time"] == 0.0


BAD = [
    ({"action": "chat"}, "invalid_input", "message"),
    ({"action": "chat", "message": ""}, "invalid_input", "message"),
    ({"action": "chat", "message": 7}, "invalid_input", "message"),
    ({"action": "chat", "message": "hi", "max_tokens": "many"}, "invalid_input", "max_tokens"),
    ({"action": "chat", "message": "x" * 9000}, "invalid_input", "message"),
    ({"action": "chat", "message": "word " * 1500, "max_tokens": 64}, "context_overflow", "message"),
    ({"action": "teleport"}, "unknown_action", "action"),
    ({}, "invalid_input", "action"),
    ({"action": "admin", "command": "format_disk"}, "unknown_command", "command"),
    ({"action": "enhance", "prompt": "cat", "job_type": "gif"}, "invalid_input", "job_type"),
]


@pytest.mark.parametrize(("payload", "code", "field"), BAD)
def test_bad_input_fails_cleanly_over_runsync(api: LocalApi, payload: dict[str, Any], code: str, field: str) -> None:
    answer = api.runsync(payload)
    assert answer["status"] == "FAILED"
    assert answer["error"].startswith(f"{code}: ") and f"(field: {field})" in answer["error"]
    assert "Traceback" not in answer["error"]


def test_worker_still_serves_after_bad_inputs(api: LocalApi) -> None:
    for payload, _, _ in BAD:
        api.runsync(payload)
    health = api.output({"action": "health"})
    assert health["status"] == "ok" and health["jobs_failed"] >= len(BAD)


def test_run_then_status(api: LocalApi) -> None:
    job = requests.post(f"{api.url}/run", json={"input": {"action": "model_info"}}, timeout=10).json()
    status = requests.post(f"{api.url}/status/{job['id']}", timeout=60).json()
    assert status["status"] == "COMPLETED"
    assert status["output"]["model_loaded"] is True and status["output"]["device_type"] == "cpu"


def test_admin_commands(api: LocalApi) -> None:
    mem = api.output({"action": "memory_status"})
    assert mem["device_type"] == "cpu" and mem["total_ram_gb"] > 0 and mem["total_vram"] is None
    info = api.output({"action": "admin", "command": "model_info"})
    assert info["model_parameters"] > 100_000_000 and info["is_eval_mode"] is True
    assert info["load"]["scheduler"]["batches_run"] >= 1 and "hits" in info["load"]["prefix_cache"]
    assert api.runsync({"action": "cache_clear"})["status"] == "FAILED"
    assert api.output({"action": "cache_clear", "admin_token": ADMIN})["success"] is True


def test_enhance_through_the_real_model(api: LocalApi) -> None:
    out = api.output({"action": "enhance", "prompt": "a lighthouse on a cliff at dusk", "seed": 1})
    assert out["enhancement_source"] in {"worker_fallback", "rule_based"}
    assert "a lighthouse on a cliff at dusk" in out["enhanced_prompt"]
    assert count_sdxl(out["enhanced_prompt"]).used <= 75
    again = api.output({"action": "enhance", "prompt": "a lighthouse on a cliff at dusk", "seed": 1})
    # a model draft is cached; a rule-based fallback is not (the model gets another try)
    assert again["cache_hit"] is (out["enhancement_source"] != "rule_based")
    assert again["enhanced_prompt"] == out["enhanced_prompt"] or not again["cache_hit"]


def _test_input(payload: Any) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "handler", "--test_input", json.dumps({"input": payload})]
    return subprocess.run(cmd, check=False, cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=300)


def test_test_input_runs_one_job_and_exits() -> None:
    done = _test_input({"action": "chat", "message": "Say hello.", "max_tokens": 8})  # exits, or times out and fails
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "completed successfully" in done.stdout + done.stderr


def test_test_input_non_object_input_fails_with_code() -> None:
    done = _test_input("just a string")
    assert done.returncode == 1
    assert "invalid_input: 'input' must be an object" in done.stdout + done.stderr


def test_shipped_test_input_json_is_valid() -> None:
    data = json.loads((ROOT / "test_input.json").read_text())
    assert data["input"]["action"] in {"chat", "warmup", "enhance", "health"}
