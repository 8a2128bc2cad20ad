"""Prefix reuse: the KV cache of a prompt's fixed beginning (a profile's system prompt and
examples, a conversation's earlier turns) is computed once and reused, so a job pays only
for its new tokens."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any


def cache_bytes(cache: Any) -> int:
    """Bytes held by a DynamicCache's keys and values."""
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))


class PrefixCache:
    """Cached prefixes, least recently used dropped first once more than `entries` are held or
    their keys and values hold more than `max_bytes` (a Qwen-7B prefix of 8,192 tokens is ~470 MB:
    an entry count alone does not bound memory). A prefix bigger than the whole budget is used
    for its batch and not kept."""

    def __init__(self, entries: int, min_tokens: int, max_bytes: int = 1 << 30) -> None:
        self.entries = entries
        self.min_tokens = min_tokens
        self.max_bytes = max_bytes
        self._store: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._sizes: dict[tuple[int, ...], int] = {}
        self.held_bytes = 0
        self.hits = 0
        self.misses = 0
        self.last_built = (0, 0)  # (tokens computed, prefix length) of the latest miss

    def usable(self, prefix_ids: list[int], prompt_ids: list[int]) -> bool:
        """Only a real, long enough token prefix with at least one new token after it."""
        n = len(prefix_ids)
        return self.entries > 0 and n >= self.min_tokens and len(prompt_ids) > n and prompt_ids[:n] == prefix_ids

    def layers(self, model: Any, prefix_ids: list[int], device: str) -> list[tuple[Any, Any]]:
        """The prefix's (keys, values) per layer, [1, heads, len, dim] each, built on first use.

        The tensors are the cache's own: callers build new ones from them, never write to them."""
        import torch

        key = tuple(prefix_ids)
        cache = self._store.get(key)
        if cache is None:
            self.misses += 1
            # A conversation's head grows turn by turn: start from the longest cached head it extends.
            base = max((k for k in self._store if len(k) < len(key) and key[: len(k)] == k), key=len, default=())
            cache = copy.deepcopy(self._store[base]) if base else None
            with torch.inference_mode():
                ids = torch.tensor([prefix_ids[len(base) :]], device=device)
                cache = model(input_ids=ids, past_key_values=cache, use_cache=True).past_key_values
            self.last_built = (len(key) - len(base), len(key))
            size = cache_bytes(cache)
            if size <= self.max_bytes:
                self._store[key], self._sizes[key] = cache, size
                self.held_bytes += size
                while len(self._store) > self.entries or self.held_bytes > self.max_bytes:
                    old, _ = self._store.popitem(last=False)
                    self.held_bytes -= self._sizes.pop(old)
        else:
            self.hits += 1
            self._store.move_to_end(key)
        return [(layer.keys, layer.values) for layer in cache.layers]

    def clear(self) -> None:
        self._store.clear()
        self._sizes.clear()
        self.held_bytes = 0
