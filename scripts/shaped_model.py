"""A Qwen2.5-7B-shaped model with random weights, for GPU checks where no real weights can be had.

Run: `python scripts/shaped_model.py OUT_DIR [--tiny]`. It writes config.json, random bf16
weights (built on the GPU when there is one) and the embedded SmolLM2 tokenizer, so
MODEL_PATH=OUT_DIR loads through the worker's real path (device_map, safetensors). Text from
it is noise; it measures speed, memory and loading, never quality.

The one deliberate difference from Qwen2.5-7B-Instruct: the vocabulary is the embedded
tokenizer's (49,152 ids, not 152,064), because ids beyond the tokenizer cannot be decoded.
That makes the weights about 0.5 GB (7 %) smaller than the real model's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

# Qwen2.5-7B-Instruct's config.json, less the vocabulary (see the module docstring).
QWEN25_7B = {
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": False,
}
TINY = {**QWEN25_7B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}


def embedded_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from shared.engine.model_source import embedded_gguf

    gguf = embedded_gguf()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)


def build(out: Path, shape: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    config = Qwen2Config(
        **shape,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):  # random init straight on the card: no 15 GB staged in host RAM
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    built = time.perf_counter() - started
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, max_shard_size="4GB")
    tokenizer.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    facts = {
        "params_b": round(params / 1e9, 3),
        "weights_gb": round(params * 2 / 1e9, 2),
        "built_on": device,
        "build_s": round(built, 1),
        "save_s": round(time.perf_counter() - started - built, 1),
    }
    (out / "shaped_model.json").write_text(json.dumps({"shape": shape, **facts}, indent=2))
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model of the same family, for a CPU try")
    parser.add_argument("--tokenizer", type=Path, help="a saved tokenizer folder (default: the embedded model's)")
    args = parser.parse_args()
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
    else:
        tokenizer = embedded_tokenizer()
    print(json.dumps(build(args.out, TINY if args.tiny else QWEN25_7B, tokenizer)), flush=True)


if __name__ == "__main__":
    main()
