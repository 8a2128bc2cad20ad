from __future__ import annotations

import pytest

from shared.errors import SettingsError
from shared.settings import load_settings


def test_defaults_are_safe() -> None:
    s = load_settings()
    assert s.adult_content_enabled is False
    assert s.model_path is None


def test_invalid_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONTEXT_TOKENS", "ten")
    with pytest.raises(SettingsError, match="MAX_CONTEXT_TOKENS"):
        load_settings()


def test_upstash_url_and_token_go_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", "https://example.invalid")
    with pytest.raises(SettingsError, match="UPSTASH_REDIS_REST_TOKEN"):
        load_settings()


def test_secret_is_not_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "super-secret-value")
    assert "super-secret-value" not in repr(load_settings())


def test_env_switches_adult_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADULT_CONTENT_ENABLED", "true")
    assert load_settings().adult_content_enabled is True


@pytest.mark.parametrize("name", ["ADMIN_TOKEN", "HTTP_AUTH_TOKEN", "UPSTASH_REDIS_REST_TOKEN"])
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("   ", "empty or whitespace"),
        ("short-token", "at least 16 characters"),
        ("changeme", "well-known default"),
        ("PasswordPassword", "well-known default"),
        ("xxxxxxxxxxxxxxxxxxxx", "well-known default"),
        ("a-long-random-value-7f3a\n", "whitespace"),
    ],
)
def test_weak_secrets_are_refused_by_name(monkeypatch: pytest.MonkeyPatch, name: str, value: str, why: str) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", "https://example.invalid")
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "a-long-random-value-7f3a")
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"{name}: .*{why}"):
        load_settings()


def test_strong_secrets_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ADMIN_TOKEN", "HTTP_AUTH_TOKEN", "UPSTASH_REDIS_REST_TOKEN"):
        monkeypatch.setenv(name, "a-long-random-value-7f3a")
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", "https://example.invalid")
    assert load_settings().admin_token is not None


@pytest.mark.parametrize("url", ["redis://example.invalid:6379", "example.invalid", "https://", "ftp://h"])
def test_upstash_url_must_be_http(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", url)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "a-long-random-value-7f3a")
    with pytest.raises(SettingsError, match="UPSTASH_REDIS_REST_URL: must be an http"):
        load_settings()


def test_reply_cap_stays_below_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONTEXT_TOKENS", "1024")
    assert load_settings().max_tokens_limit == 512  # unset: half the context when that is below 2048
    monkeypatch.setenv("MAX_TOKENS_LIMIT", "1024")
    with pytest.raises(SettingsError, match="MAX_TOKENS_LIMIT must be below MAX_CONTEXT_TOKENS"):
        load_settings()
    monkeypatch.delenv("MAX_CONTEXT_TOKENS")
    assert load_settings().max_tokens_limit == 1024


def test_body_limit_follows_the_input_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_INPUT_CHARS", "300000")
    assert load_settings().http_max_body_bytes == 4 * 300_000
    monkeypatch.setenv("HTTP_MAX_BODY_BYTES", str(4 * 300_000 - 1))
    with pytest.raises(SettingsError, match="HTTP_MAX_BODY_BYTES must be at least 4 x MAX_INPUT_CHARS"):
        load_settings()


def test_log_levels_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.setenv("RUNPOD_LOG_LEVEL", "error")
    s = load_settings()
    assert (s.log_level, s.runpod_log_level) == ("WARNING", "ERROR")
