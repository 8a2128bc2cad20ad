"""HTTP statuses for the worker's error codes, and OpenAI-style error objects.

The codes are the contract (handler/errors.py makes them); this only picks the status that
fits each, the same mapping the platform's edge functions use.
"""

from __future__ import annotations

from typing import Any

from handler.errors import error_output

STATUS: dict[str, int] = {
    "invalid_input": 400,
    "unknown_action": 400,
    "unknown_command": 400,
    "context_overflow": 400,
    "unauthorized": 401,
    "adult_content_disabled": 403,
    "content_policy_violation": 422,
    "overloaded": 503,
    "model_not_loaded": 503,
    "store_unavailable": 503,
    "engine_error": 502,
    "engine_out_of_memory": 502,
    "engine_timeout": 502,
    "internal_error": 500,
}
RETRY_AFTER_S = 5  # overloaded / still loading: worth trying again shortly

_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error"}


def status_for(code: str) -> int:
    return STATUS.get(code, 500)


def retry_headers(status: int) -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}


def failure(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The seed-route failure body {success: false, error_code, error, field} and its status."""
    body = error_output(exc)
    return status_for(body["error_code"]), body


def openai_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """An OpenAI-style error object: {"error": {message, type, param, code}}."""
    status, body = failure(exc)
    kind = _OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    error = {"message": body["error"], "type": kind, "param": body["field"], "code": body["error_code"]}
    return status, {"error": error}
