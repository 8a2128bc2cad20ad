"""Real Redis servers and the Upstash-compatible bridge, started for the shared-state tests."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.e2e.conftest import ROOT, free_port


def _wait_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


class RedisServer:
    """A private, throw-away redis-server (so a test can stop and restart it).

    With `data_dir` it keeps its data in an append-only file synced on every write, so a
    restart on the same port and folder comes back with everything; without, it comes back empty.
    """

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.port = port or free_port()
        self.data_dir = data_dir
        durable = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(data_dir)] if data_dir else []
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *durable],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)

    def restart(self) -> None:
        """Start again on the same port (and folder, when durable)."""
        self.proc = RedisServer(self.port, self.data_dir).proc

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Bridge:
    def __init__(self, redis_url: str, token: str, log: Path, delay_ms: int = 0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        cmd = [
            sys.executable,
            "-m",
            "infra.local.bridge",
            "--port",
            str(self.port),
            "--redis-url",
            redis_url,
            "--token",
            token,
            "--delay-ms",
            str(delay_ms),
        ]
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        _wait_port(self.port)

    def command(self, *args: Any) -> Any:
        r = requests.post(self.url, json=list(args), headers={"Authorization": f"Bearer {self.token}"}, timeout=5)
        return r.json().get("result")

    def set_delay(self, ms: int) -> None:
        """Latency before each command from now on (the command still runs: a timed-out write lands)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        requests.post(f"{self.url}/_bridge/delay", json={"ms": ms}, headers=headers, timeout=5).raise_for_status()

    def stats(self) -> dict[str, int]:
        """Commands received so far, and those in the delay or running now."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return dict(requests.get(f"{self.url}/_bridge/stats", headers=headers, timeout=5).json())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


async def until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `condition` (cheap, no I/O of the loop under test) until it holds; a generous deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(0.02)
