"""Per-row decoding inside one batched `generate`.

transformers applies one set of sampling parameters (and one RNG) to a whole batch. To
batch jobs with different temperatures, top-p/top-k, repetition penalties, seeds, stop
strings and lengths, every row is decoded here: the processor picks each row's token with
the row's own parameters and generator, then masks the logits so that `generate`'s greedy
step takes exactly that token. All rows are picked in a few batched operations with one
blocking device sync per step (the picked ids; parameters go to the device once per batch,
the live rows' index when a row ends): per-row tensor work measured 6-10 ms per row per step on an H200,
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


GREEDY_BELOW = 1e-5  # temperatures this small overflow the logits; their limit is greedy (as in vLLM)


def greedy(p: GenerationParams) -> bool:
    return p.temperature < GREEDY_BELOW


@dataclass(frozen=True)
class RowTable:
    """Each row's sampling parameters as columns on the logits' device, made once per batch:
    a tensor built from a Python list is a blocking host-to-device copy, so never per step."""

    penalty: torch.Tensor  # [rows, 1]
    temperature: torch.Tensor  # [rows, 1]; 1 for greedy rows
    top_k: torch.Tensor  # [rows, 1]; the vocabulary's width where a row has none
    top_p: torch.Tensor  # [rows, 1]; inf where a row has none
    greedy: torch.Tensor  # [rows, 1] bool
    candidates: int  # filtering looks at this many per row: twice the largest top_k, for ties
    penalised: bool  # some row has a repetition penalty

    @classmethod
    def of(cls, params: list[GenerationParams], width: int, device: torch.device) -> RowTable:
        def column(values: list[Any], dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.tensor([[v] for v in values], dtype=dtype, device=device)

        ks = [p.top_k if 0 < p.top_k < width else width for p in params]
        return cls(
            penalty=column([p.repetition_penalty for p in params]),
            temperature=column([1.0 if greedy(p) else p.temperature for p in params]),
            top_k=column(ks, torch.long),
            top_p=column([p.top_p if p.top_p < 1.0 else float("inf") for p in params]),
            greedy=column([greedy(p) for p in params], torch.bool),
            candidates=min(width, 2 * max(ks)),
            penalised=any(p.repetition_penalty != 1.0 for p in params),
        )

    def rows(self, index: torch.Tensor | None) -> RowTable:
        if index is None:
            return self
        pick = lambda t: t.index_select(0, index)  # noqa: E731
        return RowTable(
            pick(self.penalty), pick(self.temperature), pick(self.top_k), pick(self.top_p), pick(self.greedy),
            self.candidates, self.penalised,
        )  # fmt: skip


class RowSampler(LogitsProcessor):
    def __init__(self, rows: list[Row], eos_ids: set[int], prompt_mask: torch.Tensor, rng: WorkerRng) -> None:
        self.rows = rows
        self.eos = min(eos_ids) if eos_ids else 0
        self.eos_ids = eos_ids
        self.prompt_mask = prompt_mask.bool()  # which prompt positions are real tokens, not padding
        self.rng = rng
        self._table: RowTable | None = None
        self._live: tuple[list[int], torch.Tensor | None] = ([], None)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> Any:
        for row in self.rows:
            if not row.reply.ended and row.cancelled():
                row.reply.end("length")
        live, index = self._live_rows(scores.device)
        chosen = torch.full((len(self.rows),), self.eos, dtype=torch.long, device=scores.device)
        if live:
            if self._table is None:
                self._table = RowTable.of([r.params for r in self.rows], scores.shape[1], scores.device)
            history = _rows_of(self._history(input_ids), index) if self._table.penalised else None
            picked, ids = pick_tokens(
                _rows_of(scores, index),
                history,
                self._table.rows(index),
                [self._generator(i, scores.device) for i in live],
            )
            chosen = ids if index is None else chosen.index_copy(0, index, ids)
            for i, token in zip(live, picked, strict=True):
                if self._follow(self.rows[i], token) != token:
                    chosen[i] = self.eos  # a stop string ended the row: a scalar fill, no sync
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, chosen.unsqueeze(1), 0.0)

    def _live_rows(self, device: torch.device) -> tuple[list[int], torch.Tensor | None]:
        """The rows still decoding, and their index on the device (copied only when it changes)."""
        live = [i for i, row in enumerate(self.rows) if not row.reply.ended]
        if live != self._live[0]:
            index = None if len(live) == len(self.rows) else torch.tensor(live, device=device)
            self._live = (live, index)
        return self._live

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
        if greedy(row.params):
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
    scores: torch.Tensor,
    history: torch.Tensor | None,  # the ids each row has seen; needed only where a row is penalised
    table: RowTable,
    gens: Sequence[torch.Generator | None],
) -> tuple[list[int], torch.Tensor]:
    """One token per row, every row with its own parameters, in a few batched operations.

    Written here rather than with transformers' processors because those take one set of
    parameters per batch. Order as in transformers: repetition penalty, temperature, top-k
    (ties with the k-th kept, as transformers does, up to as many again), top-p. Each row
    samples by inverse CDF with one uniform draw from its own generator, so a seeded row
    draws the same numbers alone or in any batch. Returns the ids as a list (the step's one
    blocking sync) and as a tensor on the device."""
    device = scores.device
    logits = scores.float()
    if table.penalised:
        if history is None:
            raise ValueError("rows with a repetition penalty need the ids they have seen")
        seen = logits.gather(1, history)
        penalised = torch.where(seen > 0, seen / table.penalty, seen * table.penalty)
        logits = logits.scatter(1, history, penalised)  # repeated ids write the same value
    values, order = torch.topk(logits / table.temperature, table.candidates, dim=-1)  # largest first
    kth = values.gather(1, table.top_k - 1)
    values = values.masked_fill(values < kth, float("-inf"))
    probs = torch.softmax(values, dim=-1)
    values = values.masked_fill(probs.cumsum(-1) - probs > table.top_p, float("-inf"))  # keeps the one crossing
    cdf = torch.softmax(values, dim=-1).cumsum(-1)
    zero = torch.zeros(1, device=device)
    draws = torch.cat([torch.rand(1, generator=g, device=device) if g is not None else zero for g in gens])
    at = torch.searchsorted(cdf, draws.unsqueeze(1) * cdf[:, -1:]).clamp(max=values.shape[1] - 1)
    ids = order.gather(1, at.masked_fill(table.greedy, 0)).squeeze(1)
    return [int(t) for t in ids.tolist()], ids
