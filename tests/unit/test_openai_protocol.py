"""The OpenAI request schema, its mapping onto the chat service, and the HTTP status of every code."""

from __future__ import annotations

from typing import Any

import pytest

from handler.app import Worker
from handler.openai.protocol import ChatCompletionRequest, to_chat_payload
from handler.status import STATUS, openai_error, retry_headers
from shared import errors
from shared.errors import InvalidInput, Overloaded, PolicyViolation, WorkerError
from shared.settings import Settings
from shared.store import MemoryStore
from tests.conftest import make_settings
from tests.fakes.engine import FakeEngine

SERVING = Worker(make_settings(), FakeEngine(), MemoryStore(max_turns=8)).openai


def parse(body: dict[str, Any]) -> ChatCompletionRequest:
    return SERVING.parse(body)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_messages_map_onto_the_chat_service() -> None:
    req = parse(
        {
            "model": "anything",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "developer",
                    "content": [{"type": "text", "text": "Use "}, {"type": "text", "text": "English."}],
                },
                user("Hi"),
                {"role": "assistant", "content": "Hello!"},
                user("How are you?"),
            ],
            "max_tokens": 50,
            "max_completion_tokens": 20,
            "stop": "\n",
            "seed": 3,
            "temperature": 0,
        }
    )
    assert to_chat_payload(req) == {
        "message": "How are you?",
        "system_prompt": "Be brief.\n\nUse English.",
        "conversation_history": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        "max_tokens": 20,  # max_completion_tokens wins over the older max_tokens
        "stop": ["\n"],
        "seed": 3,
        "temperature": 0.0,
    }


def test_a_single_user_message_is_a_stateless_chat_with_the_default_prompt() -> None:
    payload = to_chat_payload(parse({"messages": [user("Hi")]}))
    assert payload == {"message": "Hi", "conversation_history": []}  # [] (not None): nothing is stored


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"messages": [user("hi"), {"role": "assistant", "content": "yo"}]}, "messages"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "messages.0.content"),
        ({"messages": [user("hi")], "temperature": "hot"}, "temperature"),
        ({"messages": [user("hi")], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": [user("hi")], "n": 2}, "n"),
        ({"messages": [user("hi")], "tools": [{"type": "function"}]}, "tools"),
        ({"messages": [user("hi")], "tool_choice": "auto"}, "tool_choice"),
        ({"messages": [user("hi")], "logprobs": True}, "logprobs"),
        ({"messages": [user("hi")], "top_logprobs": 2}, "top_logprobs"),
        ({"messages": [user("hi")], "logit_bias": {"50256": -100}}, "logit_bias"),
        ({"messages": [user("hi")], "frequency_penalty": 0.5}, "frequency_penalty"),
        ({"messages": [user("hi")], "response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_bad_and_unsupported_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        to_chat_payload(parse(body))
    assert caught.value.field is not None and caught.value.field.startswith(field)


def test_off_values_of_unsupported_fields_are_accepted() -> None:
    body = {
        "messages": [user("hi")],
        "n": 1,
        "logprobs": False,
        "presence_penalty": 0,
        "frequency_penalty": 0.0,
        "tool_choice": "none",
        "response_format": {"type": "text"},
        "stream_options": {"include_usage": True},
        "store": False,  # unknown fields are ignored, as on every wire schema
    }
    assert to_chat_payload(parse(body))["message"] == "hi"


def _codes(cls: type[WorkerError]) -> set[str]:
    return {cls.code} | {code for sub in cls.__subclasses__() for code in _codes(sub)}


def test_every_error_code_has_an_http_status() -> None:
    codes = _codes(errors.WorkerError) - {errors.SettingsError.code}  # settings errors stop the start-up
    assert codes <= set(STATUS)


def test_openai_error_objects() -> None:
    status, body = openai_error(PolicyViolation("refused"))
    assert status == 422 and body["error"]["code"] == "content_policy_violation" and body["error"]["param"] is None
    status, body = openai_error(Overloaded("busy"))
    assert status == 503 and retry_headers(status) == {"Retry-After": "5"} and body["error"]["type"] == "server_error"
    status, body = openai_error(RuntimeError("secret internals"))
    assert status == 500 and "secret" not in body["error"]["message"]


def test_settings_for_http_mode() -> None:
    defaults = {
        name: Settings.model_fields[name].default for name in ("worker_mode", "host", "port", "http_auth_token")
    }
    assert defaults == {"worker_mode": "queue", "host": "127.0.0.1", "port": 8000, "http_auth_token": None}
    assert make_settings(worker_mode="http", port=9000, port_health=9001).port_health == 9001
    with pytest.raises(WorkerError, match="WORKER_MODE"):
        make_settings(worker_mode="grpc")
