"""The one place where errors become job outputs.

RunPod's /runsync answer for a failed job carries only the `error` string, so that string
itself names the code and the field: "invalid_input: 'message' is required (field: message)".
Where the output survives it is {success: false, error_code, error, field}.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from shared.errors import InvalidInput, WorkerError

log = logging.getLogger("handler")

_MESSAGES = {
    "missing": "'{f}' is required",
    "string_type": "'{f}' must be a string",
    "int_type": "'{f}' must be an integer",
    "float_type": "'{f}' must be a number",
    "bool_type": "'{f}' must be true or false",
    "list_type": "'{f}' must be a list",
    "dict_type": "'{f}' must be an object",
    "model_type": "'{f}' must be an object",
    "literal_error": "'{f}' {msg}",
    "enum": "'{f}' {msg}",
}


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "input"


def validation_to_invalid(exc: ValidationError, prefix: str = "") -> InvalidInput:
    """The first validation problem, phrased for a caller and naming the field path."""
    err = exc.errors(include_url=False)[0]
    field = _field((prefix, *err["loc"]) if prefix else tuple(err["loc"]))
    template = _MESSAGES.get(err["type"])
    msg = err["msg"][0].lower() + err["msg"][1:] if err["msg"] else "is invalid"
    msg = msg.removeprefix("value error, ")
    text = template.format(f=field, msg=msg) if template else f"'{field}' {msg}"
    return InvalidInput(text, field=field)


def error_output(exc: BaseException) -> dict[str, Any]:
    """Map any exception to the failure output; unknown ones never leak their text."""
    if isinstance(exc, ValidationError):
        exc = validation_to_invalid(exc)
    if isinstance(exc, WorkerError):
        code, message, field = exc.code, exc.message, exc.field
    else:
        log.exception("unexpected error while handling a job")
        code, message, field = "internal_error", "the worker hit an unexpected error; it is still serving", None
    text = f"{code}: {message}" + (f" (field: {field})" if field else "")
    return {"success": False, "error_code": code, "error": text, "field": field}
