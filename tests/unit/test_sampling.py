"""The batched per-row sampler against a plain one-row-at-a-time reference (no model needed)."""

from __future__ import annotations

from collections import Counter
from typing import cast

import torch

from shared.engine import GenerationParams
from shared.engine.hf_engine.sampling import Row, RowSampler, RowTable, WorkerRng, pick_tokens

VOCAB = 64


def pick(
    logits: torch.Tensor, seen: torch.Tensor, params: list[GenerationParams], gens: list[torch.Generator | None]
) -> list[int]:
    return pick_tokens(logits, seen, RowTable.of(params, logits.shape[1], logits.device), gens)[0]


def reference_probs(logits: torch.Tensor, seen: torch.Tensor, p: GenerationParams) -> torch.Tensor:
    """The textbook order for one row: penalty on the seen ids, temperature, top-k, top-p."""
    logits = logits.float().clone()
    if p.repetition_penalty != 1.0:
        ids = seen.unique()
        picked = logits[ids]
        logits[ids] = torch.where(picked > 0, picked / p.repetition_penalty, picked * p.repetition_penalty)
    if p.temperature <= 0:
        return torch.nn.functional.one_hot(logits.argmax(), logits.numel()).float()
    logits = logits / p.temperature
    if 0 < p.top_k < logits.numel():
        logits[logits < torch.topk(logits, p.top_k).values[-1]] = float("-inf")
    if p.top_p < 1.0:
        ordered, index = torch.sort(logits, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        logits[index[probs.cumsum(-1) - probs > p.top_p]] = float("-inf")
    return torch.softmax(logits, dim=-1)


PARAMS = [
    GenerationParams(temperature=0.0, repetition_penalty=1.3),
    GenerationParams(temperature=0.8, top_p=0.9, top_k=20, repetition_penalty=1.1),
    GenerationParams(temperature=1.3, top_p=1.0, top_k=0, repetition_penalty=1.0),
    GenerationParams(temperature=0.5, top_p=0.5, top_k=0, repetition_penalty=1.2),
    GenerationParams(temperature=1.0, top_p=0.95, top_k=5, repetition_penalty=1.0),
]


def test_each_row_samples_its_own_distribution() -> None:
    torch.manual_seed(0)
    logits = torch.randn(len(PARAMS), VOCAB) * 3
    seen = torch.randint(0, VOCAB, (len(PARAMS), 12))
    draws = 4000
    for row, p in enumerate(PARAMS):
        expected = reference_probs(logits[row], seen[row], p)
        gen = torch.Generator().manual_seed(row)
        tokens = pick(logits[row].expand(draws, VOCAB), seen[row].expand(draws, -1), [p] * draws, [gen] * draws)
        counts = Counter(tokens)
        assert all(expected[t] > 0 for t in counts)  # nothing outside the row's kept set, ever
        observed = torch.tensor([counts[t] / draws for t in range(VOCAB)])
        assert (observed - expected).abs().sum() / 2 < 0.05, (row, p)  # total variation distance


def test_a_seeded_row_picks_the_same_alone_and_in_any_batch() -> None:
    torch.manual_seed(1)
    steps = [torch.randn(len(PARAMS), VOCAB) for _ in range(30)]
    seen = torch.randint(0, VOCAB, (len(PARAMS), 8))
    p = PARAMS[1]

    def run(rows: list[int]) -> list[int]:
        own = torch.Generator().manual_seed(7)
        others = torch.Generator().manual_seed(99)
        out = []
        for logits in steps:
            gens: list[torch.Generator | None] = [own if r == 1 else others for r in rows]
            picked = pick(logits[rows], seen[rows], [PARAMS[r] if r != 1 else p for r in rows], gens)
            out.append(picked[rows.index(1)])
        return out

    assert run([1]) == run([0, 1, 2, 3, 4]) == run([4, 3, 1])


def test_greedy_rows_draw_nothing_and_take_the_penalised_argmax() -> None:
    logits = torch.tensor([[5.0, 4.9, 1.0, 0.0]])
    seen = torch.tensor([[0, 0, 2]])
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    assert pick(logits, seen, [GenerationParams(temperature=0.0, repetition_penalty=1.5)], [None]) == [1]
    assert torch.equal(gen.get_state(), state)


def test_a_vanishing_temperature_is_greedy_not_overflow() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0, -1.0, 0.0]])
    tiny = GenerationParams(temperature=1e-39, repetition_penalty=1.0)
    assert pick(logits, torch.zeros(1, 1, dtype=torch.long), [tiny], [None]) == [0]


def test_ties_with_the_kth_candidate_are_kept() -> None:
    draws = 2000
    logits = torch.tensor([5.0, 1.0, 1.0, 1.0, 0.0, -1.0, 0.0, 0.0]).expand(draws, -1)
    p = GenerationParams(temperature=3.0, top_k=2, top_p=1.0, repetition_penalty=1.0)
    gen = torch.Generator().manual_seed(0)
    tokens = set(pick(logits, torch.zeros(draws, 1, dtype=torch.long), [p] * draws, [gen] * draws))
    assert tokens == {0, 1, 2, 3}  # the three tied at rank 2 all stay; nothing lower ever comes


class _Reply:
    """Just what RowSampler reads and writes on a row's reply."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.finish: str | None = None
        self.generator = None

    @property
    def ended(self) -> bool:
        return self.finish is not None

    def push(self, token: int, max_tokens: int) -> None:
        self.ids.append(token)
        if len(self.ids) >= max_tokens:
            self.end("length")

    def end(self, finish: str) -> None:
        self.finish = self.finish or finish


def test_padding_is_not_penalised_and_ended_rows_are_fed_eos() -> None:
    eos, pad = 0, 3
    greedy = GenerationParams(temperature=0.0, repetition_penalty=100.0, max_tokens=5)
    replies = [_Reply(), _Reply()]
    rows = [Row(greedy, reply, lambda: False) for reply in replies]  # type: ignore[arg-type]
    replies[1].end("stop")
    prompt_mask = torch.tensor([[0, 0, 1], [1, 1, 1]])
    sampler = RowSampler(rows, {eos}, prompt_mask, WorkerRng())
    input_ids = torch.tensor([[pad, pad, 1], [1, 2, 1]])
    scores = torch.tensor([[0.0, 2.0, 0.0, 5.0], [0.0, 1.0, 2.0, 3.0]])
    out = sampler(cast(torch.LongTensor, input_ids), cast(torch.FloatTensor, scores))
    assert replies[0].ids == [pad]  # the pad id sat only in padding: not seen text, not penalised
    assert out[0].argmax() == pad and out[1].argmax() == eos
    assert torch.isinf(out).sum() == out.numel() - 2
