"""Typed domain errors. The handler maps them to outputs in one place (handler/errors.py).

Each class carries its machine-readable `code`; callers match on types, never on text.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base of every error a job may fail with on purpose."""

    code = "internal_error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class SettingsError(WorkerError):
    code = "invalid_settings"


class InvalidInput(WorkerError):
    code = "invalid_input"


def check_length(field: str, value: str | None, limit: int) -> None:
    """Refuse a text longer than its limit, naming the field; None (not sent) always passes."""
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", field=field)


class UnknownAction(InvalidInput):
    code = "unknown_action"


class UnknownCommand(InvalidInput):
    code = "unknown_command"


class ContextOverflow(InvalidInput):
    """The newest message alone does not fit the context with room for the reply."""

    code = "context_overflow"


class Unauthorized(WorkerError):
    code = "unauthorized"


class PolicyViolation(WorkerError):
    """Sexual content involving minors: refused always. The message stays neutral."""

    code = "content_policy_violation"


class AdultContentDisabled(WorkerError):
    code = "adult_content_disabled"


class Overloaded(WorkerError):
    code = "overloaded"


class StoreUnavailable(WorkerError):
    """The shared store could not do what was asked (a delete while Redis is unreachable): worth retrying."""

    code = "store_unavailable"


class EngineError(WorkerError):
    """The model failed to produce output (load failure, runtime error, timeout)."""

    code = "engine_error"


class EngineOutOfMemory(EngineError):
    code = "engine_out_of_memory"


class EngineTimeout(EngineError):
    code = "engine_timeout"


class EngineNotLoaded(EngineError):
    code = "model_not_loaded"
