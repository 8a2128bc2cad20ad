"""Per-row decoding inside one batched `generate`.

transformers applies one set of sampling parameters (and one RNG) to a whole batch. To
batch jobs with different temperatures, top-p/top-k, repetition penalties, seeds, stop
strings and lengths, every row is decoded here: the processor picks each row's token with
the row's own parameters and generator, then masks the logits so that `generate`'s greedy
step takes exactly that token. A row decodes the same tokens whether it runs alone or in a
batch; a row that ended (EOS, stop string, max_tokens, its caller gave up) is fed EOS, and
`generate` stops when every row has.

Generators live on the logits' device: a seeded row has its own, an unseeded row draws
from the worker's, never from torch's global RNG.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor

from shared.engine.base import GenerationParams
from shared.engine.streaming import ReplyText


@dataclass
class Row:
    params: GenerationParams
    reply: ReplyText
    cancelled: Callable[[], bool]


class WorkerRng:
    """The unseeded rows' generators, one per device, seeded from the OS once."""

    def __init__(self) -> None:
        self._by_device: dict[str, torch.Generator] = {}

    def on(self, device: torch.device) -> torch.Generator:
        gen = self._by_device.get(str(device))
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(secrets.randbits(63))
            self._by_device[str(device)] = gen
        return gen


class RowSampler(LogitsProcessor):
    def __init__(self, rows: list[Row], eos_ids: set[int], prompt_mask: torch.Tensor, rng: WorkerRng) -> None:
        self.rows = rows
        self.eos = min(eos_ids) if eos_ids else 0
        self.eos_ids = eos_ids
        self.prompt_mask = prompt_mask.bool()  # which prompt positions are real tokens, not padding
        self.rng = rng

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> Any:
        out = torch.full_like(scores, float("-inf"))
        for i, row in enumerate(self.rows):
            reply = row.reply
            if not reply.ended and row.cancelled():
                reply.end("length")
            token = self.eos if reply.ended else self._pick(i, input_ids, scores)
            if not reply.ended:
                if token in self.eos_ids:
                    reply.end("stop")
                else:
                    reply.push(token, row.params.max_tokens)
                    if reply.finish == "stop":  # a stop string: the row ends here
                        token = self.eos
            out[i, token] = 0.0
        return out

    def _pick(self, i: int, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> int:
        p = self.rows[i].params
        logits = scores[i].float()
        if p.repetition_penalty != 1.0:
            width = self.prompt_mask.shape[1]
            ids = input_ids[i]
            seen = torch.cat((ids[:width][self.prompt_mask[i]], ids[width:])).unique()  # padding is not text
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
        return int(torch.multinomial(probs, 1, generator=self._generator(i, logits.device)))

    def _generator(self, i: int, device: torch.device) -> torch.Generator:
        row = self.rows[i]
        if row.params.seed is None:
            return self.rng.on(device)
        if row.reply.generator is None or row.reply.generator.device != device:
            gen = torch.Generator(device=device)
            gen.manual_seed(row.params.seed)
            row.reply.generator = gen
        return row.reply.generator
