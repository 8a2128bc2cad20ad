"""The earlier worker's way, as an Engine: one plain `generate` per job, one job at a time,
no batching, no prefix reuse. It shares the loaded model with the engine it wraps, so
both sides of a comparison run the same weights, prompts and handler code."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from shared.engine import Engine, EngineInfo, Generation, GenerationParams, Message
from shared.engine.hf_engine import TransformersEngine


class SequentialEngine(Engine):
    def __init__(self, inner: TransformersEngine) -> None:
        self.inner = inner
        self._pool = ThreadPoolExecutor(max_workers=1)

    async def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._generate, messages, params)

    def _generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        tok, model = self.inner._tokenizer, self.inner._model
        enc = tok(self.inner.render(messages), return_tensors="pt", add_special_tokens=False)
        sample = params.temperature > 0
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=params.max_tokens,
                do_sample=sample,
                temperature=params.temperature if sample else None,
                top_p=params.top_p if sample else None,
                top_k=params.top_k if sample else None,
                repetition_penalty=params.repetition_penalty,
                pad_token_id=tok.pad_token_id,
            )
        new = out[0, enc["input_ids"].shape[1] :]
        return Generation(tok.decode(new, skip_special_tokens=True).strip(), enc["input_ids"].shape[1], len(new))

    def load(self) -> float:
        return self.inner.load()

    def unload(self) -> None:
        self.inner.unload()

    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def count_chat_tokens(self, messages: list[Message]) -> int:
        return self.inner.count_chat_tokens(messages)

    @property
    def context_length(self) -> int:
        return self.inner.context_length

    def info(self) -> EngineInfo:
        return self.inner.info()

    def memory(self) -> dict[str, Any]:
        return self.inner.memory()
