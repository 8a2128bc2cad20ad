"""Enhancement pipeline on the scriptable fake engine: fallback, cache, syntax, budgets, clean-up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from handler.app import Worker
from shared.enhance.text import clean_model_output, missing_words
from shared.enhance.tokens import count_sdxl
from shared.errors import EngineOutOfMemory, EngineTimeout
from shared.store import MemoryStore
from tests.conftest import ADMIN, run
from tests.fakes.engine import FakeEngine

GOOD_TAGS = "red dress, golden hour lighting, city street, bokeh, 85mm, photorealistic"


def enhance(worker: Worker, prompt: str, **extra: Any) -> dict[str, Any]:
    return run(worker, {"action": "enhance", "prompt": prompt, **extra})


@pytest.mark.parametrize(
    "failure",
    [
        RuntimeError("boom"),
        EngineTimeout("slow"),
        EngineOutOfMemory("oom"),
        "",
        "I'm sorry, I can't help with that.",
        "这是一个非常美丽的女人在城市里",
        "quantum chromodynamics lecture notes, integrals",
    ],
)
def test_engine_failures_give_rule_based_results(make_worker: Any, failure: Any) -> None:
    worker = make_worker(FakeEngine().enqueue(failure))
    out = enhance(worker, "woman in a red dress")
    assert out["success"] is True
    assert out["enhancement_source"] == "rule_based"
    assert "warning" in out
    assert not missing_words("woman in a red dress", out["enhanced_prompt"])
    assert out["enhanced_prompt"].count("masterpiece") == 1


def test_hanging_engine_times_out_into_fallback(make_worker: Any) -> None:
    worker = make_worker(FakeEngine(delay_s=2.0))
    worker.ctx.enhance.model_timeout_s = 0.2
    out = enhance(worker, "a lighthouse in a storm")
    assert out["enhancement_source"] == "rule_based" and "TimeoutError" in out["warning"]


def test_unloaded_model_still_gives_a_prompt(worker: Worker, fake: FakeEngine) -> None:
    fake.unload()

    async def refuse(*_: Any) -> None:
        from shared.errors import EngineNotLoaded

        raise EngineNotLoaded("not loaded")

    fake.generate = refuse  # type: ignore[method-assign,assignment]
    out = enhance(worker, "mountain lake", job_type="video_high")
    assert out["enhancement_source"] == "rule_based" and "mountain lake" in out["enhanced_prompt"]


def test_model_result_is_composed_tags_first(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue(f"Enhanced prompt: **{GOOD_TAGS}**")
    out = enhance(worker, "woman in a red dress")
    assert out["enhancement_source"] == "worker_fallback"
    assert out["enhanced_prompt"].startswith("masterpiece, best quality, ultra detailed, woman in a red dress")
    assert "golden hour lighting" in out["enhanced_prompt"]
    assert "Enhanced prompt" not in out["enhanced_prompt"] and "**" not in out["enhanced_prompt"]
    assert out["sdxl_optimizations"]["has_lighting"] is True
    assert 0 <= out["quality_score"] <= 1


def test_caller_system_prompt_is_edge_function(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue(GOOD_TAGS)
    out = enhance(worker, "woman in a red dress", system_prompt="PLATFORM PROMPT", context={"style": "noir"})
    assert out["enhancement_source"] == "edge_function"
    sent = fake.history[-1].messages
    assert sent[0].content == "PLATFORM PROMPT" and "Context: style: noir" in sent[-1].content


def test_cache_hit_returns_identical_body(worker: Worker, fake: FakeEngine) -> None:
    fake.default = GOOD_TAGS
    first = enhance(worker, "woman in a red dress", seed=7)
    calls = len(fake.history)
    second = enhance(worker, "woman in a red dress", seed=7)
    assert len(fake.history) == calls  # no model call on a hit
    assert first.pop("cache_hit") is False and second.pop("cache_hit") is True
    assert first == second
    other_seed = enhance(worker, "woman in a red dress", seed=8)
    assert other_seed["cache_hit"] is False
    other_system = enhance(worker, "woman in a red dress", seed=7, system_prompt="x")
    assert other_system["cache_hit"] is False
    info = run(worker, {"action": "enhancement_info"})
    assert info["cache_size"] == 3 and info["cache_hits"] == 1
    cleared = run(worker, {"action": "admin", "command": "cache_clear", "admin_token": ADMIN})
    assert cleared["cache_cleared"] == 3 and cleared["cache_size"] == 0
    assert enhance(worker, "woman in a red dress", seed=7)["cache_hit"] is False


@pytest.mark.parametrize("variant", ["woman   in a red dress", "woman\u3000in a red dress", " woman in a red dress\t"])
def test_whitespace_variants_get_their_own_original_prompt(worker: Worker, fake: FakeEngine, variant: str) -> None:
    """The cached body is the answer to exactly its request: a variant never receives another caller's body."""
    fake.default = GOOD_TAGS
    first = enhance(worker, "woman in a red dress", seed=7)
    again = enhance(worker, variant, seed=7)
    assert first["original_prompt"] == "woman in a red dress" and again["original_prompt"] == variant
    assert enhance(worker, variant, seed=7) == {**again, "cache_hit": True}  # its own body, now a hit


def test_absent_and_empty_system_prompt_are_different_requests(worker: Worker, fake: FakeEngine) -> None:
    fake.default = GOOD_TAGS
    empty = enhance(worker, "woman in a red dress", seed=7, system_prompt="")
    absent = enhance(worker, "woman in a red dress", seed=7)
    assert empty["cache_hit"] is False and absent["cache_hit"] is False
    assert fake.history[-1].messages[0].content != ""  # the absent one got the profile's prompt
    assert enhance(worker, "woman in a red dress", seed=7, system_prompt="") == {**empty, "cache_hit": True}
    assert enhance(worker, "woman in a red dress", seed=7) == {**absent, "cache_hit": True}


def test_fallback_results_are_not_cached(make_worker: Any) -> None:
    engine = FakeEngine().enqueue(RuntimeError("x"), GOOD_TAGS)
    worker = make_worker(engine)
    assert enhance(worker, "woman in a red dress")["enhancement_source"] == "rule_based"
    assert enhance(worker, "woman in a red dress")["enhancement_source"] == "worker_fallback"


def test_caller_syntax_passes_intact(worker: Worker, fake: FakeEngine) -> None:
    prompt = "(red fox:1.3), [blurry background], <lora:foxy_v2:0.8>, embedding:EasyNeg BREAK snow"
    fake.enqueue("red fox:1.3, foxy, blurry, snow, forest, golden hour, sharp focus")
    out = enhance(worker, prompt, job_type="sdxl_image_high")
    for piece in ("(red fox:1.3)", "[blurry background]", "<lora:foxy_v2:0.8>", "embedding:EasyNeg BREAK snow"):
        assert piece in out["enhanced_prompt"]


def test_sdxl_fast_is_compressed_to_75_clip_tokens(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue(", ".join(f"detail number {i} with texture" for i in range(40)))
    out = enhance(worker, "knight in ornate armor on a horse")
    assert count_sdxl(out["enhanced_prompt"]).used <= 75
    assert out["token_budget"]["used"] <= 75 and out["token_budget"]["limit"] == 75
    assert "knight in ornate armor on a horse" in out["enhanced_prompt"]


def test_wan_paragraph_leads_with_camera(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue("A cat leaps through tall grass. The sun sets behind the hills.")
    out = enhance(worker, "a cat chasing a butterfly", job_type="video_fast")
    assert out["enhanced_prompt"].startswith("Smooth tracking shot.")
    assert "a cat chasing a butterfly" in out["enhanced_prompt"]
    assert "wan_optimizations" in out and out["token_budget"]["used"] <= 175


def test_legacy_mode_returns_the_smaller_set(worker: Worker) -> None:
    out = run(worker, {"action": "enhance_legacy", "prompt": "castle"})
    assert set(out) == {
        "success",
        "original_prompt",
        "enhanced_prompt",
        "generation_time",
        "enhancement_type",
        "job_type",
        "quality",
    }


def test_same_seed_same_prompt_is_deterministic(make_worker: Any) -> None:
    engine = FakeEngine(default=GOOD_TAGS)
    a = enhance(make_worker(engine), "castle", seed=5)
    b = enhance(make_worker(engine), "castle", seed=5)
    assert a["enhanced_prompt"] == b["enhanced_prompt"]
    assert engine.history[0].params.seed == engine.history[1].params.seed == 5


def test_clean_up_strips_wrappers() -> None:
    raw = '<think>plan it</think>\nHere is your enhanced prompt:\n"**red fox, snow**"\nNote: I added snow.'
    assert clean_model_output(raw) == "red fox, snow"


def test_operator_profiles_file_adds_job_types(make_worker: Any, tmp_path: Any) -> None:
    import json

    from shared.enhance.profiles import PROFILES_FILE

    base = json.loads(PROFILES_FILE.read_text())["profiles"]["sdxl_image_fast"]
    (tmp_path / "p.json").write_text(json.dumps({"profiles": {"sdxl_square": {**base, "token_limit": 40}}}))
    worker = make_worker(profiles_file=tmp_path / "p.json")
    out = enhance(worker, "castle", job_type="sdxl_square")
    assert out["token_budget"]["limit"] == 40 and out["token_budget"]["used"] <= 40
    info = run(worker, {"action": "enhancement_info"})
    assert "sdxl_square" in info["supported_job_types"]


def test_cache_hit_makes_no_thread_hop(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue(GOOD_TAGS)
    enhance(worker, "castle")
    loop = asyncio.new_event_loop()
    try:
        out = loop.run_until_complete(worker.handle({"input": {"action": "enhance", "prompt": "castle"}}))
    finally:
        loop.close()
    assert out["cache_hit"] is True


# ---- the safety review's defects (D2, D3, D5, D7), written before the fixes ----------------


@pytest.mark.parametrize(
    "context",
    [
        {"subject": "\nnaked\nchild"},  # reviewer
        {"a": "x\tnude", "b": "y\nkid"},
        {"s": '"naked"\\kid'},
        {"scene": {"who": ["\nnaked", "\u00e9l\u00e8ve\nchild"]}},
        {"\nnaked\nchild": "portrait"},
    ],
)
def test_context_is_checked_as_raw_strings(make_worker: Any, context: dict[str, Any]) -> None:
    """D2: keys and string values are read as written, not as escaped JSON text."""
    worker = make_worker(FakeEngine(default=GOOD_TAGS), adult_content_enabled=True)
    out = enhance(worker, "a portrait photo", context=context)
    assert out["error_code"] == "content_policy_violation"


def test_model_sees_context_as_checked(worker: Worker, fake: FakeEngine) -> None:
    """D2: the model receives the raw strings the policy read, not JSON escapes."""
    fake.default = GOOD_TAGS
    enhance(worker, "a portrait photo", context={"subject": "line one\nline two", "mood": {"tone": 'calm "blue"'}})
    sent = fake.history[-1].messages[-1].content
    assert "line one\nline two" in sent and 'calm "blue"' in sent and "\\n" not in sent


@pytest.mark.parametrize(
    ("prompt", "context", "system"),
    [
        ("nude woman", {"look": "youthful face, petite"}, None),  # reviewer
        ("nude woman", {"note": "she looks young"}, None),  # reviewer
        ("nude woman, youthful face, petite", None, None),  # reviewer
        ("nude woman", None, "Describe the subject with a youthful look."),
        ("nude woman, aged 19", {"style": "girlish"}, None),
    ],
)
def test_no_adult_ages_or_words_added_to_youth_signals(
    make_worker: Any, prompt: str, context: dict[str, Any] | None, system: str | None
) -> None:
    """D3: with an age or youth signal anywhere (prompt, context, system prompt), neither the
    composer nor the model's draft adds adult words or adult ages."""
    draft = "nude woman, adult woman, mature face, 30 years old, aged 25, 40yo, soft studio light, detailed"
    for job in ("sdxl_image_fast", "sdxl_image_high", "video_fast"):
        worker = make_worker(FakeEngine(default=draft), adult_content_enabled=True)
        out = enhance(worker, prompt, context=context, system_prompt=system, job_type=job)
        assert out["success"], out
        final = out["enhanced_prompt"].lower()
        for added in ("adult", "mature", "30 years old", "aged 25", "40yo"):
            assert added not in final, (job, added, final)


def test_cache_hit_is_checked_again(worker: Worker, fake: FakeEngine) -> None:
    """D5: a stored body that crosses the line is refused, never returned."""
    fake.default = GOOD_TAGS
    assert enhance(worker, "a red apple")["cache_hit"] is False
    store, service = worker.ctx.store, worker.ctx.enhance
    assert isinstance(store, MemoryStore)
    keys = [k for k in store._cache if k.startswith("enh:")]  # the in-process store
    assert len(keys) == 1

    async def poison() -> None:
        entry = dict(await store.cache_get(keys[0], dict) or {})
        entry["enhancement"] = {**entry["enhancement"], "enhanced_prompt": "naked child, a red apple"}
        await store.cache_put(keys[0], entry)

    asyncio.run(poison())
    assert enhance(worker, "a red apple")["error_code"] == "content_policy_violation"
    assert service.policy.digest  # the lists' digest is part of every key


def test_cache_key_changes_with_the_lists(make_worker: Any, tmp_path: Any) -> None:
    """D5: a list change (here an operator's extension) makes earlier cached bodies unreachable."""
    from shared.schemas.enhance import EnhanceRequest

    (tmp_path / "minor_terms.txt").write_text("youngling\n")
    plain, extended = make_worker(), make_worker(policy_dir=str(tmp_path))
    req = EnhanceRequest.model_validate({"prompt": "a red apple"})
    keys = []
    for w in (plain, extended):
        service = w.ctx.enhance
        keys.append(service.cache_key(req, service.profiles.get(req.job_type), False))
    assert keys[0] != keys[1]


@pytest.mark.parametrize("adult_enabled", [True, False])
def test_system_prompt_does_not_switch_adult_mode_on(make_worker: Any, adult_enabled: bool) -> None:
    """D7: adult mode and content_rating come from the caller's prompt, not the platform's system prompt."""
    engine = FakeEngine(default="a red apple on a wooden table, soft light")
    worker = make_worker(engine, adult_content_enabled=adult_enabled)
    for system in ("Never produce nsfw, nude or sexual content.", "You write erotic, explicit, sexy prompts."):
        out = enhance(worker, "a red apple on a table", system_prompt=system)
        assert out["success"] and out["adult_mode"] is False and out["content_rating"] == "general", out
        assert "anatomical accuracy" not in out["enhanced_prompt"]
