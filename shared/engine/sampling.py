"""Per-row decoding inside one batched `generate`.

transformers applies one set of sampling parameters (and one RNG) to a whole batch. To
batch jobs with different temperatures, top-p/top-k, repetition penalties, seeds and
lengths, every row is decoded here: the processor picks each row's token with the row's
own parameters and generator, then masks the logits so that `generate`'s greedy step
takes exactly that token. A row decodes the same tokens whether it runs alone or in a
batch, and the chosen ids can be streamed as they are picked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor

from shared.engine.base import GenerationParams


@dataclass
class Row:
    params: GenerationParams
    pad: int  # padding tokens of this row in the batch
    pad_start: int = 0  # where they sit: 0 (left padding) or after a shared cached prefix
    on_token: Callable[[int], None] | None = None
    generated: int = 0
    done: bool = False


class RowSampler(LogitsProcessor):
    def __init__(self, rows: list[Row], eos_ids: set[int]) -> None:
        self.rows = rows
        self.eos = min(eos_ids) if eos_ids else 0
        self.eos_ids = eos_ids
        self.generators: list[torch.Generator | None] = []
        for row in rows:
            gen = None
            if row.params.temperature > 0:
                gen = torch.Generator()
                gen.manual_seed(row.params.seed if row.params.seed is not None else torch.seed())
            self.generators.append(gen)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> Any:
        out = torch.full_like(scores, float("-inf"))
        for i, row in enumerate(self.rows):
            token = self.eos if row.done or row.generated >= row.params.max_tokens else self._pick(i, input_ids, scores)
            out[i, token] = 0.0
            if not row.done:
                row.generated += 1
                if token in self.eos_ids or row.generated > row.params.max_tokens:
                    row.done = True
                elif row.on_token is not None:
                    row.on_token(token)
        return out

    def _pick(self, i: int, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> int:
        p = self.rows[i].params
        logits = scores[i].float()
        if p.repetition_penalty != 1.0:
            row = self.rows[i]
            ids = input_ids[i]
            # padding is not part of this row's text
            seen = torch.cat((ids[: row.pad_start], ids[row.pad_start + row.pad :])).unique()
            picked = logits[seen]
            logits[seen] = torch.where(picked > 0, picked / p.repetition_penalty, picked * p.repetition_penalty)
        if p.temperature <= 0:
            return int(torch.argmax(logits))
        logits = logits / p.temperature
        if p.top_k and p.top_k < logits.numel():
            kth = torch.topk(logits, p.top_k).values[-1]
            logits[logits < kth] = float("-inf")
        if p.top_p < 1.0:
            ordered, index = torch.sort(logits, descending=True)
            cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
            drop = cumulative - torch.softmax(ordered, dim=-1) > p.top_p  # keep the token that crosses top_p
            logits[index[drop]] = float("-inf")
        probs = torch.softmax(logits, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generators[i]))
