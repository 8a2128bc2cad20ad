"""Input validation helpers for the action modules and the worker's entry."""

from __future__ import annotations

import hmac
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from handler.errors import validation_to_invalid
from shared.errors import InvalidInput, Unauthorized
from shared.schemas.common import is_identifier, lone_surrogate
from shared.settings import Settings

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], payload: dict[str, Any]) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_to_invalid(exc) from None


def size(value: Any, limit: int | None = None) -> int:
    """Characters of every string (keys too) plus one per other value; stops once past `limit`,
    so a huge or deeply nested input costs little (iterative: no recursion limit to hit)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        else:
            total += 1
            if isinstance(item, dict):
                stack.extend(item)
                stack.extend(item.values())
            elif isinstance(item, list | tuple):
                stack.extend(item)
        if limit is not None and total > limit:
            break
    return total


def check_input_size(settings: Settings, payload: dict[str, Any]) -> None:
    """The whole input against MAX_INPUT_CHARS, before anything parses or tokenizes it; the
    error names the top-level field that holds the most."""
    limit = settings.max_input_chars
    if size(payload, limit) <= limit:
        return
    sizes = {key: size(value, limit) for key, value in payload.items()}
    biggest = max(sizes, key=lambda key: sizes[key])
    field = biggest if isinstance(biggest, str) and is_identifier(biggest) else "input"
    raise InvalidInput(f"the input is larger than {limit} characters (most of it in '{field}')", field=field)


def require_admin(settings: Settings, payload: dict[str, Any]) -> None:
    """State-changing admin commands need ADMIN_TOKEN; without one configured they are off."""
    if not admin_token_valid(settings, payload, required=True):
        raise Unauthorized("a valid admin_token is required for this command", field="admin_token")


def admin_token_valid(settings: Settings, payload: dict[str, Any], required: bool = False) -> bool:
    """Whether the payload carries the worker's admin token (compared in constant time)."""
    expected = settings.admin_token.get_secret_value() if settings.admin_token else ""
    given = payload.get("admin_token")
    if isinstance(given, str) and lone_surrogate(given) is not None:
        raise InvalidInput("'admin_token' is not well-formed Unicode", field="admin_token")
    if not expected:
        if required:
            raise Unauthorized("this command needs ADMIN_TOKEN to be set on the worker", field="admin_token")
        return False
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())
