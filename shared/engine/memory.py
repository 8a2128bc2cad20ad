"""Truthful memory figures: VRAM on CUDA, RAM on CPU (GiB, rounded to 3 places)."""

from __future__ import annotations

import os
from typing import Any

GIB = 2**30


def free_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _meminfo() -> dict[str, int]:
    """Total and available RAM in bytes from /proc/meminfo (Linux workers)."""
    figures: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                name, value = line.split(":", 1)
                figures[name] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return figures


def _rss_bytes() -> int | None:
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _gib(n: float | None) -> float | None:
    return None if n is None else round(n / GIB, 3)


def snapshot(device: str, model: Any) -> dict[str, Any]:
    import torch

    weights = sum(p.numel() * p.element_size() for p in model.parameters()) if model is not None else 0
    ram = _meminfo()
    out: dict[str, Any] = {
        "model_loaded": model is not None,
        "model_device": str(next(model.parameters()).device) if model is not None else device,
        "device_type": device,
        "model_weights_gb": _gib(weights),
        "total_ram_gb": _gib(ram.get("MemTotal")),
        "available_ram_gb": _gib(ram.get("MemAvailable")),
        "process_rss_gb": _gib(_rss_bytes()),
        "total_vram": None,
        "allocated_vram": None,
        "available_vram": None,
    }
    if device == "cuda" and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        out.update(
            total_vram=_gib(total),
            allocated_vram=_gib(torch.cuda.memory_allocated()),
            available_vram=_gib(free),
            reserved_vram=_gib(torch.cuda.memory_reserved()),
        )
    return out
