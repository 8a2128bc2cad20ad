"""Parameter count and weight size of a safetensors model directory, read from the files'
headers (no tensor is loaded): vLLM keeps its model in the engine-core process, so the
facts `model_info` reports come from the files it loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

GIB = 2**30


def weight_facts(directory: Path) -> dict[str, Any]:
    from safetensors import safe_open

    params = size = 0
    for path in sorted(Path(directory).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                piece = handle.get_slice(name)
                count = 1
                for dim in piece.get_shape():
                    count *= dim
                params += count
                size += count * _bytes(piece.get_dtype())
    return {"parameters": params, "weights_gb": round(size / GIB, 3)}


def _bytes(dtype: str) -> int:
    return {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "BF16": 2, "F16": 2, "I16": 2, "U8": 1, "I8": 1}.get(
        dtype.upper(), 1
    )
