"""Counting tokens the way the image/video pipeline will see them.

SDXL: CLIP's BPE (the instant-clip-tokenizer wheel carries the vocabulary) after the
prompt-weighting syntax is parsed as A1111/ComfyUI parse it: `(a:1.2)`, `((a))` and `[a]`
change weights, not tokens; `BREAK` starts a new 75-token chunk; `<lora:x:0.8>` tags are
removed before encoding. WAN: the same BPE on the plain text, as a stated proxy for umT5
(whose 512-token limit is far above the 175-300 targets).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

CHUNK = 75

_ATTENTION = re.compile(r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:", re.X)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
EXTRA_NETWORK = re.compile(r"<[A-Za-z_]+:[^<>]+>")


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from instant_clip_tokenizer import Tokenizer

    return Tokenizer()


def clip_ids(text: str) -> list[int]:
    """CLIP BPE ids without start/end tokens."""
    return list(_tokenizer().encode(text)) if text.strip() else []


def parse_attention(text: str) -> list[tuple[str, float]]:
    """A1111's parse_prompt_attention: (text, weight) runs; ("BREAK", -1) marks a chunk break."""
    res: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for item in res[start:]:
            item[1] *= factor

    for m in _ATTENTION.finditer(text):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\"):
            res.append([token[1:], 1.0])
        elif token == "(":
            round_open.append(len(res))
        elif token == "[":
            square_open.append(len(res))
        elif weight is not None and round_open:
            multiply(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            multiply(round_open.pop(), 1.1)
        elif token == "]" and square_open:
            multiply(square_open.pop(), 1 / 1.1)
        else:
            for i, part in enumerate(_BREAK.split(token)):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    for pos in round_open:
        multiply(pos, 1.1)
    for pos in square_open:
        multiply(pos, 1 / 1.1)
    return [(t, w) for t, w in res if t or w == -1]


@dataclass(frozen=True)
class TokenCount:
    used: int
    chunks: int


def count_sdxl(prompt: str) -> TokenCount:
    """Content tokens and 75-token chunks for an SDXL prompt, weighting syntax parsed."""
    sections = [0]
    for text, weight in parse_attention(EXTRA_NETWORK.sub("", prompt)):
        if weight == -1:
            sections.append(0)
        else:
            sections[-1] += len(clip_ids(text))
    chunks = sum(max(1, math.ceil(n / CHUNK)) for n in sections if n) or 1
    return TokenCount(sum(sections), chunks)


def count_plain(text: str) -> TokenCount:
    used = len(clip_ids(text))
    return TokenCount(used, max(1, math.ceil(used / CHUNK)))


def count_for(tokenizer: str, text: str) -> TokenCount:
    return count_sdxl(text) if tokenizer == "clip" else count_plain(text)
