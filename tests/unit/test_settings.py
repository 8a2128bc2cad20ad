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
