"""Per-row decoding inside one batched `generate`.

transformers applies one set of sampling parameters (and one RNG) to a whole batch. To
batch jobs with different temperatures, top-p/top-k, repetition penalties, seeds, stop
strings and lengths, every row is decoded here: the processor picks each row's token with
the row's own parameters and generator, then masks the logits so that `generate`'s greedy
step takes exactly that token. All rows are picked in a few batched operations with one
device sync per step: per-row tensor work measured 6-10 ms per row per step on an H200,
more than the model's own step. A row decodes the same tokens whether it runs alone or in
a batch; a row that ended (EOS, stop string, max_tokens, its caller gave up) is fed EOS,
and `generate` stops when every row has.

Generators live on the logits' device: a seeded row has its own, an unseeded row draws
from the worker's, never from torch's global RNG.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
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
        for row in self.rows:
            if not row.reply.ended and row.cancelled():
                row.reply.end("length")
        live = [i for i, row in enumerate(self.rows) if not row.reply.ended]
        tokens = [self.eos] * len(self.rows)
        if live:
            index = None if len(live) == len(self.rows) else torch.tensor(live, device=scores.device)
            picked = pick_tokens(
                _rows_of(scores, index),
                _rows_of(self._history(input_ids), index),
                [self.rows[i].params for i in live],
                [self._generator(i, scores.device) for i in live],
            )
            for i, token in zip(live, picked, strict=True):
                tokens[i] = self._follow(self.rows[i], token)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, torch.tensor(tokens, device=scores.device).unsqueeze(1), 0.0)

    def _follow(self, row: Row, token: int) -> int:
        """Record the picked token on its row; the token `generate` is made to take."""
        if token in self.eos_ids:
            row.reply.end("stop")
            return token
        row.reply.push(token, row.params.max_tokens)
        return self.eos if row.reply.finish == "stop" else token  # a stop string ends the row here

    def _history(self, input_ids: torch.LongTensor) -> torch.Tensor:
        """Each row's ids so far with padding replaced by the row's last id: padding is not text."""
        generated = input_ids.shape[1] - self.prompt_mask.shape[1]
        real = torch.nn.functional.pad(self.prompt_mask, (0, generated), value=True)
        return torch.where(real, input_ids, input_ids[:, -1:])

    def _generator(self, i: int, device: torch.device) -> torch.Generator | None:
        row = self.rows[i]
        if row.params.temperature <= 0:
            return None  # greedy: draws nothing, so a seeded row's sequence never depends on its batch
        if row.params.seed is None:
            return self.rng.on(device)
        if row.reply.generator is None or row.reply.generator.device != device:
            gen = torch.Generator(device=device)
            gen.manual_seed(row.params.seed)
            row.reply.generator = gen
        return row.reply.generator


def _rows_of(t: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    return t if index is None else t.index_select(0, index)


def pick_tokens(
    scores: torch.Tensor, history: torch.Tensor, params: list[GenerationParams], gens: Sequence[torch.Generator | None]
) -> list[int]:
    """One token per row, every row with its own parameters, in a few batched operations.

    Written here rather than with transformers' processors because those take one set of
    parameters per batch. Order as in transformers: repetition penalty, temperature, top-k,
    top-p. Filtering works on each row's top max(top_k) candidates (the whole vocabulary if a
    row has no top-k), and each row samples by inverse CDF with one uniform draw from its own
    generator, so a seeded row picks the same token alone or in any batch. One device sync."""
    device, width = scores.device, scores.shape[1]
    logits = scores.float()
    if any(p.repetition_penalty != 1.0 for p in params):
        penalty = torch.tensor([[p.repetition_penalty] for p in params], device=device)
        seen = logits.gather(1, history)
        logits = logits.scatter(1, history, torch.where(seen > 0, seen / penalty, seen * penalty))
    greedy = [p.temperature <= 0 for p in params]
    logits = logits / torch.tensor(
        [[1.0 if g else p.temperature] for g, p in zip(greedy, params, strict=True)], device=device
    )
    ks = [p.top_k if 0 < p.top_k < width else width for p in params]
    values, order = torch.topk(logits, max(ks), dim=-1)  # sorted, largest first
    rank = torch.arange(values.shape[1], device=device)
    values = values.masked_fill(rank >= torch.tensor([[k] for k in ks], device=device), float("-inf"))
    top_p = torch.tensor([[p.top_p if p.top_p < 1.0 else float("inf")] for p in params], device=device)
    probs = torch.softmax(values, dim=-1)
    values = values.masked_fill(probs.cumsum(-1) - probs > top_p, float("-inf"))  # keep the one crossing top_p
    cdf = torch.softmax(values, dim=-1).cumsum(-1)
    draws = [
        torch.rand(1, generator=g, device=device) if g is not None else torch.zeros(1, device=device) for g in gens
    ]
    point = torch.cat(draws).unsqueeze(1) * cdf[:, -1:]
    at = torch.searchsorted(cdf, point).clamp(max=values.shape[1] - 1)
    at = at.masked_fill(torch.tensor([[g] for g in greedy], device=device), 0)
    return [int(t) for t in order.gather(1, at).squeeze(1).tolist()]
