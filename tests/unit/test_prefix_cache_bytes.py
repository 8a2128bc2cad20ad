"""The transformers engine's prefix cache is bounded by the bytes its keys and values hold."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from shared.engine.hf_engine.prefix_cache import PrefixCache, cache_bytes


class TinyModel:
    """Stands in for a causal LM's forward: one layer, 4 float32 values per token for K and for V."""

    def __call__(self, input_ids: torch.Tensor, past_key_values: Any = None, use_cache: bool = True) -> Any:
        n = input_ids.shape[1] + (past_key_values.layers[0].keys.shape[2] if past_key_values else 0)
        layer = SimpleNamespace(keys=torch.zeros(1, 1, n, 4), values=torch.zeros(1, 1, n, 4))
        return SimpleNamespace(past_key_values=SimpleNamespace(layers=[layer]))


def test_entries_are_dropped_oldest_first_once_their_bytes_pass_the_budget() -> None:
    per_token = 2 * 4 * 4  # keys and values, 4 float32 each
    cache = PrefixCache(entries=100, min_tokens=1, max_bytes=30 * per_token)
    for start in (1000, 2000, 3000):  # three distinct 10-token prefixes: 30 tokens fit exactly
        cache.layers(TinyModel(), list(range(start, start + 10)), "cpu")
    assert cache.held_bytes == 30 * per_token and cache.misses == 3
    cache.layers(TinyModel(), list(range(4000, 4010)), "cpu")  # a fourth pushes the oldest out
    assert cache.held_bytes == 30 * per_token
    cache.layers(TinyModel(), list(range(1000, 1010)), "cpu")
    assert cache.misses == 5  # the first prefix was dropped and had to be built again


def test_a_prefix_larger_than_the_whole_budget_serves_its_batch_but_is_not_kept() -> None:
    cache = PrefixCache(entries=100, min_tokens=1, max_bytes=100)
    layers = cache.layers(TinyModel(), list(range(50)), "cpu")
    assert layers[0][0].shape[2] == 50 and cache.held_bytes == 0
    assert cache_bytes(TinyModel()(torch.zeros(1, 3, dtype=torch.long)).past_key_values) == 3 * 32
