"""The enhancement evaluation set through the real embedded model (in-process engine).

Saves reports/enhance_eval.json; `scripts/enhance_eval.py --report` prints the table.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from handler.app import Worker, build_engine
from scripts.enhance_eval import RESULTS, evaluate, print_table
from shared.settings import load_settings

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    settings = load_settings(enhance_cache_size=0, upstash_redis_rest_url=None, upstash_redis_rest_token=None)
    engine = build_engine(settings)
    engine.load()
    results = evaluate(Worker(settings, engine))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print_table(results)
    return results


def test_set_covers_every_job_type_and_kind(rows: list[dict[str, Any]]) -> None:
    assert len(rows) >= 40
    assert {r["job_type"] for r in rows} == {
        "sdxl_image_fast",
        "sdxl_image_high",
        "video_fast",
        "video_high",
        "wan_7b_enhanced",
    }
    assert {"plain", "weighted", "lora", "non_english", "one_word", "very_long"} <= {r["kind"] for r in rows}


def test_every_result_succeeds_within_budget(rows: list[dict[str, Any]]) -> None:
    assert all(r["success"] for r in rows)
    assert all(r["within_budget"] for r in rows if r["job_type"] == "sdxl_image_fast")
    assert all(r["within_budget"] for r in rows)


def test_every_content_word_is_kept(rows: list[dict[str, Any]]) -> None:
    assert [r["prompt"] for r in rows if r["missing_words"]] == []


def test_caller_syntax_is_intact(rows: list[dict[str, Any]]) -> None:
    assert [r["prompt"] for r in rows if not r["syntax_intact"]] == []


def test_the_model_does_most_of_the_work(rows: list[dict[str, Any]]) -> None:
    assert sum(r["source"] != "rule_based" for r in rows) >= len(rows) * 0.6
