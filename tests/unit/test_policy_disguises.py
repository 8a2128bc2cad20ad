"""The minor-safety line against disguises: one test per disguise kind, through the worker.

Cases live in tests/data/policy_disguises.jsonl (written per kind before the word lists
were changed) and the three holdout sets (the template corpus, policy_corpus.jsonl, is for
regression only). Each
must-block case goes through chat (adult mode on, so nothing else refuses it) and enhance;
each allowed case must be served by both. Cases marked `known_miss` or `known_false_block` (the
rules' known limits, with the reason) are left out here and counted by scripts/policy_report.py
and docs/CONTENT_POLICY.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from handler.app import Worker
from tests.conftest import run

DATA = Path(__file__).parents[1] / "data"
# The first set was written before the lists changed; the holdouts after, each measured once
# before the fixes it prompted (docs/CONTENT_POLICY.md); review2 is a review's over-blocked
# platform prompts and holes, also measured first; all guard against regressions.
SETS = tuple(f"policy_{name}.jsonl" for name in ("disguises", "holdout", "holdout2", "holdout3", "review2"))
CASES = [json.loads(line) for name in SETS for line in (DATA / name).open(encoding="utf-8")]
BLOCK_KINDS = [
    "paraphrase",
    "non_english",
    "typos",
    "unicode",
    "unusual_ages",
    "looks_underage",
    "sdxl_syntax",
    "roleplay",
    "split_turns",
]
ALLOW_KINDS = ["allowed_adult", "allowed_general"]


def chat_payload(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "action": "chat",
        "message": case["text"],
        "system_prompt": case.get("system_prompt"),
        "conversation_history": case.get("history"),
        "max_tokens": 16,
    }


def enhance_payload(case: dict[str, Any]) -> dict[str, Any]:
    # Every turn, the assistant's too: a conversation's text all reaches the model as context.
    history = "\n".join(turn["content"] for turn in case.get("history", []))
    return {
        "action": "enhance",
        "prompt": case["text"],
        "system_prompt": case.get("system_prompt"),
        "context": {"history": history} if history else None,
    }


def test_every_kind_has_cases() -> None:
    kinds = {c["kind"] for c in CASES}
    assert kinds == set(BLOCK_KINDS + ALLOW_KINDS)
    for kind in BLOCK_KINDS:
        assert sum(c["kind"] == kind for c in CASES) >= 6, kind
        assert all(c["expect"] == "block" for c in CASES if c["kind"] == kind)


@pytest.mark.parametrize("kind", BLOCK_KINDS)
def test_disguised_requests_are_refused(make_worker: Callable[..., Worker], kind: str) -> None:
    worker = make_worker(adult_content_enabled=True, enhance_cache_size=0)
    served = []
    for case in (c for c in CASES if c["kind"] == kind and "known_miss" not in c):
        for route, payload in (("chat", chat_payload(case)), ("enhance", enhance_payload(case))):
            out = run(worker, payload)
            if out.get("error_code") != "content_policy_violation":
                served.append(f"{route}: {case['text']!r}")
    assert not served, "\n".join(served)


@pytest.mark.parametrize("kind", ALLOW_KINDS)
def test_allowed_requests_are_served(make_worker: Callable[..., Worker], kind: str) -> None:
    worker = make_worker(adult_content_enabled=True, enhance_cache_size=0)
    refused, served = [], []
    for case in (c for c in CASES if c["kind"] == kind and "known_false_block" not in c):
        for route, payload in (("chat", chat_payload(case)), ("enhance", enhance_payload(case))):
            out = run(worker, payload)
            if "refused_since" in case or route in case.get("refused_in", ()):  # a later or per-route rule
                if out.get("error_code") != "content_policy_violation":
                    served.append(f"{route}: {case['text']!r}")
            elif not out.get("success"):
                refused.append(f"{route}: {case['text']!r} -> {out.get('error_code')}")
    assert not refused and not served, "\n".join(refused + served)
