"""RunPod conventions in settings and model resolution: worker-vllm's names beside ours, streaming on by
default, MODEL_NAME resolved offline from a hub cache (huggingface_hub's own lookup), MODEL_PATH first."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.engine.model_source import source_for
from shared.errors import EngineError, SettingsError
from shared.settings import load_settings
from tests.hf_cache import COMMIT, lay_out_hub_cache


def test_streaming_is_on_by_default() -> None:
    assert load_settings().stream_enabled is True


@pytest.mark.parametrize(
    ("ours", "theirs", "field", "value", "expected"),
    [
        ("CONCURRENCY", "MAX_CONCURRENCY", "concurrency", "12", 12),
        ("SERVED_MODEL_NAME", "OPENAI_SERVED_MODEL_NAME_OVERRIDE", "served_model_name", "qwen-chat", "qwen-chat"),
    ],
)
def test_worker_vllm_names_are_accepted_beside_ours(
    monkeypatch: pytest.MonkeyPatch, ours: str, theirs: str, field: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(theirs, value)
    assert getattr(load_settings(), field) == expected
    monkeypatch.setenv(ours, value)  # both, the same value: fine
    assert getattr(load_settings(), field) == expected
    monkeypatch.setenv(ours, value + "0")
    with pytest.raises(SettingsError, match=f"{ours} and {theirs}"):
        load_settings()


def test_model_name_must_look_like_a_repo_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_NAME", "../../etc")
    with pytest.raises(SettingsError, match="MODEL_NAME"):
        load_settings()


@pytest.fixture
def model_files(tmp_path: Path) -> Path:
    files = tmp_path / "files"
    files.mkdir()
    (files / "config.json").write_text('{"model_type": "llama"}')
    (files / "tokenizer.json").write_text("{}")
    return files


def test_model_name_resolves_offline_from_hf_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_files: Path
) -> None:
    snapshot = lay_out_hub_cache(model_files, tmp_path / "hf", "org/tiny-chat")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    source = source_for(load_settings(model_name="org/tiny-chat"))
    assert source.directory == snapshot and source.gguf_file is None and source.label == "org/tiny-chat"
    assert (source.directory / "config.json").read_text() == '{"model_type": "llama"}'
    by_commit = source_for(load_settings(model_name="org/tiny-chat", model_revision=COMMIT))
    assert by_commit.directory == snapshot


def test_the_baked_cache_comes_first_and_model_path_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_files: Path
) -> None:
    lay_out_hub_cache(model_files, tmp_path / "volume", "org/tiny-chat")
    baked = lay_out_hub_cache(model_files, tmp_path / "baked", "org/tiny-chat", commit="f" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "volume" / "hub"))
    settings = load_settings(model_name="org/tiny-chat", baked_hf_home=tmp_path / "baked")
    assert source_for(settings).directory == baked
    explicit = load_settings(model_name="org/tiny-chat", model_path=model_files)
    assert source_for(explicit).directory == model_files


def test_a_model_in_no_cache_stops_the_start_naming_the_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty" / "hub"))
    with pytest.raises(EngineError, match=r"org/absent .*in no Hugging Face cache .*empty/hub.*ALLOW_MODEL_DOWNLOAD"):
        source_for(load_settings(model_name="org/absent"))
