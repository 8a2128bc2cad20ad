"""Top-k then top-p without sorting the vocabulary, for vLLM's CPU build.

vLLM's CPU sampler (0.32, no Triton there) applies top-p by sorting every row's whole vocabulary
each step (`apply_top_k_top_p_pytorch`). Measured on this 2-core machine with the embedded model's
49,152-token vocabulary: 4 ms a step for one row, 32 ms for eight (the model's own matmuls for
eight rows take about as long), so at concurrency 8 a third of each decode step was a sort. Our
requests nearly always carry a top-k (DEFAULT_TOP_K 50): the top-p nucleus then lies inside the
k best tokens, so this processor takes those k with `topk` (no full sort), applies top-p among
them, and masks the rest to -inf; the request reaches vLLM's sampler with top-k and top-p off,
which then samples from the masked logits directly.

Same distribution as vLLM's own masking: it runs where vLLM's argmax-invariant processors run,
after penalties and temperature and before sampling; the nucleus is vLLM's rule (drop the least
likely tokens whose cumulative probability stays within 1 - top_p, keep at least one). One
difference at the edge: exact ties at the k-th logit keep k tokens here, all tied ones in vLLM.

This module is loaded in vLLM's engine core process (`logits_processors=[NarrowTopKTopP]`); it
imports nothing of ours beyond itself.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

KEY = "narrow_top_k_top_p"  # SamplingParams.extra_args[KEY] = [top_k, top_p]


class NarrowTopKTopP(LogitsProcessor):
    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.rows: dict[int, tuple[int, float]] = {}

    def is_argmax_invariant(self) -> bool:
        return True  # the most likely token always stays: greedy rows are never touched

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.rows, batch_update, _wanted)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return logits
        index = torch.tensor(list(self.rows), dtype=torch.long)
        ks = torch.tensor([k for k, _ in self.rows.values()], dtype=torch.long)
        ps = torch.tensor([p for _, p in self.rows.values()], dtype=torch.float32)
        rows = logits.index_select(0, index)
        top = min(int(ks.max()), rows.shape[-1])
        values, ids = rows.topk(top, dim=-1)  # descending, the k best of each row
        # this row's own k: positions past it drop
        drop = torch.arange(top).unsqueeze(0) >= ks.unsqueeze(1)
        values = values.masked_fill(drop, float("-inf"))
        # top-p among the survivors, vLLM's rule: ascending order, drop while the mass so far <= 1 - p
        ascending = values.flip(-1)
        mass = ascending.softmax(dim=-1).cumsum(dim=-1)
        cut = mass <= (1.0 - ps).unsqueeze(1)
        cut[:, -1] = False  # the most likely token stays
        values = ascending.masked_fill(cut, float("-inf")).flip(-1)
        narrowed = torch.full_like(rows, float("-inf")).scatter_(1, ids, values)
        logits.index_copy_(0, index, narrowed)
        return logits


def _wanted(params: Any, prompt_ids: list[int] | None, output_ids: list[int]) -> tuple[int, float] | None:
    extra = params.extra_args or {}
    pair = extra.get(KEY)
    if not pair:
        return None
    return int(pair[0]), float(pair[1])
