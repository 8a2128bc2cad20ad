"""The model thread's work: one batch of jobs -> one (or a few) batched `generate` calls.

Jobs sharing a cached prefix (same profile or conversation head) share one forward pass
that starts after it; the others share a left-padded one. Every row is sampled with its
own parameters (shared/engine/sampling.py).
"""

from __future__ import annotations

from typing import Any, Literal

from shared.engine import memory as memory_figures
from shared.engine.base import Generation
from shared.engine.loading import LoadedModel
from shared.engine.prefix_cache import PrefixCache
from shared.engine.sampling import Row, RowSampler
from shared.engine.scheduler import Job, OutOfMemory


class BatchRunner:
    def __init__(self, loaded: LoadedModel, prefixes: PrefixCache, max_time_s: float) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.eos = loaded.eos
        self.prefixes = prefixes
        self.max_time_s = max_time_s

    def __call__(self, jobs: list[Job]) -> list[Generation]:
        import torch

        groups: dict[tuple[int, ...], list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(tuple(job.prefix_ids), []).append(i)
        results: list[Generation | None] = [None] * len(jobs)
        try:
            for prefix, members in groups.items():
                batch = [jobs[i] for i in members]
                outs = self._run_with_prefix(batch, list(prefix)) if prefix else self._run_padded(batch)
                for i, out in zip(members, outs, strict=True):
                    results[i] = out
        except torch.cuda.OutOfMemoryError:
            memory_figures.free_cuda_cache()
            raise OutOfMemory from None
        return [r for r in results if r is not None]

    def _run_padded(self, jobs: list[Job]) -> list[Generation]:
        import torch

        width = max(len(j.prompt_ids) for j in jobs)
        pad = self.tokenizer.pad_token_id
        rows = [Row(j.params, width - len(j.prompt_ids), 0, j.on_token) for j in jobs]
        ids = torch.tensor([[pad] * r.pad + j.prompt_ids for r, j in zip(rows, jobs, strict=True)])
        mask = torch.tensor([[0] * r.pad + [1] * len(j.prompt_ids) for r, j in zip(rows, jobs, strict=True)])
        out = self._decode_rows(ids, mask, rows, cache=None)
        return [self._finish(j, out[i, width:].tolist()) for i, j in enumerate(jobs)]

    def _run_with_prefix(self, jobs: list[Job], prefix: list[int]) -> list[Generation]:
        """[prefix][padding][suffix]: the prefix's KV cache is reused, padding is masked out, and
        positions (from the mask) continue after the prefix exactly as without padding."""
        import torch

        n, pad = len(prefix), self.tokenizer.pad_token_id
        suffixes = [j.prompt_ids[n:] for j in jobs]
        width = max(len(s) for s in suffixes)
        cache = self.prefixes.get(self.model, prefix, self.device)
        if len(jobs) > 1:
            cache.batch_repeat_interleave(len(jobs))
        rows = [Row(j.params, width - len(s), n, j.on_token) for j, s in zip(jobs, suffixes, strict=True)]
        ids = torch.tensor([prefix + [pad] * r.pad + s for r, s in zip(rows, suffixes, strict=True)])
        mask = torch.tensor([[1] * n + [0] * r.pad + [1] * len(s) for r, s in zip(rows, suffixes, strict=True)])
        out = self._decode_rows(ids, mask, rows, cache=cache)
        return [self._finish(j, out[i, n + width :].tolist()) for i, j in enumerate(jobs)]

    def _decode_rows(self, ids: Any, mask: Any, rows: list[Row], cache: Any) -> Any:
        import torch
        from transformers import LogitsProcessorList

        eos = self.eos
        kwargs = {
            "max_new_tokens": max(r.params.max_tokens for r in rows),
            "do_sample": False,  # RowSampler picks every token; generate's greedy step only follows it
            "logits_processor": LogitsProcessorList([RowSampler(rows, eos)]),
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "repetition_penalty": None,
            "max_time": self.max_time_s,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": sorted(eos),
        }
        with torch.inference_mode():
            return self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device), cache=cache, **kwargs
            )

    def _finish(self, job: Job, new_ids: list[int]) -> Generation:
        end = next((i for i, t in enumerate(new_ids) if t in self.eos), None)
        kept = new_ids if end is None else new_ids[:end]
        # Decode only the generated ids: the prompt can never leak into the reply.
        text, stopped = cut_at_stop(self.tokenizer.decode(kept, skip_special_tokens=True), job.params.stop)
        # In a batch a row that reached its max_tokens is ended with a forced EOS: that is still "length".
        natural_end = end is not None and len(kept) < job.params.max_tokens
        reason: Literal["stop", "length"] = "stop" if stopped or natural_end else "length"
        return Generation(text.strip(), len(job.prompt_ids), len(kept), reason)


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut the reply at the first stop string (the stop string itself is not returned)."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)
