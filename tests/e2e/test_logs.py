"""Logs without content: at the default settings a real worker's log (stdout and stderr)
holds job ids, codes, timings and sizes, and never a conversation's text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN, LocalApi, worker_env

pytestmark = pytest.mark.e2e

SECRET = "violet-harbour-8841"


def start(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> LocalApi:
    environment = worker_env(**env)
    if "LOG_LEVEL" not in env:
        del environment["LOG_LEVEL"]  # the worker's own default
    return LocalApi(environment, tmp_path_factory.mktemp(name) / "worker.log")


@pytest.fixture(scope="module")
def default_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    api = start(tmp_path_factory, "logs-default")
    yield api
    api.stop()


def logged(text: str, log: str) -> bool:
    """The text in the log as written, or escaped as a repr or JSON string would hold it (the
    SDK logs outputs as dict reprs: a reply with both quote kinds shows as 'Maverick\\'s')."""
    return any(form in log for form in (text, repr(text)[1:-1], json.dumps(text)[1:-1]))


def converse(api: LocalApi, cid: str) -> tuple[str, list[dict[str, str]]]:
    """A chat whose message holds the secret, then the conversation's transcript."""
    message = f"My locker code is {SECRET}. Tell me a short story about a lighthouse keeper."
    reply = api.output({"action": "chat", "message": message, "conversation_id": cid, "max_tokens": 16})
    get = {"action": "admin", "command": "conversation_get", "conversation_id": cid, "admin_token": ADMIN}
    return reply["response"], api.output(get)["turns"]


def test_no_conversation_text_in_the_log_at_the_default_settings(default_api: LocalApi) -> None:
    reply, turns = converse(default_api, "logs-secret")
    assert len(reply) >= 20  # a distinctive reply: its text is the second secret
    assert [t["content"] for t in turns] == [turns[0]["content"], reply] and SECRET in turns[0]["content"]
    failed = default_api.runsync({"action": "chat", "message": SECRET, "max_tokens": 10**6})
    assert failed["status"] == "FAILED"
    unknown = default_api.runsync({"action": SECRET})
    assert unknown["status"] == "FAILED"
    log = Path(default_api.log.name).read_text()
    assert not logged(SECRET, log)
    assert not logged(reply, log)
    assert "action=chat outcome=ok" in log and "action=chat outcome=invalid_input" in log  # ids, codes, sizes
    assert "action=- outcome=unknown_action" in log


def test_debug_log_content_is_the_one_switch_that_lets_text_in(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The control: the same jobs with the operator's debug switch on (and the SDK at DEBUG) do
    log the text, so the assertions above can fail. (RUNPOD_LOG_LEVEL=DEBUG alone is capped at
    INFO: tests/unit/test_input_limits_logs.py.)"""
    debug = start(tmp_path_factory, "logs-debug", RUNPOD_LOG_LEVEL="DEBUG", DEBUG_LOG_CONTENT="true")
    try:
        reply, _ = converse(debug, "logs-debug")
        log = Path(debug.log.name).read_text()
        assert logged(SECRET, log) and logged(reply, log)
    finally:
        debug.stop()
