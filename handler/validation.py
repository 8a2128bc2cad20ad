"""Input validation helpers for the action modules."""

from __future__ import annotations

import hmac
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from handler.errors import validation_to_invalid
from shared.errors import Unauthorized
from shared.settings import Settings

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], payload: dict[str, Any]) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_to_invalid(exc) from None


def require_admin(settings: Settings, payload: dict[str, Any]) -> None:
    """State-changing admin commands need ADMIN_TOKEN; without one configured they are off."""
    expected = settings.admin_token.get_secret_value() if settings.admin_token else ""
    given = payload.get("admin_token")
    if not expected:
        raise Unauthorized("this command needs ADMIN_TOKEN to be set on the worker", field="admin_token")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("a valid admin_token is required for this command", field="admin_token")
