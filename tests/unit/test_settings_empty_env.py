"""Empty environment values count as unset (pydantic-settings env_ignore_empty)."""

from __future__ import annotations

import pytest

from shared.settings import load_settings


def test_empty_model_path_means_the_embedded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_PATH", "")
    assert load_settings().model_path is None  # not Path('.')


def test_empty_numbers_take_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_QUEUE", "")
    monkeypatch.setenv("GENERATION_TIMEOUT_S", "")
    settings = load_settings()
    assert settings.max_queue == 64 and settings.generation_timeout_s == 120.0
