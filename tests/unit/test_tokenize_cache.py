"""The prompt tokenizer's caches change no id: runs of text and template skeletons are reused,
bounded by the tokens they hold. Uses the embedded model's real tokenizer (SmolLM2's ChatML),
with its own template, a Qwen 2.5-style one and none (the fixtures of the injection tests)."""

from __future__ import annotations

import copy
from typing import Any

from shared.engine.base import Message
from shared.engine.tokenize import PromptTokenizer, TokenLru
from tests.unit.test_input_limits_tokenize import INJECTION, conversation, smol, tokens

__all__ = ["smol", "tokens"]  # fixtures shared with the injection tests

TURNS = [
    Message("user", "Hi! I'm planning a trip."),
    Message("assistant", "Where to, and when?"),
    Message("user", "Somewhere warm in spring " + INJECTION),
    Message("assistant", "  Crete or Madeira.\n\n"),
    Message("user", "émojis 😀 日本語 and\ttabs"),
]


def uncached(tokens: PromptTokenizer) -> PromptTokenizer:
    """The same tokenizer with a run cache that keeps nothing."""
    return PromptTokenizer(copy.deepcopy(tokens.tokenizer), run_cache_tokens=0)


def test_a_warm_cache_gives_the_ids_of_a_cold_one(tokens: PromptTokenizer) -> None:
    cold = uncached(tokens)
    system = [Message("system", "Be brief.")]
    for n in range(1, len(TURNS) + 1, 2):  # the conversation grows, its earlier turns come from the cache
        for messages in (system + TURNS[:n], TURNS[:n], [*system, *TURNS[:n], Message("user", "x")]):
            assert tokens.prompt_ids(messages) == cold.prompt_ids(messages)
            assert tokens.head_ids(messages) == cold.head_ids(messages)
            assert tokens.count_chat_tokens(messages) == len(cold.prompt_ids(messages))
    for message in TURNS:
        assert tokens.encode(message.content) == cold.encode(message.content)
    assert len(tokens.runs) > 5 and len(cold.runs) == 0


def test_the_cache_keeps_caller_text_literal(tokens: PromptTokenizer) -> None:
    messages = conversation("history")
    first = tokens.prompt_ids(messages)
    assert tokens.prompt_ids(messages) == first  # now wholly from the cache
    assert tokens.tokenizer.decode(first) == tokens.render(messages)
    assert tokens.encode(INJECTION) == uncached(tokens).encode(INJECTION)


def test_callers_get_copies(smol: Any) -> None:
    tokens = PromptTokenizer(smol)
    ids, words = tokens.prompt_ids(TURNS), tokens.encode("hello there")
    expected = (list(ids), list(words))
    ids.append(0)
    words.clear()
    assert (tokens.prompt_ids(TURNS), tokens.encode("hello there")) == expected


def test_the_run_cache_drops_the_least_recently_used_within_its_token_bound() -> None:
    lru = TokenLru(max_tokens=10)
    lru.put("a", [1, 2, 3])
    lru.put("b", [4, 5, 6])
    assert lru.get("a") == (1, 2, 3)  # now b is the least recently used
    lru.put("c", [7, 8])
    assert lru.get("b") is None and lru.get("a") == (1, 2, 3) and lru.get("c") == (7, 8)
    assert lru.held == 4 + 3 <= 10
    assert lru.put("huge", list(range(20))) == tuple(range(20)) and lru.get("huge") is None  # never held
    for i in range(50):  # empty runs count too: the entries stay bounded
        lru.put(f"empty {i}", [])
    assert len(lru) <= 10 and lru.held <= 10
    lru.clear()
    assert len(lru) == 0 and lru.held == 0 and lru.get("empty 49") is None
    wide = TokenLru(max_tokens=100)
    wide.put("-" * 64, [7])  # one token for 64 characters: the text's size is what is held
    assert wide.held == 64 // 4 + 1
    wide.put("=" * 4000, [8])
    assert wide.get("=" * 4000) is None and wide.held == 17  # 1,000 units of text: over the bound


def test_a_template_that_writes_the_time_is_rendered_for_each_prompt(smol: Any) -> None:
    tok = copy.deepcopy(smol)
    tok.chat_template = (
        "{{- '<|im_start|>system\\nNow: ' + strftime_now('%H:%M:%S.%f') + '<|im_end|>\\n' }}"
        "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}"
    )
    tokens = PromptTokenizer(tok)
    first, second = tokens.prompt_ids(TURNS), tokens.prompt_ids(TURNS)
    assert first != second and len(first) > 20  # a cached skeleton would have frozen the time
