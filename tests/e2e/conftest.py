"""Real workers: `python -m handler --rp_serve_api` on a free port, the real embedded model."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).parents[2]
ADMIN = "e2e-admin-token-16"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH_", "RUNPOD_"))}
    env.update({"ADMIN_TOKEN": ADMIN, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}, **extra)
    return env


@pytest.fixture
def redis_and_bridge(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A private, durable Redis (a restart comes back with what it held) behind the local bridge."""
    from tests.e2e.redis_helpers import Bridge, RedisServer  # it imports this module

    server = RedisServer(data_dir=tmp_path)
    bridge = Bridge(server.url, "shutdown-test-token", tmp_path / "bridge.log")
    yield server, bridge
    bridge.stop()
    server.stop()


def shutdown_env(bridge: Any, prefix: str, grace_s: int, **extra: str) -> dict[str, str]:
    """A worker on the shared store behind the bridge, quick to queue turns when Redis stops (SIGTERM tests)."""
    return worker_env(
        UPSTASH_REDIS_REST_URL=bridge.url,
        UPSTASH_REDIS_REST_TOKEN=bridge.token,
        REDIS_KEY_PREFIX=prefix,
        REDIS_TIMEOUT_S="0.5",
        REDIS_RETRY_AFTER_S="1",
        SHUTDOWN_GRACE_S=str(grace_s),
        LOG_LEVEL="INFO",
        **extra,
    )


def end_tree(proc: subprocess.Popen[Any], children: list[Any]) -> None:
    """Terminate a worker, then whatever of `children` (psutil processes taken while it ran: a vLLM
    worker's engine core can outlive it) is still running: no test leaves processes behind."""
    import psutil

    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def assert_sigterm_ends_its_engine_core(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM to a vLLM worker ends its engine core too (uvicorn re-raises the signal after its
    graceful shutdown, so atexit never runs: the shutdown path's unload is what ends it)."""
    import psutil

    children = psutil.Process(proc.pid).children(recursive=True)
    assert any(c.name().startswith("VLLM::") for c in children)  # the engine core runs as a child process
    proc.terminate()
    proc.wait(timeout=60)
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == []


class LocalApi:
    """A worker process serving the RunPod SDK's own local API."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_path.open("w")
        cmd = [
            sys.executable,
            "-m",
            "handler",
            "--rp_serve_api",
            "--rp_api_host",
            "127.0.0.1",
            "--rp_api_port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready(log_path)

    def _wait_ready(self, log_path: Path, timeout: float = 240.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {log_path.read_text()[-2000:]}")
            try:
                if self.runsync({"action": "health"}, timeout=5).get("status") == "COMPLETED":
                    return
            except requests.RequestException:
                time.sleep(0.5)
        raise RuntimeError("worker did not become ready")

    def runsync(self, payload: Any, timeout: float = 120) -> dict[str, Any]:
        r = requests.post(f"{self.url}/runsync", json={"input": payload}, timeout=timeout)
        r.raise_for_status()
        return dict(r.json())

    def output(self, payload: Any) -> dict[str, Any]:
        answer = self.runsync(payload)
        assert answer["status"] == "COMPLETED", answer
        return dict(answer["output"])

    def output_list(self, payload: Any) -> list[dict[str, Any]]:
        """The generator handler's /runsync output: the list of yielded items."""
        answer = self.runsync(payload)
        assert answer["status"] == "COMPLETED" and isinstance(answer["output"], list), answer
        return list(answer["output"])

    def stop(self) -> None:
        import psutil

        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        end_tree(self.proc, children)
        self.log.close()


@pytest.fixture(scope="session")
def start_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalApi]]:
    started: list[LocalApi] = []

    def start(**env: str) -> LocalApi:
        api = LocalApi(worker_env(**env), tmp_path_factory.mktemp("worker") / "worker.log")
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


@pytest.fixture(scope="session")
def api(start_api: Callable[..., LocalApi]) -> LocalApi:
    return start_api(MAX_CONTEXT_TOKENS="1024")  # small, so a long message can overflow it
