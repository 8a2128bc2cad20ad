"""The one place where errors become job outputs.

RunPod's /runsync answer for a failed job carries only the `error` string, so that string
itself names the code and the field: "invalid_input: 'message' is required (field: message)".
Where the output survives it is {success: false, error_code, error, field}.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from pydantic import ValidationError

from shared.errors import InvalidInput, WorkerError
from shared.logs import content_log

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
    "string_unicode": "'{f}' is not well-formed Unicode (a lone surrogate)",
    "finite_number": "'{f}' is not a number (NaN and infinity are not accepted)",
}
_SHOULD = ("input should", "string should", "list should", "value should", "dictionary should")


ECHO_MAX_CHARS = 32


def echo(value: str, limit: int = ECHO_MAX_CHARS) -> str:
    """A caller's value as an error message may repeat it: its first `limit` characters, quoted and
    escaped (a lone surrogate or a control character becomes its escape), '…' when cut. Every
    message stays well-formed and short, whatever was sent."""
    shown = repr(value[:limit])
    return shown + ("…" if len(value) > limit else "")


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "input"


def validation_to_invalid(exc: ValidationError, prefix: str = "") -> InvalidInput:
    """The first validation problem, phrased for a caller and naming the field path."""
    err = exc.errors(include_url=False)[0]
    field = _field((prefix, *err["loc"]) if prefix else tuple(err["loc"]))
    template = _MESSAGES.get(err["type"])
    msg = err["msg"][0].lower() + err["msg"][1:] if err["msg"] else "is invalid"
    msg = msg.removeprefix("value error, ")
    for lead in _SHOULD:  # pydantic's "Input should be ..." reads "'field' must be ..." here
        if msg.startswith(lead):
            msg = "must" + msg[len(lead) :]
    text = template.format(f=field, msg=msg) if template else f"'{field}' {msg}"
    return InvalidInput(text, field=field)


def error_output(exc: BaseException) -> dict[str, Any]:
    """Map any exception to the failure output; unknown ones never leak their text."""
    if isinstance(exc, ValidationError):
        exc = validation_to_invalid(exc)
    if isinstance(exc, WorkerError):
        code, message, field = exc.code, exc.message, exc.field
    else:
        # The type and the stack, not the message: an exception's text may quote caller text.
        stack = "".join(traceback.format_tb(exc.__traceback__))
        log.error("unexpected error while handling a job: %s\n%s", type(exc).__name__, stack)
        content_log.debug("its message: %s", exc)
        code, message, field = "internal_error", "the worker hit an unexpected error; it is still serving", None
    text = f"{code}: {message}" + (f" (field: {field})" if field else "")
    return {"success": False, "error_code": code, "error": text, "field": field}
