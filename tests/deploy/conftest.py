"""Fixtures for the deployment tests: the image-equivalent venv and the dev side's converted model."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.engine.model_source import converted_dir, resolve
from shared.settings import load_settings
from tests.deploy.image import CACHE, build_image_venv
from tests.e2e.conftest import ROOT, worker_env


@pytest.fixture(scope="session")
def converted_model() -> Path:
    """The embedded GGUF as converted by the dev side (safetensors + tokenizer), for MODEL_PATH."""
    target = converted_dir(resolve(None), load_settings().model_cache_dir)
    if not (target / "config.json").is_file():  # the dev entry converts and caches it on first start
        warmup = [sys.executable, "-m", "handler", "--test_input", '{"input": {"action": "health"}}']
        subprocess.run(warmup, cwd=ROOT, env=worker_env(), check=True, capture_output=True, timeout=300)
    assert (target / "config.json").is_file() and list(target.glob("*.safetensors"))
    return target


@pytest.fixture(scope="session")
def image_python() -> Iterator[Path]:
    CACHE.mkdir(exist_ok=True)
    venv = Path(tempfile.mkdtemp(prefix="image-venv-", dir=CACHE))  # same disk as uv's cache: hardlinks
    yield build_image_venv(venv)
    shutil.rmtree(venv, ignore_errors=True)
