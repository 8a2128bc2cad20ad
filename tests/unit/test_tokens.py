"""CLIP token counting: ids match the reference tokenizer; weighting syntax is parsed like A1111."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from shared.enhance.tokens import clip_ids, count_plain, count_sdxl, parse_attention

SAMPLES = [
    "a photo of a cat",
    "Masterpiece, best quality, ultra detailed, beautiful woman, 85mm, f/1.8, bokeh",
    "über-café in Zürich at golden hour!!!",
    "日本の城と桜, cherry blossoms",
    "a (red:1.2) fox, ((snow)), [blur] BREAK <lora:foxy:0.8> embedding:easynegative",
    "   spaces   and\ttabs\nnewlines  ",
    "emoji 🦊🔥 and numbers 1234567",
]


def _reference() -> Any:
    """OpenAI's own simple_tokenizer from clip-anytorch, loaded by path (its package imports torchvision)."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("clip-anytorch is not installed (make test installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "simple_tokenizer.py"
    module_spec = importlib.util.spec_from_file_location("clip_reference_tokenizer", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.SimpleTokenizer()


@pytest.mark.parametrize("text", SAMPLES)
def test_ids_match_reference_tokenizer(text: str) -> None:
    assert clip_ids(text) == _reference().encode(text)


def test_weighting_syntax_changes_weights_not_tokens() -> None:
    plain = count_sdxl("a red fox, snow, blur").used
    assert count_sdxl("a (red:1.2) fox, ((snow)), [blur]").used == plain
    assert count_sdxl("a red fox, snow, blur <lora:foxy:0.8>").used == plain


def test_parse_attention_weights() -> None:
    parsed = dict(parse_attention("a (red:1.5) ((big)) [small] \\(literal\\)"))
    assert parsed["red"] == 1.5
    assert parsed["big"] == pytest.approx(1.21)
    assert parsed["small"] == pytest.approx(1 / 1.1)
    assert "(" in parsed and ")" in parsed


def test_break_starts_a_new_chunk() -> None:
    assert count_sdxl("cat").chunks == 1
    assert count_sdxl("cat BREAK dog").chunks == 2
    long = ", ".join(["red apple"] * 40)
    assert count_sdxl(long).used > 75 and count_sdxl(long).chunks == 2


def test_plain_count_for_wan_is_bpe_and_far_inside_umt5() -> None:
    text = "Smooth tracking shot. A cat chases a butterfly across a sunny meadow. " * 5
    assert count_plain(text).used == len(clip_ids(text))
    assert count_plain(text).used < 512
