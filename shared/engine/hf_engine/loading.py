"""Model loading: device and dtype choice, weights, tokenizer set-up, optional compile."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from shared.engine.devices import pick_device, pick_dtype
from shared.engine.model_source import ModelSource, load_pretrained
from shared.settings import Settings

log = logging.getLogger(__name__)
GIB = 2**30


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    eos: set[int]
    facts: dict[str, Any] = field(default_factory=dict)


def load_model(settings: Settings, source: ModelSource) -> LoadedModel:
    import torch

    started = time.perf_counter()
    device = pick_device(settings)
    with PeakRss() as peak:
        model, tokenizer, facts = load_pretrained(
            source, settings.model_cache_dir, pick_dtype(settings, device), settings.attn_implementation, device
        )
        model.to(device)  # a no-op where device_map already placed it
    facts["host_ram_before_load_gb"] = round(peak.before / GIB, 3)
    facts["load_peak_host_ram_gb"] = round(peak.peak / GIB, 3)
    model.eval()
    if settings.torch_compile:
        model.forward = torch.compile(model.forward, dynamic=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # decoder-only batches pad on the left
    seconds = time.perf_counter() - started
    facts["ready_s"] = round(seconds, 3)
    log.info("model loaded: %s on %s in %.2fs", source.label, device, seconds)
    return LoadedModel(model, tokenizer, device, eos_ids(model, tokenizer), facts)


def eos_ids(model: Any, tok: Any) -> set[int]:
    """Every id that ends a reply; fixed for the model, so read once at load."""
    ids = model.generation_config.eos_token_id
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tok.eos_token_id is not None:
        found.add(tok.eos_token_id)
    return found


class PeakRss:
    """The process's peak resident memory while the block runs (sampled every 20 ms)."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.before = self.peak = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="load-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)
