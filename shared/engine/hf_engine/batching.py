"""The model thread's work: one batch of jobs -> one batched `generate` (plus one forward
pass for judge jobs).

Every job's row is laid out as [padding][its cached prefix][padding][the rest of its
prompt]: rows with different prefixes (distinct conversations, profiles) share the
batch, each on its own prefix's KV cache, left-padded to the longest; padding is masked
out and positions (from the mask) continue after each prefix exactly as without padding.
A retried job continues from the tokens it already has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.engine import memory as memory_figures
from shared.engine.base import Generation
from shared.engine.hf_engine.loading import LoadedModel
from shared.engine.hf_engine.prefix_cache import PrefixCache
from shared.engine.hf_engine.sampling import Row, RowSampler, WorkerRng
from shared.engine.hf_engine.scheduler import Job, OutOfMemory
from shared.engine.streaming import ReplyText


class BatchRunner:
    def __init__(self, loaded: LoadedModel, prefixes: PrefixCache, max_time_s: float) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.eos = loaded.eos
        self.prefixes = prefixes
        self.max_time_s = max_time_s
        self.rng = WorkerRng()
        self.generate_calls = 0
        self.forward_calls = 0
        self._tokens_done = 0  # picked by the sampler in finished batches, every row (a cancelled row's too)
        self._active: tuple[list[Job], int] = ([], 0)  # the running batch's rows and their tokens before it

    def __call__(self, jobs: list[Job]) -> list[Generation | float]:
        import torch

        for job in jobs:
            if job.progress is None and job.judge_ids is None:
                job.progress = ReplyText(self.tokenizer.backend_tokenizer, job.params.stop, job.on_text)
        judges = [j for j in jobs if j.judge_ids is not None]
        replies = [j for j in jobs if j.judge_ids is None and not j.progress.ended]
        try:
            odds = dict(zip(map(id, judges), self._judge(judges), strict=True)) if judges else {}
            if replies:
                before = sum(len(j.progress.ids) for j in replies)
                self._active = (replies, before)
                try:
                    self._generate(replies)
                finally:
                    self._active = ([], 0)
                    self._tokens_done += sum(len(j.progress.ids) for j in replies) - before
        except torch.cuda.OutOfMemoryError:
            self.prefixes.clear()  # cached prefixes are the memory a retry can get back
            memory_figures.free_cuda_cache()
            raise OutOfMemory from None
        return [odds[id(j)] if j.judge_ids is not None else j.progress.result(len(j.prompt_ids)) for j in jobs]

    @property
    def tokens_generated(self) -> int:
        """Tokens picked so far, the running batch's included (read from other threads: a snapshot)."""
        rows, before = self._active
        return self._tokens_done + max(0, sum(len(j.progress.ids) for j in rows if j.progress) - before)

    def _generate(self, jobs: list[Job]) -> None:
        import torch
        from transformers import LogitsProcessorList

        prompts = [j.prompt_ids + j.progress.ids for j in jobs]  # a retry continues where it stopped
        cache, width = self._prefix_cache([j.prefix_ids for j in jobs])
        rest = max(len(p) - len(j.prefix_ids) for p, j in zip(prompts, jobs, strict=True))
        pad = self.tokenizer.pad_token_id
        ids, mask = [], []
        for job, prompt in zip(jobs, prompts, strict=True):
            n, tail = len(job.prefix_ids), prompt[len(job.prefix_ids) :]
            ids.append([pad] * (width - n) + job.prefix_ids + [pad] * (rest - len(tail)) + tail)
            mask.append([0] * (width - n) + [1] * n + [0] * (rest - len(tail)) + [1] * len(tail))
        input_ids = torch.tensor(ids, device=self.device)
        attention = torch.tensor(mask, device=self.device)
        rows = [Row(j.params, j.progress, _cancel_check(j)) for j in jobs]
        sampler = RowSampler(rows, self.eos, attention, self.rng)
        self.generate_calls += 1
        with torch.inference_mode():
            self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                past_key_values=cache,
                max_new_tokens=max(j.params.max_tokens - len(j.progress.ids) for j in jobs),
                do_sample=False,  # RowSampler picks every token; generate's greedy step only follows it
                logits_processor=LogitsProcessorList([sampler]),
                temperature=None,
                top_p=None,
                top_k=None,
                repetition_penalty=None,
                max_time=self.max_time_s,
                pad_token_id=pad,
                eos_token_id=sorted(self.eos),
            )

    def _prefix_cache(self, prefixes: list[list[int]]) -> tuple[Any, int]:
        """One batched KV cache from each row's prefix cache, left-padded to the longest."""
        import torch
        from transformers import DynamicCache

        width = max(len(p) for p in prefixes)
        if width == 0:
            return None, 0
        by_prefix = {tuple(p): self.prefixes.layers(self.model, p, self.device) for p in prefixes if p}
        like = next(iter(by_prefix.values()))
        merged = []
        for layer, (k0, v0) in enumerate(like):
            keys, values = [], []
            for p in prefixes:
                k, v = by_prefix[tuple(p)][layer] if p else (k0[:, :, :0], v0[:, :, :0])
                gap = width - k.shape[2]
                keys.append(torch.nn.functional.pad(k, (0, 0, gap, 0)))  # zeros, masked out
                values.append(torch.nn.functional.pad(v, (0, 0, gap, 0)))
            merged.append((torch.cat(keys), torch.cat(values)))
        return DynamicCache(merged, config=self.model.config), width

    def _judge(self, jobs: list[Job]) -> list[float]:
        """One forward pass over the judge prompts; P(first answer) from the two answers' logits."""
        import torch

        width = max(len(j.prompt_ids) for j in jobs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(j.prompt_ids)) + j.prompt_ids for j in jobs], device=self.device)
        mask = torch.tensor([[0] * (width - len(j.prompt_ids)) + [1] * len(j.prompt_ids) for j in jobs])
        mask = mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        self.forward_calls += 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1, :]
        pairs = torch.tensor([list(j.judge_ids or (0, 0)) for j in jobs], device=logits.device)
        two = logits.float().gather(1, pairs)
        return [float(p) for p in torch.softmax(two, dim=-1)[:, 0].tolist()]


def _cancel_check(job: Job) -> Callable[[], bool]:
    return lambda: job.cancelled
