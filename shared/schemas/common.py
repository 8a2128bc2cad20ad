"""Pieces shared by the wire schemas.

Every caller string is checked to be well-formed Unicode here, at the edge: a lone
surrogate ("\\ud800") cannot be encoded, tokenized or stored, so it fails as invalid input
naming the field instead of deep inside a service. Ids have a fixed character set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

ID_MAX_CHARS = 128
# Upper bounds of the numeric fields, so no number a caller sends is unbounded (10**30 is refused
# by name, not carried into an engine). The worker's own limits (MAX_TOKENS_LIMIT) are checked later.
MAX_TOKENS_MAX = 32_768  # the largest MAX_TOKENS_LIMIT a worker can be configured with
TOP_K_MAX = 1_000_000  # above any vocabulary: a top_k at or beyond the vocabulary's size means "off", like 0
SEED_MAX = 2**32 - 1
ID_CHARS = "letters, digits and _ - . : @"
_ID = re.compile(r"[A-Za-z0-9_.:@-]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(value: str) -> int | None:
    """Index of the first lone surrogate in `value`, or None when it is well-formed."""
    if value.isascii():  # the common case, O(1) for ASCII strings
        return None
    found = _SURROGATE.search(value)
    return found.start() if found else None


def well_formed(value: str) -> str:
    at = lone_surrogate(value)
    if at is not None:
        raise ValueError(f"is not well-formed Unicode (a lone surrogate at character {at})")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace")
    return value


def is_identifier(value: str) -> bool:
    return 0 < len(value) <= ID_MAX_CHARS and _ID.fullmatch(value) is not None


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(f"must be 1 to {ID_MAX_CHARS} characters of {ID_CHARS}")
    return value


def _key(key: object) -> str:
    """A key as it may appear in an error message: caller text only when it is id-like."""
    return key if isinstance(key, str) and len(key) <= 64 and _ID.fullmatch(key) else "?"


def _strings(value: Any) -> Iterator[tuple[str, str]]:
    """Every string (keys included) inside a JSON-like value, with its path."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:  # iterative: a deeply nested object cannot exhaust the recursion limit
        item, where = stack.pop()
        if isinstance(item, str):
            yield item, where
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str):
                    yield key, where
                stack.append((sub, f"{where}.{_key(key)}"))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}.{i}") for i, sub in enumerate(item))


def _well_formed_json(value: dict[str, Any]) -> dict[str, Any]:
    for text, where in _strings(value):
        if lone_surrogate(text) is not None:
            inside = f" (at {where[1:]})" if where else ""
            raise ValueError(f"is not well-formed Unicode: a lone surrogate{inside}")
    return value


Text = Annotated[str, AfterValidator(well_formed)]
NonBlank = Annotated[str, AfterValidator(well_formed), AfterValidator(_not_blank)]
Identifier = Annotated[str, AfterValidator(_identifier)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_well_formed_json)]


class WireModel(BaseModel):
    """Strict types (no '5' for 5); unknown fields are ignored so callers can evolve.
    NaN and infinity are not numbers a caller can mean."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, allow_inf_nan=False)
