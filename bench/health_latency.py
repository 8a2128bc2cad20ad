"""How quickly `health` answers while a maximum-size request is prepared (the RunPod SDK's local
API, the embedded model): the timing half of tests/e2e/test_hostile_inputs.py, whose test only
counts answers that came back while the big request was still in flight.

`python -m bench.health_latency` prints median and worst latency per payload and saves
bench/results/health_latency.json. The aim: a median under 50 ms (the earlier worker stalled
0.26 s to 16 s, all on the event loop).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.e2e.conftest import LocalApi, worker_env
from tests.e2e.test_hostile_inputs import MAX_ENHANCE, chat, max_history

RESULTS = Path(__file__).parent / "results"
PAYLOADS: dict[str, dict[str, Any]] = {
    "max-history": chat(conversation_history=max_history(unseen=False), max_tokens=1),
    "max-history-unseen-words": chat(conversation_history=max_history(unseen=True), max_tokens=1),
    "max-enhance": {"action": "enhance", **MAX_ENHANCE},
}


def latencies(api: LocalApi, payload: dict[str, Any]) -> list[float]:
    """Health answers timed, one after another, while `payload` runs on another thread."""
    done = threading.Event()

    def big() -> None:
        api.runsync(payload, timeout=300)
        done.set()

    session = requests.Session()
    url = f"{api.url}/runsync"
    session.post(url, json={"input": {"action": "health"}}, timeout=10)  # connection up before timing
    worker = threading.Thread(target=big)
    worker.start()
    times: list[float] = []
    while not done.is_set():
        started = time.perf_counter()
        session.post(url, json={"input": {"action": "health"}}, timeout=300)
        times.append(time.perf_counter() - started)
    worker.join()
    return times


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        api = LocalApi(worker_env(MAX_CONTEXT_TOKENS="1024"), Path(tmp) / "worker.log")
        try:
            results = {}
            for name, payload in PAYLOADS.items():
                times = latencies(api, payload)
                results[name] = {
                    "answers": len(times),
                    "median_ms": round(statistics.median(times) * 1000, 1),
                    "max_ms": round(max(times) * 1000, 1),
                }
                print(f"{name:26s} n={len(times):4d} median={results[name]['median_ms']:7.1f} ms "
                      f"max={results[name]['max_ms']:7.1f} ms")  # fmt: skip
        finally:
            api.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "health_latency.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
