"""vLLM's CPU build as we configure it: NarrowTopKTopP (top-k then top-p without sorting the
vocabulary) masks exactly what vLLM's own top-k/top-p masking does, row by row, and leaves other
rows alone; the engine arguments load it and size KV blocks for prefix reuse."""

from __future__ import annotations

from pathlib import Path

import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality
from vllm.v1.sample.ops.topk_topp_sampler import apply_top_k_top_p_pytorch

from shared.engine.base import GenerationParams
from shared.engine.vllm_engine import config
from shared.engine.vllm_engine.narrow import KEY, NarrowTopKTopP
from shared.settings import load_settings

VOCAB = 49152


def _params(k: int, p: float) -> SamplingParams:
    return SamplingParams(temperature=0.8, extra_args={KEY: [k, p]})


def _update(size: int, added: list[tuple[int, SamplingParams]], removed=(), moved=()) -> BatchUpdate:  # type: ignore[no-untyped-def]
    return BatchUpdate(
        batch_size=size, removed=list(removed), added=[(i, sp, [], []) for i, sp in added], moved=list(moved)
    )


def test_the_mask_is_vllms_top_k_top_p_mask() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, VOCAB) * 4
    wanted = {0: (50, 0.9), 1: (5, 0.5), 3: (200, 0.99)}  # row 2: another request, not narrowed
    proc = NarrowTopKTopP(None, torch.device("cpu"), False)
    proc.update_state(_update(4, [(i, _params(k, p)) for i, (k, p) in wanted.items()] + [(2, SamplingParams())]))
    out = proc.apply(logits.clone())
    for row, (k, p) in wanted.items():
        theirs = apply_top_k_top_p_pytorch(logits[row : row + 1].clone(), torch.tensor([k]), torch.tensor([p]))
        assert torch.equal(torch.isinf(out[row]), torch.isinf(theirs[0]))
        kept = ~torch.isinf(out[row])
        assert torch.equal(out[row][kept], logits[row][kept]) and 1 <= int(kept.sum()) <= k
    assert torch.equal(out[2], logits[2])


def test_rows_follow_the_batch_as_requests_leave_and_move() -> None:
    proc = NarrowTopKTopP(None, torch.device("cpu"), False)
    proc.update_state(_update(2, [(0, _params(3, 0.9)), (1, _params(7, 0.9))]))
    proc.update_state(_update(1, [], removed=[0], moved=[(1, 0, MoveDirectionality.UNIDIRECTIONAL)]))
    assert proc.rows == {0: (7, 0.9)}
    out = proc.apply(torch.randn(1, VOCAB))
    assert 1 <= int((~torch.isinf(out[0])).sum()) <= 7


def test_requests_carry_top_k_top_p_to_the_processor_only_where_it_narrows() -> None:
    sampled = GenerationParams(max_tokens=8, temperature=0.7, top_k=50, top_p=0.9)
    narrowed = config.sampling(sampled, narrow=True)
    assert (narrowed.top_k, narrowed.top_p, narrowed.extra_args) == (0, 1.0, {KEY: [50, 0.9]})
    native = config.sampling(sampled, narrow=False)
    assert (native.top_k, native.top_p, native.extra_args) == (50, 0.9, None)
    greedy = config.sampling(GenerationParams(max_tokens=8, temperature=0.0, top_k=50, top_p=0.9), narrow=True)
    assert greedy.extra_args is None
    no_k = config.sampling(GenerationParams(max_tokens=8, temperature=0.7, top_k=0, top_p=0.9), narrow=True)
    assert (no_k.top_p, no_k.extra_args) == (0.9, None)  # nothing to narrow to: vLLM's own top-p
    assert config.narrows("cpu") and not config.narrows("cuda")


def test_engine_arguments_on_the_cpu_build_narrow_and_use_32_token_blocks(tmp_path: Path) -> None:
    """The CPU build loads the narrowing processor and reuses prefixes in 32-token blocks (its own
    default, 128, never reuses a conversation under 128 tokens); VLLM_BLOCK_SIZE overrides."""
    cpu = config.engine_args(load_settings(), tmp_path, "cpu", "float32", 2048)
    assert cpu.logits_processors == [NarrowTopKTopP] and cpu.block_size == 32 and cpu.enable_prefix_caching
    assert config.block_size(load_settings(), "cuda") == 16
    assert config.block_size(load_settings(vllm_block_size=64), "cpu") == 64
